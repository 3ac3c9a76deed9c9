-- The deletion guard asks, for every backup a user deletes, whether a task of
-- the queue recorded it (its id is written as soon as Cinder accepts the
-- create, before backup_data has a row): look it up by backup id.
CREATE INDEX ix_queue_data_backup_id ON queue_data (backup_id);
