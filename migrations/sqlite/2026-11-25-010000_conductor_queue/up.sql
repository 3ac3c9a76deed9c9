-- Same as migrations/mysql/2026-11-25-010000_conductor_queue (SQLite ignores
-- VARCHAR lengths, so `reason` needs no change).
ALTER TABLE queue_data ADD COLUMN task_id VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE queue_data ADD COLUMN cycle_id VARCHAR(64) NOT NULL DEFAULT '';
ALTER TABLE queue_data ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'planned';
ALTER TABLE queue_data ADD COLUMN backup_name VARCHAR(255) NOT NULL DEFAULT '';
ALTER TABLE queue_data ADD COLUMN force_backup BOOLEAN NOT NULL DEFAULT 0;
ALTER TABLE queue_data ADD COLUMN availability_zone VARCHAR(255) NULL;
ALTER TABLE queue_data ADD COLUMN size_gb BIGINT NOT NULL DEFAULT 0;
ALTER TABLE queue_data ADD COLUMN note VARCHAR(1024) NULL;
ALTER TABLE queue_data ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queue_data ADD COLUMN claimed_by VARCHAR(255) NULL;
ALTER TABLE queue_data ADD COLUMN claimed_until DATETIME NULL;
ALTER TABLE queue_data ADD COLUMN started_at DATETIME NULL;
ALTER TABLE queue_data ADD COLUMN finished_at DATETIME NULL;
ALTER TABLE queue_data ADD COLUMN reported_at DATETIME NULL;
ALTER TABLE queue_data ADD COLUMN fencing_token BIGINT NOT NULL DEFAULT 0;

UPDATE queue_data SET task_id = 'legacy-' || id, cycle_id = 'legacy-' || id, state = 'legacy';

CREATE UNIQUE INDEX ux_queue_data_task_id ON queue_data (task_id);
CREATE UNIQUE INDEX ux_queue_data_cycle_volume ON queue_data (cycle_id, volume_id);
CREATE INDEX ix_queue_data_state ON queue_data (state, id);
CREATE INDEX ix_queue_data_volume_state ON queue_data (volume_id, state);
CREATE INDEX ix_queue_data_unreported ON queue_data (reported_at, project_id);

CREATE TABLE leases (
    name VARCHAR(64) PRIMARY KEY NOT NULL,
    holder VARCHAR(255) NOT NULL,
    token BIGINT NOT NULL,
    expires_at DATETIME NOT NULL,
    updated_at DATETIME NULL
);

CREATE TABLE cycles (
    id VARCHAR(64) PRIMARY KEY NOT NULL,
    kind VARCHAR(16) NOT NULL,
    leader VARCHAR(255) NOT NULL,
    fencing_token BIGINT NOT NULL,
    started_at DATETIME NOT NULL,
    planned_at DATETIME NULL,
    finished_at DATETIME NULL,
    planned INTEGER NOT NULL DEFAULT 0,
    summary VARCHAR(1024) NULL
);
CREATE INDEX ix_cycles_kind_started ON cycles (kind, started_at);
