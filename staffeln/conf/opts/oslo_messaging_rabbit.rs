//! `[oslo_messaging_rabbit]`: the RabbitMQ driver options of oslo.messaging
//! that Staffeln honours, with oslo's names and defaults. A `transport_url`
//! query (`?amqp_durable_queues=true`) overrides them, as in oslo.

use super::{boolean, integer, string};

options! {
    /// Options of the RabbitMQ driver of oslo.messaging. Every peer sharing
    /// a topic (Python or Rust) must use the same queue options.
    group "oslo_messaging_rabbit" => OsloMessagingRabbitOpts;

    /// Use durable queues in AMQP. If rabbit_quorum_queue is enabled, queues
    /// are durable and this value is ignored.
    amqp_durable_queues: bool = boolean(false);

    /// Auto-delete queues in AMQP.
    amqp_auto_delete: bool = boolean(false);

    /// Connect over SSL.
    ssl: bool = boolean(false).deprecated(&[("", "rabbit_use_ssl")]);

    /// SSL version to use (valid only if SSL enabled). Accepted for
    /// compatibility: Staffeln negotiates TLS 1.2 or 1.3.
    ssl_version: String = string("").deprecated(&[("", "kombu_ssl_version")]);

    /// SSL key file, PEM PKCS#8 (valid only if SSL enabled).
    ssl_key_file: String = string("").deprecated(&[("", "kombu_ssl_keyfile")]);

    /// SSL cert file (valid only if SSL enabled).
    ssl_cert_file: String = string("").deprecated(&[("", "kombu_ssl_certfile")]);

    /// SSL certification authority file (valid only if SSL enabled). Empty:
    /// the system's trust store.
    ssl_ca_file: String = string("").deprecated(&[("", "kombu_ssl_ca_certs")]);

    /// How long to wait (in seconds) before reconnecting in response to an
    /// AMQP consumer cancel notification.
    kombu_missing_consumer_retry_timeout: u32 = integer(60).min(0).deprecated(&[("", "kombu_reconnect_timeout")]);

    /// Configure compression of messages sent over the wire. Not supported by
    /// Staffeln: leave it unset.
    kombu_compression: String = string("");

    /// The RabbitMQ login method.
    ///
    /// Possible values:
    ///
    /// * AMQPLAIN
    /// * PLAIN
    rabbit_login_method: String = string("AMQPLAIN").choices(&[("PLAIN", ""), ("AMQPLAIN", "")]);

    /// How frequently to retry connecting with RabbitMQ, in seconds.
    rabbit_retry_interval: u32 = integer(1).min(1);

    /// How long to backoff for between retries when connecting to RabbitMQ,
    /// in seconds.
    rabbit_retry_backoff: u32 = integer(2).min(0);

    /// Maximum interval of RabbitMQ connection retries, in seconds.
    rabbit_interval_max: u32 = integer(30).min(1);

    /// Try to use HA queues in RabbitMQ (x-ha-policy: all). If you change
    /// this option, you must wipe the RabbitMQ database.
    ///
    /// Related options:
    ///
    /// * rabbit_quorum_queue
    rabbit_ha_queues: bool = boolean(false);

    /// Use quorum queues in RabbitMQ (x-queue-type: quorum) for the topic,
    /// server and notification queues. Conflicts with rabbit_ha_queues.
    ///
    /// Related options:
    ///
    /// * rabbit_ha_queues
    rabbit_quorum_queue: bool = boolean(false);

    /// Use quorum queues for the transient (reply and fanout) queues.
    rabbit_transient_quorum_queue: bool = boolean(false);

    /// Each quorum queue message is redelivered at most this many times
    /// (x-delivery-limit); 0: no limit.
    rabbit_quorum_delivery_limit: u32 = integer(0).min(0);

    /// The maximum number of messages a quorum queue keeps in memory
    /// (x-max-in-memory-length); 0: no limit.
    rabbit_quorum_max_memory_length: u32 = integer(0).min(0).deprecated(&[("", "rabbit_quroum_max_memory_length")]);

    /// The maximum bytes a quorum queue keeps in memory
    /// (x-max-in-memory-bytes); 0: no limit.
    rabbit_quorum_max_memory_bytes: u32 = integer(0).min(0).deprecated(&[("", "rabbit_quroum_max_memory_bytes")]);

    /// Positive integer representing duration in seconds for queue TTL
    /// (x-expires) of reply and fanout queues. 0 disables the TTL.
    rabbit_transient_queues_ttl: u32 = integer(1800).min(0);

    /// Specifies the number of messages to prefetch. 0 sends no basic.qos.
    rabbit_qos_prefetch_count: u16 = integer(0).min(0).max(65_535);

    /// Number of seconds after which the RabbitMQ broker is considered down
    /// if the heartbeat keep-alive fails (0 disables heartbeat).
    heartbeat_timeout_threshold: u16 = integer(60).min(0).max(65_535);

    /// How often times during the heartbeat_timeout_threshold we check the
    /// heartbeat. Accepted for compatibility.
    heartbeat_rate: u32 = integer(3).min(1);

    /// Enable x-cancel-on-ha-failover flag so that RabbitMQ server will
    /// cancel and notify consumers when queue is down.
    enable_cancel_on_failover: bool = boolean(false);

    /// Use a stream queue for fanout. Not supported by Staffeln.
    rabbit_stream_fanout: bool = boolean(false);
}
