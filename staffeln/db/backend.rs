//! [`Backend`]: which database server a connection speaks to. The floor of
//! the room: the URL, the errors and the migrations all name it.

use std::fmt;

/// Which database server a [`DbUrl`](super::DbUrl) speaks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Mysql,
    Sqlite,
}

impl fmt::Display for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Backend::Mysql => "MySQL",
            Backend::Sqlite => "SQLite",
        })
    }
}
