ALTER TABLE backup_data DROP COLUMN origin;
