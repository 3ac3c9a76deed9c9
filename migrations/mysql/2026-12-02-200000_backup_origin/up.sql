-- Who made each recorded backup: 'staffeln' (this Staffeln, which marks its
-- backups with __automated_backup metadata in Cinder) or 'staffeln-py' (the
-- original Python Staffeln, whose rows `staffeln-manage db upgrade` adopts
-- from its backup_data table; those backups carry no metadata). Retention
-- and the deletion guard treat both as Staffeln's.

ALTER TABLE backup_data ADD COLUMN origin VARCHAR(16) NOT NULL DEFAULT 'staffeln';
