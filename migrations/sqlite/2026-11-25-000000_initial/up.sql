-- Same tables as migrations/mysql/2026-11-25-000000_initial. SQLite stores the
-- ids as 64-bit INTEGER PRIMARY KEY (rowid) and the times as text, in UTC.

CREATE TABLE backup_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    backup_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    instance_id VARCHAR(100) NOT NULL,
    backup_completed INTEGER NOT NULL DEFAULT 0,
    incremental BOOLEAN NOT NULL DEFAULT 0,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NULL,
    CONSTRAINT unique_backup0uuid UNIQUE (backup_id)
);
CREATE INDEX ix_backup_data_project_id ON backup_data (project_id);
CREATE INDEX ix_backup_data_volume_id_created_at ON backup_data (volume_id, created_at);

CREATE TABLE queue_data (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    backup_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    backup_status INTEGER NOT NULL,
    instance_id VARCHAR(100) NOT NULL,
    volume_name VARCHAR(100) NOT NULL,
    instance_name VARCHAR(100) NOT NULL,
    incremental BOOLEAN NOT NULL DEFAULT 0,
    reason VARCHAR(255) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NULL
);
CREATE INDEX ix_queue_data_backup_status ON queue_data (backup_status);
CREATE INDEX ix_queue_data_project_id ON queue_data (project_id);

CREATE TABLE report_timestamp (
    id INTEGER PRIMARY KEY AUTOINCREMENT NOT NULL,
    sender VARCHAR(255) NULL,
    created_at DATETIME NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at DATETIME NULL
);
CREATE INDEX ix_report_timestamp_created_at ON report_timestamp (created_at);
