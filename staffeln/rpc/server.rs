//! The RPC server of one target, as a stock `RPCServer` behaves on the wire:
//! it consumes `T`, `T.S` and a private `T_fanout_<uuid>` queue, dispatches
//! by namespace, version and method to the caller's [`Endpoint`]s, and
//! replies once per call to `_reply_q` through the default exchange.
//!
//! Where this server differs from Python's (invisible to peers): it
//! acknowledges a request after handling it and replying, not on receipt,
//! so a request in flight when the connection drops is redelivered rather
//! than lost; the `_unique_id` de-duplication (Python's, with a longer
//! memory) keeps a redelivered request from running twice.

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::bus::{Delivery, Outgoing, Routed, Subscription, stopped};
use super::envelope::{Context, Reply, ReplyBody, ReplyTo, Request, RpcFailure, RpcVersion, new_id};
use super::error::RpcError;
use super::target::Target;
use super::transport::Transport;
use crate::errors::chain;

/// One request as an endpoint sees it.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// The caller's context (`_context_*` without the prefix), plus
    /// `client_timeout` as a stock server adds it.
    pub context: Context,
    pub method: String,
    /// The keyword arguments.
    pub args: Map<String, Value>,
    /// As requested; `None` means 1.0.
    pub version: Option<String>,
}

impl Call {
    /// The arguments as `T`; a mismatch is the `TypeError` Python raises
    /// for bad keyword arguments.
    #[allow(clippy::result_large_err)] // the failure goes on the wire as is
    pub fn args<T: DeserializeOwned>(&self) -> Result<T, RpcFailure> {
        serde_json::from_value(Value::Object(self.args.clone()))
            .map_err(|e| RpcFailure::type_error(format!("{}() got invalid keyword arguments: {e}", self.method)))
    }
}

/// What a handler returns.
pub type Handled = BoxFuture<'static, Result<Value, RpcFailure>>;

/// A set of RPC methods at one version (oslo's endpoint object).
pub trait Endpoint: Send + Sync + 'static {
    /// `X.Y`: requests for the same major and a minor up to `Y` are served.
    fn version(&self) -> &str {
        "1.0"
    }

    /// The namespace this endpoint serves; `None` serves requests without one.
    fn namespace(&self) -> Option<&str> {
        None
    }

    /// Starts handling `call`, or `None` when this endpoint has no such
    /// method. Private names (`_…`) never reach here.
    fn dispatch(self: Arc<Self>, call: Call) -> Option<Handled>;
}

type Handler = Arc<dyn Fn(Call) -> Handled + Send + Sync>;

/// An [`Endpoint`] built from closures, one per method name.
pub struct MethodTable {
    version: String,
    namespace: Option<String>,
    methods: HashMap<String, Handler>,
}

impl MethodTable {
    pub fn new(version: &str) -> MethodTable {
        MethodTable { version: version.to_owned(), namespace: None, methods: HashMap::new() }
    }

    pub fn with_namespace(mut self, namespace: &str) -> MethodTable {
        self.namespace = Some(namespace.to_owned());
        self
    }

    pub fn method<F, Fut>(mut self, name: &str, handler: F) -> MethodTable
    where
        F: Fn(Call) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, RpcFailure>> + Send + 'static,
    {
        self.methods.insert(name.to_owned(), Arc::new(move |call| -> Handled { Box::pin(handler(call)) }));
        self
    }
}

impl Endpoint for MethodTable {
    fn version(&self) -> &str {
        &self.version
    }

    fn namespace(&self) -> Option<&str> {
        self.namespace.as_deref()
    }

    fn dispatch(self: Arc<Self>, call: Call) -> Option<Handled> {
        let handler = self.methods.get(&call.method)?.clone();
        Some(handler(call))
    }
}

const DEDUP_MEMORY: usize = 1024;

#[derive(Default)]
struct Dedup {
    order: VecDeque<String>,
    seen: HashSet<String>,
}

impl Dedup {
    /// `true` the first time `id` is seen within the memory.
    fn first_sighting(&mut self, id: &str) -> bool {
        if self.seen.contains(id) {
            return false;
        }
        if self.order.len() == DEDUP_MEMORY
            && let Some(old) = self.order.pop_front()
        {
            self.seen.remove(&old);
        }
        self.order.push_back(id.to_owned());
        self.seen.insert(id.to_owned());
        true
    }
}

struct Shared {
    transport: Transport,
    label: String,
    endpoints: Vec<(Arc<dyn Endpoint>, RpcVersion)>,
    dedup: Mutex<Dedup>,
    /// Reply queues found missing, and when: replies to them are dropped
    /// for a minute, as oslo does.
    dead_reply_queues: Mutex<HashMap<String, Instant>>,
}

/// Starts RPC servers.
pub struct RpcServer;

impl RpcServer {
    /// Declares the topology and starts consuming before it returns, so a
    /// refused declaration or an unreachable broker is reported here. The
    /// server then runs until [`ServerHandle::stop`], reconnecting as needed.
    pub async fn start(
        transport: &Transport,
        target: Target,
        endpoints: Vec<Arc<dyn Endpoint>>,
    ) -> Result<ServerHandle, RpcError> {
        let server = target.server.clone().ok_or_else(|| RpcError::NoServerName { topic: target.topic.clone() })?;
        let mut checked = Vec::new();
        for endpoint in endpoints {
            let version = RpcVersion::parse(endpoint.version())
                .map_err(|_| RpcError::InvalidEndpoint { version: endpoint.version().to_owned() })?;
            checked.push((endpoint, version));
        }
        let connector = transport.inner.connector.clone();
        let rabbit = connector.rabbit();
        let topic = &target.topic;
        let exchange = target.exchange_or(&connector.settings.control_exchange);
        let exchanges = vec![rabbit.topic_exchange(exchange), rabbit.fanout_exchange(topic)];
        let fanout = rabbit.fanout_queue(topic, &new_id());
        let queues = vec![
            rabbit.topic_queue(exchange, topic),
            rabbit.topic_queue(exchange, &format!("{topic}.{server}")),
            fanout.clone(),
        ];
        let sub = Subscription::open(&connector, "rpc-server", &exchanges, &queues).await?;
        tracing::info!(
            "RPC server listening on topic {topic}, server {server}, exchange {exchange} at {}",
            connector.url
        );
        let shared = Arc::new(Shared {
            transport: transport.clone(),
            label: format!("{topic}.{server}"),
            endpoints: checked,
            dedup: Mutex::default(),
            dead_reply_queues: Mutex::default(),
        });
        let (stop, stop_rx) = watch::channel(false);
        let pool = connector.settings.executor_thread_pool_size.max(1);
        let task = tokio::spawn(async move {
            let mut sub = sub;
            let mut stop_rx = stop_rx;
            let permits = Arc::new(Semaphore::new(pool));
            let mut inflight = JoinSet::new();
            loop {
                let next = tokio::select! {
                    biased;
                    () = stopped(&mut stop_rx) => break,
                    Some(_) = inflight.join_next(), if !inflight.is_empty() => continue,
                    next = sub.next() => next,
                };
                match next {
                    Ok(delivery) => {
                        let permit = tokio::select! {
                            permit = permits.clone().acquire_owned() => permit,
                            () = stopped(&mut stop_rx) => break,
                        };
                        let Ok(permit) = permit else { break };
                        let shared = shared.clone();
                        inflight.spawn(async move {
                            shared.handle(delivery).await;
                            drop(permit);
                        });
                    }
                    Err(why) => {
                        tracing::warn!("RPC server {} lost its consumers ({why}); reconnecting", shared.label);
                        match Subscription::reopen(&connector, "rpc-server", &exchanges, &queues, &mut stop_rx).await {
                            Some(new) => sub = new,
                            None => break,
                        }
                    }
                }
            }
            // Graceful stop: no new requests, finish the ones in flight,
            // then remove the private fanout queue as Python does.
            sub.cancel().await;
            while inflight.join_next().await.is_some() {}
            sub.delete_queue(&fanout.name).await;
            sub.close().await;
            tracing::info!("RPC server {} stopped", shared.label);
        });
        Ok(ServerHandle { stop, task })
    }
}

/// A running server.
pub struct ServerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ServerHandle {
    /// Stops consuming, waits for the requests in flight to be answered,
    /// deletes the fanout queue and closes the connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!("the RPC server task failed: {err}");
        }
    }

    /// Serves until `shutdown` completes, then stops as [`ServerHandle::stop`] does.
    pub async fn run_until(self, shutdown: impl Future<Output = ()>) {
        shutdown.await;
        self.stop().await;
    }
}

impl Shared {
    async fn handle(self: Arc<Self>, delivery: Delivery) {
        let request = match Request::decode(&delivery.body) {
            Ok(request) => request,
            Err(bad) => {
                tracing::warn!("RPC server {} dropped a malformed message: {}", self.label, chain(&bad));
                match &bad.reply {
                    Some(to) => {
                        self.reply(to, ReplyBody::Failure(RpcFailure::builtin("ValueError", bad.error.to_string())))
                            .await;
                        delivery.ack().await;
                    }
                    None => {
                        delivery.reject().await;
                    }
                }
                return;
            }
        };
        if let Some(id) = &request.unique_id {
            let first = self.dedup.lock().unwrap_or_else(|e| e.into_inner()).first_sighting(id);
            if !first {
                tracing::info!(rpc.unique_id = %id, "RPC server {} is ignoring duplicate message {id} (redelivered: {})", self.label, delivery.redelivered);
                delivery.ack().await;
                return;
            }
        }
        let reply_to = request.reply.clone();
        let heartbeat = reply_to.as_ref().and_then(|to| self.clone().heartbeat(to));
        let method = request.method.clone();
        let outcome = self.dispatch(request).await;
        if let Some(heartbeat) = heartbeat {
            heartbeat.abort();
        }
        if let Err(failure) = &outcome {
            tracing::debug!(rpc.method = %method, "{method} on {} answered {failure}", self.label);
        }
        if let Some(to) = reply_to {
            let body = match outcome {
                Ok(value) => ReplyBody::Result(value),
                Err(failure) => ReplyBody::Failure(failure),
            };
            self.reply(&to, body).await;
        }
        if !delivery.ack().await {
            tracing::debug!(
                "RPC server {}: {method} was handled but its channel is gone; a redelivery will be dropped as a duplicate",
                self.label
            );
        }
    }

    /// oslo's dispatcher rules: namespace, then version, then method.
    async fn dispatch(&self, request: Request) -> Result<Value, RpcFailure> {
        let requested_text = request.version.clone().unwrap_or_else(|| "1.0".to_owned());
        let requested =
            RpcVersion::parse(&requested_text).map_err(|e| RpcFailure::builtin("ValueError", e.to_string()))?;
        let mut context = request.context;
        let client_timeout = request.reply.as_ref().and_then(|r| r.call_monitor_timeout);
        context.insert(
            "client_timeout".to_owned(),
            client_timeout.and_then(serde_json::Number::from_f64).map_or(Value::Null, Value::Number),
        );
        let call = Call { context, method: request.method, args: request.args, version: request.version };
        let mut compatible = false;
        for (endpoint, version) in &self.endpoints {
            if endpoint.namespace() != request.namespace.as_deref() || !version.can_serve(requested) {
                continue;
            }
            compatible = true;
            if call.method.starts_with('_') {
                continue;
            }
            if let Some(handled) = endpoint.clone().dispatch(call.clone()) {
                // In its own task, so that a panicking handler still gets a reply.
                return match tokio::spawn(handled).await {
                    Ok(outcome) => outcome,
                    Err(err) => {
                        tracing::error!(rpc.method = %call.method, "the handler of {} on {} failed: {err}", call.method, self.label);
                        Err(RpcFailure::remote("InternalError", format!("the handler of {} failed", call.method)))
                    }
                };
            }
        }
        if compatible {
            Err(RpcFailure::no_such_method(&call.method))
        } else {
            Err(RpcFailure::unsupported_version(&requested_text, &call.method))
        }
    }

    /// Sends `{"result": null, "ending": false}` every `int(_timeout)/2`
    /// seconds while the call runs, when that is at least one second.
    fn heartbeat(self: Arc<Self>, to: &ReplyTo) -> Option<tokio::task::JoinHandle<()>> {
        let interval = to.call_monitor_timeout?.trunc() / 2.0;
        if !(1.0..=86_400.0).contains(&interval) {
            return None;
        }
        let to = to.clone();
        Some(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs_f64(interval)).await;
                self.reply(&to, ReplyBody::Heartbeat).await;
            }
        }))
    }

    /// Publishes to `_reply_q` (mandatory); a missing reply queue is retried
    /// every 0.25 s for `kombu_missing_consumer_retry_timeout`, as in oslo.
    async fn reply(&self, to: &ReplyTo, body: ReplyBody) {
        let body = Reply { msg_id: to.msg_id.clone(), body }.encode();
        let retry_for =
            Duration::from_secs(self.transport.settings().rabbit.kombu_missing_consumer_retry_timeout.into());
        let deadline = Instant::now() + retry_for;
        let msg = Outgoing {
            exchange: None,
            queues: &[],
            routing_key: &to.reply_q,
            body: &body,
            mandatory: true,
            expiration: None,
        };
        loop {
            match self.transport.inner.publisher.publish(&msg, deadline).await {
                Ok(Routed::Yes) => return,
                Ok(Routed::Returned) => {
                    if Instant::now() + Duration::from_millis(250) >= deadline {
                        tracing::warn!(
                            rpc.msg_id = %to.msg_id,
                            "Abandoning the reply to {} after {} s: reply queue {} is missing",
                            to.msg_id,
                            retry_for.as_secs(),
                            to.reply_q
                        );
                        self.dead_reply_queues
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(to.reply_q.clone(), Instant::now());
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(err) => {
                    tracing::warn!(rpc.msg_id = %to.msg_id, "cannot send the reply to {} on {}: {}", to.msg_id, to.reply_q, chain(&err));
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn dedup_remembers_a_bounded_window() {
        let mut d = Dedup::default();
        assert!(d.first_sighting("a"));
        assert!(!d.first_sighting("a"));
        for i in 0..DEDUP_MEMORY {
            assert!(d.first_sighting(&i.to_string()));
        }
        assert!(d.first_sighting("a"), "forgotten after {DEDUP_MEMORY} newer ids");
    }
}
