-- Same as migrations/mysql/2026-12-02-200000_backup_origin.

ALTER TABLE backup_data ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'staffeln';
