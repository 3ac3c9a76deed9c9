DROP TABLE server_stamps;
ALTER TABLE queue_data DROP COLUMN stuck_at;
