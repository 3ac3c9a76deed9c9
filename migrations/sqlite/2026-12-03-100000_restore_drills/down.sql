DROP TABLE restore_drills;
