DROP TABLE retention_audit;
