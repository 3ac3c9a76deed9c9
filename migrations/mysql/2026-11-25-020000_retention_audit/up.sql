-- What retention decided about each backup, and what came of its deletes:
-- one row per decision (keep, delete, skip) and per outcome (deleted, gone,
-- deferred, failed, forget). Append-only; reports never purge it.

CREATE TABLE retention_audit (
    id BIGINT NOT NULL AUTO_INCREMENT,
    run_id VARCHAR(64) NOT NULL,
    backup_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    backup_status VARCHAR(32) NOT NULL,
    backup_created_at DATETIME(6) NULL,
    action VARCHAR(16) NOT NULL,
    reason_code VARCHAR(32) NOT NULL,
    reason VARCHAR(1024) NOT NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    PRIMARY KEY (id),
    INDEX ix_retention_audit_run (run_id, id),
    INDEX ix_retention_audit_backup (backup_id, id),
    INDEX ix_retention_audit_project_created (project_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
