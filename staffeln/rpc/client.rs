//! Calls and casts, as a stock `RPCClient` sends them: requests to the
//! control exchange (routing key `T` or `T.S`), fanout casts to `T_fanout`,
//! replies through one `reply_<uuid>` queue per transport, matched on
//! `_msg_id`. The client times out by itself: nothing on the wire says that
//! no server is listening.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::bus::{Outgoing, Subscription, stopped};
use super::envelope::{Context, Reply, ReplyBody, ReplyTo, Request, new_id};
use super::topology::QueueDecl;
use super::transport::{Connector, Transport};
use super::{RpcError, Target};

type Pending = Arc<Mutex<HashMap<String, mpsc::UnboundedSender<ReplyBody>>>>;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The reply queue of a transport and the task consuming it.
pub(crate) struct ReplyListener {
    queue: String,
    pending: Pending,
    stop: watch::Sender<bool>,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
}

impl ReplyListener {
    /// Declares and consumes the reply queue before returning, so that no
    /// reply can arrive before it exists.
    async fn start(connector: Arc<Connector>) -> Result<ReplyListener, RpcError> {
        let queue = format!("reply_{}", new_id());
        let decl = connector.rabbit().reply_queue(&queue);
        let sub = Subscription::open(&connector, "reply", &[], std::slice::from_ref(&decl)).await?;
        let pending = Pending::default();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(listen(connector, decl, sub, pending.clone(), stop_rx));
        Ok(ReplyListener { queue, pending, stop, task: Mutex::new(Some(task)) })
    }

    /// Stops consuming and deletes the reply queue (the Python client leaves
    /// it to `x-expires`; deleting it is harmless since nobody else uses it).
    pub(crate) async fn close(&self) {
        let _ = self.stop.send(true);
        let task = lock(&self.task).take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

impl Drop for ReplyListener {
    fn drop(&mut self) {
        if let Some(task) = lock(&self.task).take() {
            task.abort();
        }
    }
}

async fn listen(
    connector: Arc<Connector>,
    decl: QueueDecl,
    mut sub: Subscription,
    pending: Pending,
    mut stop: watch::Receiver<bool>,
) {
    loop {
        let next = tokio::select! {
            () = stopped(&mut stop) => {
                sub.delete_queue(&decl.name).await;
                sub.close().await;
                return;
            }
            next = sub.next() => next,
        };
        match next {
            Ok(delivery) => {
                match Reply::decode(&delivery.body) {
                    Ok(reply) => {
                        let tx = lock(&pending).get(&reply.msg_id).cloned();
                        match tx {
                            Some(tx) => {
                                let _ = tx.send(reply.body);
                            }
                            None => {
                                tracing::debug!(rpc.msg_id = %reply.msg_id, "ignoring a reply to {} that nobody awaits", reply.msg_id)
                            }
                        }
                    }
                    Err(err) => tracing::warn!("dropping a malformed reply on {}: {}", decl.name, super::chain(&err)),
                }
                // After routing: the caller need not wait for the ack.
                delivery.ack().await;
            }
            Err(why) => {
                tracing::warn!("reply queue {} lost its consumer ({why}); reconnecting", decl.name);
                match Subscription::reopen(&connector, "reply", &[], std::slice::from_ref(&decl), &mut stop).await {
                    Some(new) => sub = new,
                    None => return,
                }
            }
        }
    }
}

struct PendingCall<'a> {
    pending: &'a Pending,
    msg_id: String,
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.msg_id);
    }
}

/// A client for one target; cheap to clone. Clients made from one
/// [`Transport`] share its connection and reply queue.
#[derive(Clone, Debug)]
pub struct RpcClient {
    transport: Transport,
    target: Target,
}

impl RpcClient {
    pub fn new(transport: &Transport, target: Target) -> RpcClient {
        RpcClient { transport: transport.clone(), target }
    }

    /// The same client aimed at one server (`prepare(server=…)`).
    pub fn to_server(&self, server: &str) -> RpcClient {
        RpcClient { transport: self.transport.clone(), target: self.target.clone().with_server(server) }
    }

    pub fn target(&self) -> &Target {
        &self.target
    }

    fn exchange(&self) -> super::topology::ExchangeDecl {
        let settings = self.transport.settings();
        settings.rabbit.topic_exchange(self.target.exchange_or(&settings.control_exchange))
    }

    fn request(
        &self,
        ctx: &Context,
        method: &str,
        args: Value,
        version: &str,
        reply: Option<ReplyTo>,
    ) -> Result<Request, RpcError> {
        let Value::Object(args) = args else {
            let found = args.to_string().chars().take(60).collect();
            return Err(RpcError::InvalidArgs { method: method.to_owned(), found });
        };
        Ok(Request {
            method: method.to_owned(),
            args,
            namespace: self.target.namespace.clone(),
            version: Some(version.to_owned()),
            context: ctx.clone(),
            unique_id: Some(new_id()),
            reply,
        })
    }

    /// Calls `method` and waits for its result. `timeout` defaults to
    /// `rpc_response_timeout`; a remote exception becomes [`RpcError::Remote`].
    pub async fn call(
        &self,
        ctx: &Context,
        method: &str,
        args: Value,
        version: &str,
        timeout: Option<Duration>,
    ) -> Result<Value, RpcError> {
        let timeout = timeout.unwrap_or(self.transport.settings().rpc_response_timeout);
        let deadline = Instant::now() + timeout;
        let timed_out = || RpcError::Timeout { target: self.target.routing_key(), method: method.to_owned(), timeout };
        let inner = &self.transport.inner;
        let replies = tokio::time::timeout_at(
            deadline,
            inner.replies.get_or_try_init(|| ReplyListener::start(inner.connector.clone())),
        )
        .await
        .map_err(|_| timed_out())??;
        let msg_id = new_id();
        let request = self.request(
            ctx,
            method,
            args,
            version,
            Some(ReplyTo { msg_id: msg_id.clone(), reply_q: replies.queue.clone(), call_monitor_timeout: None }),
        )?;
        let (tx, mut rx) = mpsc::unbounded_channel();
        lock(&replies.pending).insert(msg_id.clone(), tx);
        let _guard = PendingCall { pending: &replies.pending, msg_id };
        let exchange = self.exchange();
        let body = request.encode();
        let routing_key = self.target.routing_key();
        let msg = Outgoing {
            exchange: Some(&exchange),
            queues: &[],
            routing_key: &routing_key,
            body: &body,
            mandatory: false,
            expiration: Some(timeout),
        };
        inner.publisher.publish(&msg, deadline).await?;
        loop {
            let body =
                tokio::time::timeout_at(deadline, rx.recv()).await.map_err(|_| timed_out())?.ok_or(RpcError::Closed)?;
            match body {
                ReplyBody::Result(value) | ReplyBody::Partial(value) => return Ok(value),
                ReplyBody::Heartbeat => continue,
                ReplyBody::Failure(f) => {
                    return Err(RpcError::Remote {
                        target: routing_key,
                        method: method.to_owned(),
                        exc_type: f.class,
                        module: f.module,
                        message: f.message,
                    });
                }
            }
        }
    }

    /// Sends `method` to one server of the topic (or the target's server), no reply.
    pub async fn cast(&self, ctx: &Context, method: &str, args: Value, version: &str) -> Result<(), RpcError> {
        let request = self.request(ctx, method, args, version, None)?;
        let exchange = self.exchange();
        let body = request.encode();
        let routing_key = self.target.routing_key();
        let msg = Outgoing {
            exchange: Some(&exchange),
            queues: &[],
            routing_key: &routing_key,
            body: &body,
            mandatory: false,
            expiration: None,
        };
        let deadline = Instant::now() + self.transport.settings().rpc_response_timeout;
        self.transport.inner.publisher.publish(&msg, deadline).await.map(drop)
    }

    /// Sends `method` to every server of the topic (`T_fanout`), no reply.
    pub async fn fanout_cast(&self, ctx: &Context, method: &str, args: Value, version: &str) -> Result<(), RpcError> {
        let request = self.request(ctx, method, args, version, None)?;
        let exchange = self.transport.settings().rabbit.fanout_exchange(&self.target.topic);
        let body = request.encode();
        let msg = Outgoing {
            exchange: Some(&exchange),
            queues: &[],
            routing_key: "",
            body: &body,
            mandatory: false,
            expiration: None,
        };
        let deadline = Instant::now() + self.transport.settings().rpc_response_timeout;
        self.transport.inner.publisher.publish(&msg, deadline).await.map(drop)
    }
}
