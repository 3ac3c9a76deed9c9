DROP INDEX ix_queue_data_instance_state ON queue_data;
