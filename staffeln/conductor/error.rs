//! [`ConductorError`]: why the conductor, or one step of it, failed at run
//! time. Configuration problems never get here: they are
//! [`crate::conf::SettingsError`]s, found before the conductor starts.

use crate::db::DbError;
use crate::notify::MailError;
use crate::openstack::OpenStackError;
use crate::rpc::{RpcError, TransportError};

/// Why the conductor (or one of its steps) failed.
#[derive(Debug, thiserror::Error)]
pub enum ConductorError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    OpenStack(Box<OpenStackError>),
    /// The messaging transport cannot be set up (a TLS file cannot be read).
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The broker refused or could not be reached (reading Cinder's
    /// notifications).
    #[error(transparent)]
    Rpc(Box<RpcError>),
    /// The digest mailer cannot be set up (its CA file cannot be read).
    #[error(transparent)]
    Mail(Box<MailError>),
    /// A restore of a backup Staffeln did not make (no metadata mark, no row).
    #[error("backup {backup} was not made by Staffeln: restore it through Cinder (openstack volume backup restore)")]
    NotStaffelns { backup: String },
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
}

impl From<OpenStackError> for ConductorError {
    fn from(err: OpenStackError) -> ConductorError {
        ConductorError::OpenStack(Box::new(err))
    }
}

impl From<MailError> for ConductorError {
    fn from(err: MailError) -> ConductorError {
        ConductorError::Mail(Box::new(err))
    }
}

impl From<RpcError> for ConductorError {
    fn from(err: RpcError) -> ConductorError {
        ConductorError::Rpc(Box::new(err))
    }
}
