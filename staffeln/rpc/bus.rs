//! The two things every role does with the broker, over lapin or `fake://`:
//! publish (with publisher confirms, declaring before the first publish,
//! reconnecting and retrying while the deadline allows) and consume a set
//! of queues on one connection (declare, bind, `basic.consume`).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::stream::SelectAll;
use lapin::options::{
    BasicAckOptions, BasicCancelOptions, BasicConsumeOptions, BasicPublishOptions, BasicQosOptions, BasicRejectOptions,
    ConfirmSelectOptions, ExchangeDeclareOptions, QueueBindOptions, QueueDeclareOptions, QueueDeleteOptions,
};
use lapin::types::{AMQPValue, FieldTable, ShortString};
use lapin::{BasicProperties, Confirmation, ExchangeKind};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::connection::Connector;
use super::envelope::CONTENT_TYPE;
use super::error::RpcError;
use super::topology::{Arg, ExchangeDecl, ExchangeType, QueueDecl};

/// Completes once `stop` is true or its sender is gone.
pub(crate) async fn stopped(stop: &mut tokio::sync::watch::Receiver<bool>) {
    let _ = stop.wait_for(|s| *s).await;
}

fn table(args: &[(&'static str, Arg)]) -> FieldTable {
    let mut t = FieldTable::default();
    for (key, value) in args {
        let v = match value {
            Arg::Int(i) => AMQPValue::LongInt(*i),
            Arg::Str(s) => AMQPValue::LongString(s.as_str().into()),
            Arg::Bool(b) => AMQPValue::Boolean(*b),
        };
        t.insert((*key).into(), v);
    }
    t
}

fn broker_error(connector: &Connector, operation: String, source: lapin::Error) -> RpcError {
    RpcError::Broker { operation, url: connector.url.to_string(), source: Box::new(source) }
}

/// Whether retrying on a new connection can help: not for a refused
/// declaration (406 PRECONDITION_FAILED, 403 ACCESS_REFUSED, 405 RESOURCE_LOCKED).
pub(crate) fn retryable(err: &RpcError) -> bool {
    match err {
        RpcError::Broker { source, .. } | RpcError::Connect { source, .. } => match source.kind() {
            lapin::ErrorKind::ProtocolError(e) => {
                !(source.is_amqp_soft_error() && matches!(e.get_id(), 403 | 405 | 406))
            }
            _ => source.can_be_recovered(),
        },
        _ => false,
    }
}

async fn declare_exchange(connector: &Connector, ch: &lapin::Channel, x: &ExchangeDecl) -> Result<(), RpcError> {
    let kind = match x.kind {
        ExchangeType::Topic => ExchangeKind::Topic,
        ExchangeType::Fanout => ExchangeKind::Fanout,
    };
    let opts =
        ExchangeDeclareOptions { durable: x.durable, auto_delete: x.auto_delete, ..ExchangeDeclareOptions::default() };
    ch.exchange_declare(x.name.as_str().into(), kind, opts, FieldTable::default())
        .await
        .map_err(|e| broker_error(connector, format!("declaring exchange {}", x.name), e))
}

async fn declare_queue(connector: &Connector, ch: &lapin::Channel, q: &QueueDecl) -> Result<(), RpcError> {
    let opts = QueueDeclareOptions { durable: q.durable, auto_delete: q.auto_delete, ..QueueDeclareOptions::default() };
    ch.queue_declare(q.name.as_str().into(), opts, table(&q.args))
        .await
        .map_err(|e| broker_error(connector, format!("declaring queue {}", q.name), e))?;
    if let Some((exchange, key)) = &q.bind {
        ch.queue_bind(
            q.name.as_str().into(),
            exchange.as_str().into(),
            key.as_str().into(),
            QueueBindOptions::default(),
            FieldTable::default(),
        )
        .await
        .map_err(|e| broker_error(connector, format!("binding queue {} to {exchange} with key {key}", q.name), e))?;
    }
    Ok(())
}

/// One message to publish.
pub(crate) struct Outgoing<'a> {
    /// `None`: the default exchange (replies).
    pub(crate) exchange: Option<&'a ExchangeDecl>,
    /// Declared once per connection before publishing (notification queues).
    pub(crate) queues: &'a [QueueDecl],
    pub(crate) routing_key: &'a str,
    pub(crate) body: &'a [u8],
    pub(crate) mandatory: bool,
    pub(crate) expiration: Option<Duration>,
}

/// Whether the broker routed a message to at least one queue (only known
/// for `mandatory` publishes).
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Routed {
    Yes,
    Returned,
}

struct PubLink {
    generation: u64,
    _conn: lapin::Connection,
    channel: lapin::Channel,
    declared: HashSet<String>,
}

/// The publishing connection of a transport (oslo's send pool, with one
/// confirm-mode channel).
pub(crate) struct Publisher {
    connector: Arc<Connector>,
    link: tokio::sync::Mutex<Option<PubLink>>,
    generations: std::sync::atomic::AtomicU64,
}

impl Publisher {
    pub(crate) fn new(connector: Arc<Connector>) -> Publisher {
        Publisher { connector, link: tokio::sync::Mutex::new(None), generations: 0.into() }
    }

    pub(crate) async fn close(&self) {
        if let Some(link) = self.link.lock().await.take() {
            let _ = link.channel.close(200, "OK".into()).await;
        }
    }

    /// Publishes, reconnecting and retrying on connection trouble until
    /// `deadline`; a refused declaration fails at once.
    pub(crate) async fn publish(&self, msg: &Outgoing<'_>, deadline: Instant) -> Result<Routed, RpcError> {
        if let Some(fake) = &self.connector.fake {
            if let Some(x) = msg.exchange {
                fake.declare_exchange(x);
            }
            for q in msg.queues {
                fake.declare_queue(q);
            }
            let routed = fake.publish(msg.exchange.map_or("", |x| x.name.as_str()), msg.routing_key, msg.body);
            return Ok(if routed { Routed::Yes } else { Routed::Returned });
        }
        let mut attempt = 0u32;
        loop {
            let err = match self.try_publish(msg).await {
                Ok(routed) => return Ok(routed),
                Err(err) => err,
            };
            if !retryable(&err) {
                return Err(err);
            }
            // The first retry is immediate: usually only the old link died.
            let delay = if attempt == 0 { Duration::ZERO } else { self.connector.rabbit().retry_delay(attempt - 1) };
            attempt += 1;
            if Instant::now() + delay >= deadline {
                return Err(err);
            }
            if attempt > 1 {
                tracing::warn!(
                    "publishing to {} failed: {}; retrying in {} s",
                    msg.routing_key,
                    super::chain(&err),
                    delay.as_secs()
                );
            }
            tokio::time::sleep(delay).await;
        }
    }

    async fn try_publish(&self, msg: &Outgoing<'_>) -> Result<Routed, RpcError> {
        let connector = &self.connector;
        let (generation, channel) = {
            let mut guard = self.link.lock().await;
            let stale = guard.as_ref().is_none_or(|l| !l.channel.status().connected());
            if stale {
                *guard = None;
                let conn = connector.connect("publish").await?;
                let channel =
                    conn.create_channel().await.map_err(|e| broker_error(connector, "opening a channel".into(), e))?;
                channel
                    .confirm_select(ConfirmSelectOptions::default())
                    .await
                    .map_err(|e| broker_error(connector, "enabling publisher confirms".into(), e))?;
                let generation = self.generations.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                *guard = Some(PubLink { generation, _conn: conn, channel, declared: HashSet::new() });
            }
            let Some(link) = guard.as_mut() else {
                return Err(RpcError::Closed);
            };
            let mut declared = Ok(());
            if let Some(x) = msg.exchange.filter(|x| !link.declared.contains(&format!("x:{}", x.name))) {
                declared = declare_exchange(connector, &link.channel, x).await;
                if declared.is_ok() {
                    link.declared.insert(format!("x:{}", x.name));
                }
            }
            for q in msg.queues {
                if declared.is_err() || link.declared.contains(&format!("q:{}", q.name)) {
                    continue;
                }
                declared = declare_queue(connector, &link.channel, q).await;
                if declared.is_ok() {
                    link.declared.insert(format!("q:{}", q.name));
                }
            }
            if let Err(err) = declared {
                *guard = None; // the broker closed the channel
                return Err(err);
            }
            (link.generation, link.channel.clone())
        };
        let mut props = BasicProperties::default()
            .with_content_type(CONTENT_TYPE.into())
            .with_content_encoding("utf-8".into())
            .with_delivery_mode(2)
            .with_priority(0)
            .with_headers(FieldTable::default());
        if let Some(expiration) = msg.expiration {
            props = props.with_expiration(expiration.as_millis().to_string().into());
        }
        let exchange = msg.exchange.map_or("", |x| x.name.as_str());
        let opts = BasicPublishOptions { mandatory: msg.mandatory, ..BasicPublishOptions::default() };
        let sent = async {
            channel.basic_publish(exchange.into(), msg.routing_key.into(), opts, msg.body, props).await?.await
        }
        .await;
        match sent {
            Ok(Confirmation::Ack(Some(_))) => Ok(Routed::Returned),
            Ok(Confirmation::Ack(None) | Confirmation::NotRequested) => Ok(Routed::Yes),
            Ok(Confirmation::Nack(_)) => {
                Err(RpcError::Nacked { exchange: exchange.to_owned(), routing_key: msg.routing_key.to_owned() })
            }
            Err(e) => {
                let mut guard = self.link.lock().await;
                if guard.as_ref().is_some_and(|l| l.generation == generation) {
                    *guard = None;
                }
                Err(broker_error(
                    connector,
                    format!("publishing to exchange {exchange:?} with key {}", msg.routing_key),
                    e,
                ))
            }
        }
    }
}

/// A received message. Acknowledge or reject it once.
pub(crate) struct Delivery {
    pub(crate) body: Vec<u8>,
    pub(crate) redelivered: bool,
    acker: Option<lapin::Acker>,
}

impl Delivery {
    /// `basic.ack`; `false` when the channel it came on is gone (the broker
    /// then redelivers it).
    pub(crate) async fn ack(&self) -> bool {
        match &self.acker {
            Some(acker) => acker.ack(BasicAckOptions::default()).await.is_ok(),
            None => true,
        }
    }

    /// `basic.reject` without requeue.
    pub(crate) async fn reject(&self) -> bool {
        match &self.acker {
            Some(acker) => acker.reject(BasicRejectOptions { requeue: false }).await.is_ok(),
            None => true,
        }
    }
}

#[allow(clippy::large_enum_variant)] // one per subscription
enum Source {
    Rabbit {
        _conn: lapin::Connection,
        channel: lapin::Channel,
        consumers: SelectAll<lapin::Consumer>,
        tags: Vec<ShortString>,
    },
    Fake {
        rx: mpsc::Receiver<Vec<u8>>,
        tasks: Vec<tokio::task::JoinHandle<()>>,
    },
}

/// Consumers of a set of queues on one connection (oslo's listen connection).
pub(crate) struct Subscription {
    connector: Arc<Connector>,
    source: Source,
}

impl Subscription {
    /// Declares the exchanges, then each queue with its binding, then consumes them all.
    pub(crate) async fn open(
        connector: &Arc<Connector>,
        purpose: &str,
        exchanges: &[ExchangeDecl],
        queues: &[QueueDecl],
    ) -> Result<Subscription, RpcError> {
        if let Some(fake) = &connector.fake {
            let (tx, rx) = mpsc::channel(64);
            let mut tasks = Vec::new();
            for x in exchanges {
                fake.declare_exchange(x);
            }
            for q in queues {
                fake.declare_queue(q);
                tasks.extend(fake.consume(&q.name, tx.clone()));
            }
            return Ok(Subscription { connector: connector.clone(), source: Source::Fake { rx, tasks } });
        }
        let conn = connector.connect(purpose).await?;
        let channel =
            conn.create_channel().await.map_err(|e| broker_error(connector, "opening a channel".into(), e))?;
        let prefetch = connector.rabbit().rabbit_qos_prefetch_count;
        if prefetch > 0 {
            channel
                .basic_qos(prefetch, BasicQosOptions { global: false })
                .await
                .map_err(|e| broker_error(connector, format!("basic.qos prefetch {prefetch}"), e))?;
        }
        for x in exchanges {
            declare_exchange(connector, &channel, x).await?;
        }
        let mut consumers = SelectAll::new();
        let mut tags = Vec::new();
        for (i, q) in queues.iter().enumerate() {
            declare_queue(connector, &channel, q).await?;
            let tag: ShortString = (i + 1).to_string().into();
            let consumer = channel
                .basic_consume(
                    q.name.as_str().into(),
                    tag.clone(),
                    BasicConsumeOptions::default(),
                    table(&connector.rabbit().consumer_args()),
                )
                .await
                .map_err(|e| broker_error(connector, format!("consuming queue {}", q.name), e))?;
            consumers.push(consumer);
            tags.push(tag);
        }
        Ok(Subscription {
            connector: connector.clone(),
            source: Source::Rabbit { _conn: conn, channel, consumers, tags },
        })
    }

    /// Opens the subscription again after a loss, retrying with oslo's
    /// backoff until it works; `None` when `stop` turns true first.
    pub(crate) async fn reopen(
        connector: &Arc<Connector>,
        purpose: &str,
        exchanges: &[ExchangeDecl],
        queues: &[QueueDecl],
        stop: &mut tokio::sync::watch::Receiver<bool>,
    ) -> Option<Subscription> {
        let mut attempt = 0u32;
        loop {
            let delay = if attempt == 0 { Duration::ZERO } else { connector.rabbit().retry_delay(attempt - 1) };
            tokio::select! {
                () = stopped(stop) => return None,
                () = tokio::time::sleep(delay) => {}
            }
            let opened = tokio::select! {
                () = stopped(stop) => return None,
                opened = Subscription::open(connector, purpose, exchanges, queues) => opened,
            };
            match opened {
                Ok(sub) => {
                    tracing::info!("{purpose} consumer reconnected to {}", connector.url);
                    return Some(sub);
                }
                Err(err) => {
                    let next = connector.rabbit().retry_delay(attempt);
                    tracing::warn!(
                        "{purpose} consumer cannot reconnect: {}; retrying in {} s",
                        super::chain(&err),
                        next.as_secs()
                    );
                }
            }
            attempt += 1;
        }
    }

    /// The next message; `Err` says why the subscription ended (connection
    /// lost, consumer cancelled by the broker).
    pub(crate) async fn next(&mut self) -> Result<Delivery, String> {
        match &mut self.source {
            Source::Fake { rx, .. } => match rx.recv().await {
                Some(body) => Ok(Delivery { body, redelivered: false, acker: None }),
                None => Err("the fake broker closed the queue".to_owned()),
            },
            Source::Rabbit { consumers, .. } => match consumers.next().await {
                Some(Ok(d)) => Ok(Delivery { body: d.data, redelivered: d.redelivered, acker: Some(d.acker) }),
                Some(Err(e)) => Err(e.to_string()),
                None => Err("the broker cancelled the consumers".to_owned()),
            },
        }
    }

    /// Stops the flow of new messages; unacknowledged ones go back to their
    /// queue when the connection closes.
    pub(crate) async fn cancel(&mut self) {
        match &mut self.source {
            Source::Fake { tasks, rx } => {
                rx.close();
                for t in tasks.drain(..) {
                    t.abort();
                }
            }
            Source::Rabbit { channel, tags, .. } => {
                for tag in tags.drain(..) {
                    let _ = channel.basic_cancel(tag, BasicCancelOptions::default()).await;
                }
            }
        }
    }

    pub(crate) async fn delete_queue(&self, name: &str) {
        match &self.source {
            Source::Fake { .. } => {
                if let Some(fake) = &self.connector.fake {
                    fake.delete_queue(name);
                }
            }
            Source::Rabbit { channel, .. } => {
                if let Err(err) = channel.queue_delete(name.into(), QueueDeleteOptions::default()).await {
                    tracing::debug!("cannot delete queue {name}: {err}");
                }
            }
        }
    }

    pub(crate) async fn close(mut self) {
        self.cancel().await;
        if let Source::Rabbit { channel, .. } = &self.source {
            let _ = channel.close(200, "OK".into()).await;
        }
    }
}
