-- The tables of staffeln-py (SQLAlchemy models with oslo.db's TimestampMixin),
-- carried over with ids widened to BIGINT and the columns the service always
-- fills made NOT NULL. Times are UTC (diesel sets time_zone = '+00:00').

CREATE TABLE backup_data (
    id BIGINT NOT NULL AUTO_INCREMENT,
    backup_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    instance_id VARCHAR(100) NOT NULL,
    backup_completed INTEGER NOT NULL DEFAULT 0,
    incremental BOOLEAN NOT NULL DEFAULT FALSE,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    CONSTRAINT unique_backup0uuid UNIQUE (backup_id),
    INDEX ix_backup_data_project_id (project_id),
    INDEX ix_backup_data_volume_id_created_at (volume_id, created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE queue_data (
    id BIGINT NOT NULL AUTO_INCREMENT,
    backup_id VARCHAR(100) NOT NULL,
    project_id VARCHAR(100) NOT NULL,
    volume_id VARCHAR(100) NOT NULL,
    backup_status INTEGER NOT NULL,
    instance_id VARCHAR(100) NOT NULL,
    volume_name VARCHAR(100) NOT NULL,
    instance_name VARCHAR(100) NOT NULL,
    incremental BOOLEAN NOT NULL DEFAULT FALSE,
    reason VARCHAR(255) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    INDEX ix_queue_data_backup_status (backup_status),
    INDEX ix_queue_data_project_id (project_id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;

CREATE TABLE report_timestamp (
    id BIGINT NOT NULL AUTO_INCREMENT,
    sender VARCHAR(255) NULL,
    created_at DATETIME(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6),
    updated_at DATETIME(6) NULL,
    PRIMARY KEY (id),
    INDEX ix_report_timestamp_created_at (created_at)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4;
