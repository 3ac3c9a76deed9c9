-- Same as migrations/mysql/2026-11-25-030000_queue_backup_id.
CREATE INDEX ix_queue_data_backup_id ON queue_data (backup_id);
