-- Same as migrations/mysql/2026-11-25-020000_retention_audit.
CREATE TABLE retention_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    run_id VARCHAR(64) NOT NULL,
    backup_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    backup_status VARCHAR(32) NOT NULL,
    backup_created_at DATETIME NULL,
    action VARCHAR(16) NOT NULL,
    reason_code VARCHAR(32) NOT NULL,
    reason VARCHAR(1024) NOT NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP
);
CREATE INDEX ix_retention_audit_run ON retention_audit (run_id, id);
CREATE INDEX ix_retention_audit_backup ON retention_audit (backup_id, id);
CREATE INDEX ix_retention_audit_project_created ON retention_audit (project_id, created_at);
