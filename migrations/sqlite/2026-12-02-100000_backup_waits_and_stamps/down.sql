DROP INDEX ix_server_stamps_server;
DROP INDEX ix_server_stamps_state;
DROP INDEX ux_server_stamps_cycle_server;
DROP TABLE server_stamps;
ALTER TABLE queue_data DROP COLUMN stuck_at;
