-- Restore drills: each backup a drill restored into a scratch volume, how it
-- ended (passed or failed, with why) and how long it took. Append-only.

CREATE TABLE restore_drills (
    id BIGINT NOT NULL AUTO_INCREMENT,
    backup_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    scratch_volume_id VARCHAR(100) NULL,
    result VARCHAR(16) NOT NULL,
    message VARCHAR(1024) NULL,
    duration_secs BIGINT NOT NULL,
    conductor VARCHAR(255) NOT NULL,
    started_at DATETIME(6) NOT NULL,
    finished_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    INDEX ix_restore_drills_finished (finished_at, id),
    INDEX ix_restore_drills_volume (volume_id, finished_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

-- The newest assessment of each flagged volume's RPO and each project's
-- projected quota exhaustion, replaced by each assessment (what staffeln-api
-- exports on /metrics).
CREATE TABLE rpo_status (
    id BIGINT NOT NULL AUTO_INCREMENT,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    last_success DATETIME(6) NULL,
    within_rpo BOOL NOT NULL,
    reason VARCHAR(1024) NULL,
    assessed_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    INDEX ix_rpo_status_project (project_id, volume_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE quota_projections (
    id BIGINT NOT NULL AUTO_INCREMENT,
    project_id VARCHAR(100) NOT NULL,
    quota VARCHAR(32) NULL,
    exhausted_at DATETIME(6) NULL,
    warn BOOL NOT NULL,
    assessed_at DATETIME(6) NOT NULL,
    PRIMARY KEY (id),
    INDEX ix_quota_projections_project (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
