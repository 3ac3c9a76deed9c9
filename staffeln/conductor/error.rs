//! [`ConductorError`]: why the conductor, or one step of it, failed at run
//! time. Configuration problems never get here: they are
//! [`crate::conf::SettingsError`]s, found before the conductor starts.

use super::schedule::ScheduleError;
use crate::db::DbError;
use crate::openstack::OpenStackError;

/// Why the conductor (or one of its steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    OpenStack(Box<OpenStackError>),
    #[error(transparent)]
    Schedule(#[from] ScheduleError),
    #[error("{0}")]
    Config(String),
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
}

impl From<OpenStackError> for ConductorError {
    fn from(err: OpenStackError) -> ConductorError {
        ConductorError::OpenStack(Box::new(err))
    }
}
