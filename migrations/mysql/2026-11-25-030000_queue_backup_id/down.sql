DROP INDEX ix_queue_data_backup_id ON queue_data;
