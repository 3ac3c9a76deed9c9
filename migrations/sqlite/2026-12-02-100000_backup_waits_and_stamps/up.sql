-- Same as migrations/mysql/2026-12-02-100000_backup_waits_and_stamps.
ALTER TABLE queue_data ADD COLUMN stuck_at DATETIME NULL;

CREATE TABLE server_stamps (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    cycle_id VARCHAR(64) NOT NULL,
    server_id VARCHAR(100) NOT NULL,
    server_name VARCHAR(255) NOT NULL DEFAULT '',
    project_id VARCHAR(100) NOT NULL,
    volume_ids TEXT NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    stamp_value VARCHAR(64) NULL,
    reason VARCHAR(1024) NULL,
    next_attempt_at DATETIME NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NULL,
    reported_at DATETIME NULL
);
CREATE UNIQUE INDEX ux_server_stamps_cycle_server ON server_stamps (cycle_id, server_id);
CREATE INDEX ix_server_stamps_state ON server_stamps (state, id);
CREATE INDEX ix_server_stamps_server ON server_stamps (server_id, state);
