-- Same as migrations/mysql/2026-12-03-100000_restore_drills.
CREATE TABLE restore_drills (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    backup_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    scratch_volume_id VARCHAR(100) NULL,
    result VARCHAR(16) NOT NULL,
    message VARCHAR(1024) NULL,
    duration_secs BIGINT NOT NULL,
    conductor VARCHAR(255) NOT NULL,
    started_at DATETIME NOT NULL,
    finished_at DATETIME NOT NULL
);
CREATE INDEX ix_restore_drills_finished ON restore_drills (finished_at, id);
CREATE INDEX ix_restore_drills_volume ON restore_drills (volume_id, finished_at);
CREATE TABLE rpo_status (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    last_success DATETIME NULL,
    within_rpo BOOLEAN NOT NULL,
    reason VARCHAR(1024) NULL,
    assessed_at DATETIME NOT NULL
);
CREATE INDEX ix_rpo_status_project ON rpo_status (project_id, volume_id);
CREATE TABLE quota_projections (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    quota VARCHAR(32) NULL,
    exhausted_at DATETIME NULL,
    warn BOOLEAN NOT NULL,
    assessed_at DATETIME NOT NULL
);
CREATE INDEX ix_quota_projections_project ON quota_projections (project_id);
