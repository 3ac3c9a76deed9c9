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
