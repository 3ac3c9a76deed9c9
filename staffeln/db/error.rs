//! What can go wrong in the database room. Each variant names what failed
//! (which URL, masked; which migration; which query) and keeps the cause in
//! `source()`. No variant ever holds a password: URLs are stored masked.

use super::backend::Backend;

/// A failure of the database layer.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// `[database] connection` cannot be used (`url` is masked).
    #[error("invalid [database] connection `{url}`: {reason}")]
    InvalidUrl { url: String, reason: String },

    /// Start-up could not open a connection within `max_retries` attempts.
    #[error("cannot connect to the database at {url} ({attempts} attempt{s})", s = if *attempts == 1 { "" } else { "s" })]
    Connect {
        url: String,
        attempts: u64,
        #[source]
        source: diesel::ConnectionError,
    },

    /// No connection could be taken from the pool (server gone, pool exhausted).
    #[error("cannot get a database connection to {url} from the pool")]
    Pool {
        url: String,
        #[source]
        source: diesel::r2d2::PoolError,
    },

    /// A migration failed to apply or revert; `version` is its directory name
    /// (`2026-11-25-000000_initial`) or `-` when listing migrations failed.
    #[error("{direction} of migration {version} failed on {backend}")]
    Migration {
        backend: Backend,
        direction: MigrationDirection,
        version: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },

    /// A row would break a unique constraint (e.g. `backup_data.backup_id`).
    #[error("{table}: a row with {key} already exists")]
    Duplicate {
        table: &'static str,
        key: String,
        #[source]
        source: diesel::result::Error,
    },

    /// The schema is not the one this build needs.
    #[error("the database schema is at version {current}, this release needs {head}: run `staffeln-manage db upgrade`")]
    SchemaOutdated { current: String, head: String },

    /// The database holds tables `staffeln-manage db upgrade` will not touch
    /// (neither this Staffeln's schema nor the original's); `problem` says
    /// what was found and what to do.
    #[error("cannot upgrade this database: {problem}")]
    UnknownSchema { problem: String },

    /// A query failed; `query` names it (`backup_data insert`).
    #[error("database query `{query}` failed")]
    Query {
        query: &'static str,
        #[source]
        source: diesel::result::Error,
    },
}

impl From<diesel::result::Error> for DbError {
    /// A failure of a transaction's own BEGIN/COMMIT/ROLLBACK.
    fn from(source: diesel::result::Error) -> DbError {
        DbError::Query { query: "transaction", source }
    }
}

/// Which way a migration was being walked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MigrationDirection {
    Upgrade,
    Downgrade,
}

impl std::fmt::Display for MigrationDirection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            MigrationDirection::Upgrade => "upgrade",
            MigrationDirection::Downgrade => "downgrade",
        })
    }
}

impl DbError {
    /// Wraps a diesel error of the query named `query`.
    pub(crate) fn query(query: &'static str) -> impl FnOnce(diesel::result::Error) -> DbError {
        move |source| DbError::Query { query, source }
    }

    /// True when the error is a unique-constraint violation.
    pub fn is_duplicate(&self) -> bool {
        matches!(self, DbError::Duplicate { .. })
    }
}

#[cfg(test)]
mod tests {
    /// Callers move errors and the pool across `spawn_blocking` and into `anyhow`.
    #[test]
    fn errors_and_the_pool_cross_threads() {
        fn shareable<T: Send + Sync + 'static>() {}
        shareable::<super::DbError>();
        shareable::<crate::db::Database>();
    }
}
