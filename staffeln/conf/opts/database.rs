//! `[database]`: the oslo.db options Staffeln honours.

use super::{integer, string};
use crate::conf::secret::Secret;

options! {
    /// Options under this group are used to define the database connection.
    group "database" => DatabaseOpts;

    /// The SQLAlchemy connection string to use to connect to the database,
    /// e.g. mysql+pymysql://staffeln:password@127.0.0.1/staffeln?charset=utf8.
    ///
    /// Related options:
    ///
    /// * [DEFAULT] state_path
    connection: Secret = string("sqlite:///$state_path/staffeln.sqlite").secret();

    /// Accepted for compatibility, ignored: Staffeln's tables are always
    /// InnoDB (the conductors' claims need its row locks).
    mysql_engine: String = string("InnoDB");

    /// The SQL mode to be used for MySQL sessions. An empty value sets the
    /// empty mode.
    mysql_sql_mode: String = string("TRADITIONAL");

    /// Maximum number of database connection retries during startup. Set to
    /// -1 to specify an infinite retry count.
    max_retries: i64 = integer(10).min(-1);

    /// Interval between retries of opening a SQL connection, in seconds.
    retry_interval: u64 = integer(10).min(0);

    /// Maximum number of SQL connections to keep open in a pool. Setting a
    /// value of 0 indicates no limit.
    max_pool_size: u32 = integer(5).min(0);

    /// Connections which have been present in the connection pool longer than
    /// this number of seconds will be replaced with new ones the next time
    /// they are checked out from the pool.
    connection_recycle_time: i64 = integer(3600);
}
