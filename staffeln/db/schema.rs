//! The tables, written by hand for both backends (see `migrations/`): ids are
//! `BigInt` (MySQL `BIGINT`, SQLite's 64-bit rowid), times `Timestamp` (UTC).
//! Keep this in step with the migrations; the integration tests read every
//! column back on both backends.

diesel::table! {
    /// One Cinder backup staffeln made and keeps under retention.
    backup_data (id) {
        id -> BigInt,
        #[max_length = 100]
        backup_id -> Varchar,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 100]
        volume_id -> Varchar,
        #[max_length = 100]
        instance_id -> Varchar,
        backup_completed -> Integer,
        incremental -> Bool,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
        /// `staffeln`, or `staffeln-py` for a row adopted from the original.
        #[max_length = 16]
        origin -> Varchar,
    }
}

diesel::table! {
    /// One volume backup of the current cycle, from planned to done or failed.
    queue_data (id) {
        id -> BigInt,
        #[max_length = 100]
        backup_id -> Varchar,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 100]
        volume_id -> Varchar,
        backup_status -> Integer,
        #[max_length = 100]
        instance_id -> Varchar,
        #[max_length = 100]
        volume_name -> Varchar,
        #[max_length = 100]
        instance_name -> Varchar,
        incremental -> Bool,
        #[max_length = 1024]
        reason -> Nullable<Varchar>,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
        #[max_length = 64]
        task_id -> Varchar,
        #[max_length = 64]
        cycle_id -> Varchar,
        #[max_length = 16]
        state -> Varchar,
        #[max_length = 255]
        backup_name -> Varchar,
        force_backup -> Bool,
        #[max_length = 255]
        availability_zone -> Nullable<Varchar>,
        size_gb -> BigInt,
        #[max_length = 1024]
        note -> Nullable<Varchar>,
        attempts -> Integer,
        #[max_length = 255]
        claimed_by -> Nullable<Varchar>,
        claimed_until -> Nullable<Timestamp>,
        started_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        reported_at -> Nullable<Timestamp>,
        fencing_token -> BigInt,
        stuck_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// When a report (digest) was last sent, and by whom.
    report_timestamp (id) {
        id -> BigInt,
        #[max_length = 255]
        sender -> Nullable<Varchar>,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Named leases: the cycle leader's, and the claim lock. `token` grows with
    /// every change of holder (a fencing token).
    leases (name) {
        #[max_length = 64]
        name -> Varchar,
        #[max_length = 255]
        holder -> Varchar,
        token -> BigInt,
        expires_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// One backup or retention cycle, as planned by its leader.
    cycles (id) {
        #[max_length = 64]
        id -> Varchar,
        #[max_length = 16]
        kind -> Varchar,
        #[max_length = 255]
        leader -> Varchar,
        fencing_token -> BigInt,
        started_at -> Timestamp,
        planned_at -> Nullable<Timestamp>,
        finished_at -> Nullable<Timestamp>,
        planned -> Integer,
        #[max_length = 1024]
        summary -> Nullable<Varchar>,
        slot_utilisation -> Nullable<Double>,
    }
}

diesel::table! {
    /// What retention decided about each backup and what came of its deletes
    /// (append-only; reports never purge it).
    retention_audit (id) {
        id -> BigInt,
        #[max_length = 64]
        run_id -> Varchar,
        #[max_length = 100]
        backup_id -> Varchar,
        #[max_length = 100]
        volume_id -> Varchar,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 32]
        backup_status -> Varchar,
        backup_created_at -> Nullable<Timestamp>,
        #[max_length = 16]
        action -> Varchar,
        #[max_length = 32]
        reason_code -> Varchar,
        #[max_length = 1024]
        reason -> Varchar,
        created_at -> Timestamp,
    }
}

diesel::table! {
    /// One flagged server of one backup cycle: the `last-backup-time` it is
    /// owed once every volume attached to it is backed up, and how writing
    /// it went.
    server_stamps (id) {
        id -> BigInt,
        #[max_length = 64]
        cycle_id -> Varchar,
        #[max_length = 100]
        server_id -> Varchar,
        #[max_length = 255]
        server_name -> Varchar,
        #[max_length = 100]
        project_id -> Varchar,
        /// Comma-separated volume ids.
        volume_ids -> Text,
        #[max_length = 16]
        state -> Varchar,
        attempts -> Integer,
        #[max_length = 64]
        stamp_value -> Nullable<Varchar>,
        #[max_length = 1024]
        reason -> Nullable<Varchar>,
        next_attempt_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
        reported_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    /// Restore drills: a backup restored into a scratch volume, its result
    /// (`passed`, `failed`) and duration. Append-only.
    restore_drills (id) {
        id -> BigInt,
        #[max_length = 100]
        backup_id -> Varchar,
        #[max_length = 100]
        volume_id -> Varchar,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 100]
        scratch_volume_id -> Nullable<Varchar>,
        #[max_length = 16]
        result -> Varchar,
        #[max_length = 1024]
        message -> Nullable<Varchar>,
        duration_secs -> BigInt,
        #[max_length = 255]
        conductor -> Varchar,
        started_at -> Timestamp,
        finished_at -> Timestamp,
    }
}

diesel::table! {
    /// The newest RPO assessment of each flagged volume (replaced whole).
    rpo_status (id) {
        id -> BigInt,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 100]
        volume_id -> Varchar,
        last_success -> Nullable<Timestamp>,
        within_rpo -> Bool,
        #[max_length = 1024]
        reason -> Nullable<Varchar>,
        assessed_at -> Timestamp,
    }
}

diesel::table! {
    /// The newest quota projection of each project (replaced whole).
    quota_projections (id) {
        id -> BigInt,
        #[max_length = 100]
        project_id -> Varchar,
        #[max_length = 32]
        quota -> Nullable<Varchar>,
        exhausted_at -> Nullable<Timestamp>,
        warn -> Bool,
        assessed_at -> Timestamp,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    backup_data,
    queue_data,
    report_timestamp,
    leases,
    cycles,
    retention_audit,
    server_stamps,
    restore_drills,
    rpo_status,
    quota_projections
);
