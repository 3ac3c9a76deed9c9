//! `[DEFAULT]`: identity of the host, paths, oslo.log, oslo.service and
//! oslo.messaging options shared by every Staffeln binary.

use super::{boolean, computed_string, integer, list, string, unset_string};
use crate::conf::secret::Secret;

options! {
    group "DEFAULT" => DefaultOpts;

    /// Name of this host, as other services and the database see it. It must
    /// be unique among the hosts running staffeln-conductor and valid in an
    /// AMQP key.
    ///
    /// Possible values:
    ///
    /// * A host name, FQDN or IP address. Defaults to the host name of the
    ///   machine.
    host: String = computed_string(super::super::hostname).sample_default("<current_hostname>");

    /// Top-level directory for Staffeln's state, such as the SQLite database.
    ///
    /// Related options:
    ///
    /// * [database] connection
    state_path: String = string("/var/lib/staffeln");

    /// If set to true, the logging level will be set to DEBUG instead of the
    /// default INFO level.
    debug: bool = boolean(false).mutable().cli("debug", Some('d'));

    /// Name of log file to send logging output to. If no default is set,
    /// logging will go to stdout.
    ///
    /// Related options:
    ///
    /// * log_dir
    log_file: Option<String> = unset_string().deprecated(&[("", "logfile")]).cli("log-file", None);

    /// The base directory used for relative log_file paths. With log_dir set
    /// and log_file unset, logs go to <log_dir>/<program name>.log.
    ///
    /// Related options:
    ///
    /// * log_file
    log_dir: Option<String> = unset_string().deprecated(&[("", "logdir")]).cli("log-dir", None);

    /// Log output to standard error, in addition to the log file or stdout.
    use_stderr: bool = boolean(false).cli("use-stderr", None);

    /// Defines the format string for %(asctime)s in log records.
    log_date_format: String = string("%Y-%m-%d %H:%M:%S").cli("log-date-format", None);

    /// List of package logging levels in logger=LEVEL pairs. The level may be
    /// a name (DEBUG, INFO, WARN, ERROR, CRITICAL) or an integer.
    default_log_levels: Vec<String> = list(
        "amqp=WARN,sqlalchemy=WARN,oslo.messaging=INFO,lapin=WARN,hyper=WARN,reqwest=WARN,rustls=WARN,h2=WARN,diesel=WARN"
    ).mutable();

    /// Format string to use for log messages with context.
    logging_context_format_string: String = string(
        "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [%(global_request_id)s %(request_id)s %(user_identity)s] %(instance)s%(message)s"
    );

    /// Format string to use for log messages when context is undefined.
    logging_default_format_string: String = string(
        "%(asctime)s.%(msecs)03d %(process)d %(levelname)s %(name)s [-] %(instance)s%(message)s"
    );

    /// Additional data to append to log message when logging level for the
    /// message is DEBUG.
    logging_debug_format_suffix: String = string("%(funcName)s %(pathname)s:%(lineno)d");

    /// Accepted for compatibility, ignored: Staffeln writes no exception
    /// tracebacks; an error is one record with its causes on one line.
    logging_exception_prefix: String = string("%(asctime)s.%(msecs)03d %(process)d ERROR %(name)s %(instance)s");

    /// Enables or disables logging values of all registered options when
    /// starting a service (at DEBUG level).
    log_options: bool = boolean(true);

    /// Specify a timeout after which a gracefully shutdown server will exit.
    /// Zero value means endless wait.
    graceful_shutdown_timeout: u64 = integer(60).min(0);

    /// The network address and optional user credentials for connecting to
    /// the messaging backend, in URL format. The expected format is:
    ///
    /// driver://[user:pass@]host:port[,[userN:passN@]hostN:portN]/virtual_host?query
    ///
    /// Example: rabbit://rabbitmq:password@127.0.0.1:5672//
    transport_url: Option<Secret> = unset_string().secret();

    /// The default exchange under which topics are scoped.
    control_exchange: String = string("staffeln");

    /// Seconds to wait for a response from a call.
    rpc_response_timeout: u64 = integer(60).min(1);

    /// Size of executor thread pool when executor is threading or eventlet:
    /// how many RPC requests a server handles at once.
    executor_thread_pool_size: u32 = integer(64).min(1).deprecated(&[("", "rpc_thread_pool_size")]);
}
