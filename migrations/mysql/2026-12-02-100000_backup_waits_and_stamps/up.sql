-- Backups the conductor waits for, and last-backup-time writes it owes.
--
-- queue_data.stuck_at: when a backup still being created was first reported
-- as possibly stuck (slower than [conductor] backup_stuck_throughput). A
-- task's `attempts` is its claim's fencing token (every claim increments it),
-- so no column is needed for that.
--
-- server_stamps: one row per flagged server and backup cycle. The server's
-- last-backup-time is written once every volume attached to it (also one
-- backed up for another server) is backed up in that cycle; a failed write
-- is retried a bounded number of times and then reported in the digest.

ALTER TABLE queue_data ADD COLUMN stuck_at DATETIME(6) NULL;

CREATE TABLE server_stamps (
    id BIGINT NOT NULL AUTO_INCREMENT,
    cycle_id VARCHAR(64) NOT NULL,
    server_id VARCHAR(100) NOT NULL,
    server_name VARCHAR(255) NOT NULL DEFAULT '',
    project_id VARCHAR(100) NOT NULL,
    volume_ids TEXT NOT NULL,
    state VARCHAR(16) NOT NULL DEFAULT 'pending',
    attempts INTEGER NOT NULL DEFAULT 0,
    stamp_value VARCHAR(64) NULL,
    reason VARCHAR(1024) NULL,
    next_attempt_at DATETIME(6) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NULL,
    reported_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    UNIQUE INDEX ux_server_stamps_cycle_server (cycle_id, server_id),
    INDEX ix_server_stamps_state (state, id),
    INDEX ix_server_stamps_server (server_id, state)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
