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
        #[max_length = 255]
        reason -> Nullable<Varchar>,
        created_at -> Timestamp,
        updated_at -> Nullable<Timestamp>,
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

diesel::allow_tables_to_appear_in_same_query!(backup_data, queue_data, report_timestamp);
