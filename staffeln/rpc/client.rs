//! Calls and casts, as a stock `RPCClient` sends them: requests to the
//! control exchange (routing key `T` or `T.S`), fanout casts to `T_fanout`,
//! replies through one `reply_<uuid>` queue per transport, matched on
//! `_msg_id`. The client times out by itself: nothing on the wire says that
//! no server is listening.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

use super::bus::Outgoing;
use super::envelope::{Context, ReplyBody, ReplyTo, Request, new_id};
use super::error::RpcError;
use super::replies::ReplyListener;
use super::target::Target;
use super::transport::Transport;

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
            Some(ReplyTo { msg_id: msg_id.clone(), reply_q: replies.queue().to_owned(), call_monitor_timeout: None }),
        )?;
        let mut pending = replies.expect(msg_id);
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
            let body = tokio::time::timeout_at(deadline, pending.recv())
                .await
                .map_err(|_| timed_out())?
                .ok_or(RpcError::Closed)?;
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
