DROP TABLE quota_projections;
DROP TABLE rpo_status;
DROP TABLE restore_drills;
