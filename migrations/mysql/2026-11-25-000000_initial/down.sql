DROP TABLE report_timestamp;
DROP TABLE queue_data;
DROP TABLE backup_data;
