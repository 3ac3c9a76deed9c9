DROP INDEX ix_queue_data_backup_id;
