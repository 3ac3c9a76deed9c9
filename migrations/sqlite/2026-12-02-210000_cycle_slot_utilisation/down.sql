ALTER TABLE cycles DROP COLUMN slot_utilisation;
