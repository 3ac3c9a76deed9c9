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
