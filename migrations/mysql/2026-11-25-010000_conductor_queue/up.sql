-- The conductor's work queue: queue_data grows from "one row per volume of the
-- current cycle" into a queue shared by every conductor. A row is planned by
-- the cycle's leader, claimed by one conductor at a time, and ends done, failed,
-- skipped or waiting. Existing rows (staffeln-py) become finished legacy rows.

ALTER TABLE queue_data
    ADD COLUMN task_id VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN cycle_id VARCHAR(64) NOT NULL DEFAULT '',
    ADD COLUMN state VARCHAR(16) NOT NULL DEFAULT 'planned',
    ADD COLUMN backup_name VARCHAR(255) NOT NULL DEFAULT '',
    ADD COLUMN force_backup BOOLEAN NOT NULL DEFAULT FALSE,
    ADD COLUMN availability_zone VARCHAR(255) NULL,
    ADD COLUMN size_gb BIGINT NOT NULL DEFAULT 0,
    ADD COLUMN note VARCHAR(1024) NULL,
    ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0,
    ADD COLUMN claimed_by VARCHAR(255) NULL,
    ADD COLUMN claimed_until DATETIME(6) NULL,
    ADD COLUMN started_at DATETIME(6) NULL,
    ADD COLUMN finished_at DATETIME(6) NULL,
    ADD COLUMN reported_at DATETIME(6) NULL,
    ADD COLUMN fencing_token BIGINT NOT NULL DEFAULT 0,
    MODIFY reason VARCHAR(1024) NULL;

UPDATE queue_data SET task_id = CONCAT('legacy-', id), cycle_id = CONCAT('legacy-', id), state = 'legacy';

CREATE UNIQUE INDEX ux_queue_data_task_id ON queue_data (task_id);
CREATE UNIQUE INDEX ux_queue_data_cycle_volume ON queue_data (cycle_id, volume_id);
CREATE INDEX ix_queue_data_state ON queue_data (state, id);
CREATE INDEX ix_queue_data_volume_state ON queue_data (volume_id, state);
CREATE INDEX ix_queue_data_unreported ON queue_data (reported_at, project_id);

-- Leadership (discovery and planning) and the claim lock: one row per name.
-- `token` grows each time another holder takes the lease (fencing).
CREATE TABLE leases (
    name VARCHAR(64) NOT NULL,
    holder VARCHAR(255) NOT NULL,
    token BIGINT NOT NULL,
    expires_at DATETIME(6) NOT NULL,
    updated_at DATETIME(6) NULL,
    PRIMARY KEY (name)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- One row per cycle (backup or retention): who planned it, when, what it found.
CREATE TABLE cycles (
    id VARCHAR(64) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    leader VARCHAR(255) NOT NULL,
    fencing_token BIGINT NOT NULL,
    started_at DATETIME(6) NOT NULL,
    planned_at DATETIME(6) NULL,
    finished_at DATETIME(6) NULL,
    planned INTEGER NOT NULL DEFAULT 0,
    summary VARCHAR(1024) NULL,
    PRIMARY KEY (id),
    INDEX ix_cycles_kind_started (kind, started_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
