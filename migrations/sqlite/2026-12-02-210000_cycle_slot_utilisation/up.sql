-- Same as migrations/mysql/2026-12-02-210000_cycle_slot_utilisation.
ALTER TABLE cycles ADD COLUMN slot_utilisation DOUBLE NULL;
