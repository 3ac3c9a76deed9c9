//! The exchanges and queues the Python peers declare, flag for flag, as
//! pure functions of [`RabbitSettings`] (oslo's `impl_rabbit.py`). A Rust peer
//! that declares anything else gets `406 PRECONDITION_FAILED` from a broker
//! shared with Python peers.

use super::settings::RabbitSettings;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ExchangeType {
    Topic,
    Fanout,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct ExchangeDecl {
    pub(crate) name: String,
    pub(crate) kind: ExchangeType,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
}

/// A queue argument, typed as py-amqp encodes it (`I` or `S`, and `t`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Arg {
    Int(i32),
    Str(String),
    Bool(bool),
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct QueueDecl {
    pub(crate) name: String,
    pub(crate) durable: bool,
    pub(crate) auto_delete: bool,
    pub(crate) args: Vec<(&'static str, Arg)>,
    /// `(exchange, routing key)`; `None` for reply queues (default exchange).
    pub(crate) bind: Option<(String, String)>,
}

fn int_arg(value: u64) -> Arg {
    Arg::Int(i32::try_from(value).unwrap_or(i32::MAX))
}

impl RabbitSettings {
    /// oslo's connection-level `durable`.
    fn durable(&self) -> bool {
        self.amqp_durable_queues || self.rabbit_quorum_queue
    }

    /// `_get_queue_arguments`, without the stream case (refused by validation).
    fn queue_args(&self, quorum: bool, ttl_secs: u32) -> Vec<(&'static str, Arg)> {
        let mut args = Vec::new();
        if self.rabbit_ha_queues {
            args.push(("x-ha-policy", Arg::Str("all".to_owned())));
        }
        if quorum {
            args.push(("x-queue-type", Arg::Str("quorum".to_owned())));
            if self.rabbit_quorum_delivery_limit > 0 {
                args.push(("x-delivery-limit", int_arg(self.rabbit_quorum_delivery_limit.into())));
            }
            if self.rabbit_quorum_max_memory_length > 0 {
                args.push(("x-max-in-memory-length", int_arg(self.rabbit_quorum_max_memory_length.into())));
            }
            if self.rabbit_quorum_max_memory_bytes > 0 {
                args.push(("x-max-in-memory-bytes", int_arg(self.rabbit_quorum_max_memory_bytes.into())));
            }
        }
        if ttl_secs > 0 {
            args.push(("x-expires", int_arg(u64::from(ttl_secs) * 1000)));
        }
        args
    }

    /// The control exchange (or a target's exchange): calls, casts, notifications.
    pub(crate) fn topic_exchange(&self, name: &str) -> ExchangeDecl {
        ExchangeDecl {
            name: name.to_owned(),
            kind: ExchangeType::Topic,
            durable: self.durable(),
            auto_delete: self.amqp_auto_delete,
        }
    }

    /// Queue `T` or `T.S` (and the notification queues), bound with its own name.
    pub(crate) fn topic_queue(&self, exchange: &str, name: &str) -> QueueDecl {
        QueueDecl {
            name: name.to_owned(),
            durable: self.durable(),
            auto_delete: self.amqp_auto_delete,
            args: self.queue_args(self.rabbit_quorum_queue, 0),
            bind: Some((exchange.to_owned(), name.to_owned())),
        }
    }

    /// A listener's own queue (a pool) on `exchange`, bound with
    /// `routing_key`; it expires after `rabbit_transient_queues_ttl` without
    /// a consumer.
    pub(crate) fn pool_queue(&self, exchange: &str, name: &str, routing_key: &str) -> QueueDecl {
        QueueDecl {
            name: name.to_owned(),
            durable: self.durable(),
            auto_delete: self.amqp_auto_delete,
            args: self.queue_args(self.rabbit_quorum_queue, self.rabbit_transient_queues_ttl),
            bind: Some((exchange.to_owned(), routing_key.to_owned())),
        }
    }

    /// A listener's private queue on `exchange`, bound with `routing_key`:
    /// classic, not durable, deleted by the broker when its consumer goes
    /// (auto-delete), and after `rabbit_transient_queues_ttl` without one.
    pub(crate) fn private_queue(&self, exchange: &str, name: &str, routing_key: &str) -> QueueDecl {
        QueueDecl {
            name: name.to_owned(),
            durable: false,
            auto_delete: true,
            args: self.queue_args(false, self.rabbit_transient_queues_ttl),
            bind: Some((exchange.to_owned(), routing_key.to_owned())),
        }
    }

    /// Exchange `T_fanout`.
    pub(crate) fn fanout_exchange(&self, topic: &str) -> ExchangeDecl {
        ExchangeDecl {
            name: format!("{topic}_fanout"),
            kind: ExchangeType::Fanout,
            durable: self.rabbit_transient_quorum_queue,
            auto_delete: true,
        }
    }

    /// A server's private queue `T_fanout_<unique>` on `T_fanout`.
    pub(crate) fn fanout_queue(&self, topic: &str, unique: &str) -> QueueDecl {
        QueueDecl {
            name: format!("{topic}_fanout_{unique}"),
            durable: self.rabbit_transient_quorum_queue,
            auto_delete: false,
            args: self.queue_args(self.rabbit_transient_quorum_queue, self.rabbit_transient_queues_ttl),
            bind: Some((format!("{topic}_fanout"), topic.to_owned())),
        }
    }

    /// A client's reply queue, reached through the default exchange.
    pub(crate) fn reply_queue(&self, name: &str) -> QueueDecl {
        QueueDecl {
            name: name.to_owned(),
            durable: self.rabbit_transient_quorum_queue,
            auto_delete: false,
            args: self.queue_args(self.rabbit_transient_quorum_queue, self.rabbit_transient_queues_ttl),
            bind: None,
        }
    }

    /// Consumer arguments.
    pub(crate) fn consumer_args(&self) -> Vec<(&'static str, Arg)> {
        if self.enable_cancel_on_failover { vec![("x-cancel-on-ha-failover", Arg::Bool(true))] } else { Vec::new() }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(f: impl FnOnce(&mut RabbitSettings)) -> RabbitSettings {
        let mut s = RabbitSettings::default();
        f(&mut s);
        s
    }

    fn s(v: &str) -> Arg {
        Arg::Str(v.to_owned())
    }

    /// One row per §1.2 option: (settings, topic exchange durable/auto-delete,
    /// topic queue durable/auto-delete/args, fanout exchange durable,
    /// fanout+reply queue durable/args).
    #[test]
    fn declarations_match_the_python_peers_for_each_wire_option() {
        type Row = (
            RabbitSettings,
            (bool, bool),
            (bool, bool, Vec<(&'static str, Arg)>),
            bool,
            (bool, Vec<(&'static str, Arg)>),
        );
        let ttl = |secs: i32| ("x-expires", Arg::Int(secs * 1000));
        let rows: Vec<Row> = vec![
            (settings(|_| ()), (false, false), (false, false, vec![]), false, (false, vec![ttl(1800)])),
            (
                settings(|s| s.amqp_durable_queues = true),
                (true, false),
                (true, false, vec![]),
                false,
                (false, vec![ttl(1800)]),
            ),
            (
                settings(|s| s.amqp_auto_delete = true),
                (false, true),
                (false, true, vec![]),
                false,
                (false, vec![ttl(1800)]),
            ),
            (
                settings(|s| s.rabbit_ha_queues = true),
                (false, false),
                (false, false, vec![("x-ha-policy", s("all"))]),
                false,
                (false, vec![("x-ha-policy", s("all")), ttl(1800)]),
            ),
            (
                settings(|s| {
                    s.rabbit_quorum_queue = true;
                    s.rabbit_quorum_delivery_limit = 5;
                }),
                (true, false),
                (true, false, vec![("x-queue-type", s("quorum")), ("x-delivery-limit", Arg::Int(5))]),
                false,
                (false, vec![ttl(1800)]),
            ),
            (
                settings(|s| s.rabbit_transient_quorum_queue = true),
                (false, false),
                (false, false, vec![]),
                true,
                (true, vec![("x-queue-type", s("quorum")), ttl(1800)]),
            ),
            (
                settings(|s| s.rabbit_transient_queues_ttl = 0),
                (false, false),
                (false, false, vec![]),
                false,
                (false, vec![]),
            ),
            (
                settings(|s| s.rabbit_transient_queues_ttl = 60),
                (false, false),
                (false, false, vec![]),
                false,
                (false, vec![ttl(60)]),
            ),
        ];
        for (r, exchange, queue, fanout_durable, transient) in rows {
            let x = r.topic_exchange("X");
            assert_eq!((x.kind, x.durable, x.auto_delete), (ExchangeType::Topic, exchange.0, exchange.1), "{r:?}");
            for name in ["T", "T.S"] {
                let q = r.topic_queue("X", name);
                assert_eq!((q.durable, q.auto_delete, &q.args), (queue.0, queue.1, &queue.2), "{r:?}");
                assert_eq!(q.bind, Some(("X".to_owned(), name.to_owned())));
            }
            let fx = r.fanout_exchange("T");
            assert_eq!(
                (fx.name.as_str(), fx.kind, fx.durable, fx.auto_delete),
                ("T_fanout", ExchangeType::Fanout, fanout_durable, true)
            );
            let fq = r.fanout_queue("T", "abc");
            assert_eq!(fq.name, "T_fanout_abc");
            assert_eq!(fq.bind, Some(("T_fanout".to_owned(), "T".to_owned())));
            let rq = r.reply_queue("reply_abc");
            assert_eq!(rq.bind, None);
            for q in [fq, rq] {
                assert_eq!((q.durable, q.auto_delete, &q.args), (transient.0, false, &transient.1), "{r:?} {}", q.name);
            }
        }
    }

    #[test]
    fn cancel_on_failover_is_a_consumer_argument() {
        assert!(RabbitSettings::default().consumer_args().is_empty());
        let r = settings(|s| s.enable_cancel_on_failover = true);
        assert_eq!(r.consumer_args(), vec![("x-cancel-on-ha-failover", Arg::Bool(true))]);
    }
}
