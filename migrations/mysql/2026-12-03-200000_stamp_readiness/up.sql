-- The conductors look for the servers whose every task of a cycle has ended
-- (their `last-backup-time` may be written) on each poll: this index lets the
-- database answer per server, not by reading the cycle's tasks.
CREATE INDEX ix_queue_data_instance_state ON queue_data (instance_id, state);
