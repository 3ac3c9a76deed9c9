DROP TABLE cycles;
DROP TABLE leases;
DROP INDEX ix_queue_data_unreported ON queue_data;
DROP INDEX ix_queue_data_volume_state ON queue_data;
DROP INDEX ix_queue_data_state ON queue_data;
DROP INDEX ux_queue_data_cycle_volume ON queue_data;
DROP INDEX ux_queue_data_task_id ON queue_data;
ALTER TABLE queue_data
    DROP COLUMN task_id,
    DROP COLUMN cycle_id,
    DROP COLUMN state,
    DROP COLUMN backup_name,
    DROP COLUMN force_backup,
    DROP COLUMN availability_zone,
    DROP COLUMN size_gb,
    DROP COLUMN note,
    DROP COLUMN attempts,
    DROP COLUMN claimed_by,
    DROP COLUMN claimed_until,
    DROP COLUMN started_at,
    DROP COLUMN finished_at,
    DROP COLUMN reported_at,
    DROP COLUMN fencing_token,
    MODIFY reason VARCHAR(255) NULL;
