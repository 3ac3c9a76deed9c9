//! `messagingv2` notifications, as oslo's `Notifier` sends them: to the
//! control exchange with routing key `<topic>.<priority>`, after declaring
//! and binding the queue of that name so events wait for a consumer. The
//! event types (`staffeln.backup.create.end`, …) belong to the callers.

use serde_json::Value;
use tokio::time::Instant;

use super::bus::Outgoing;
use super::envelope::{Context, Notification, Priority};
use super::error::RpcError;
use super::transport::Transport;

/// Emits notifications for one publisher (`<service>.<host>`).
#[derive(Clone, Debug)]
pub struct Notifier {
    transport: Transport,
    publisher_id: String,
    topics: Vec<String>,
}

impl Notifier {
    /// `topics` is `[oslo_messaging_notifications] topics` (default `["notifications"]`).
    pub fn new(transport: &Transport, publisher_id: &str, topics: Vec<String>) -> Notifier {
        Notifier { transport: transport.clone(), publisher_id: publisher_id.to_owned(), topics }
    }

    /// Sends one event on every topic. The context travels redacted
    /// (`auth_token` null), as `ctxt.redacted_copy()` in Python.
    pub async fn notify(
        &self,
        ctx: Option<&Context>,
        priority: Priority,
        event_type: &str,
        payload: Value,
    ) -> Result<(), RpcError> {
        let mut notification = Notification::new(&self.publisher_id, event_type, priority, payload, chrono::Utc::now());
        notification.context = ctx.map(|c| {
            let mut c = c.clone();
            if c.contains_key("auth_token") {
                c.insert("auth_token".to_owned(), Value::Null);
            }
            c
        });
        let body = notification.encode();
        let settings = self.transport.settings();
        let exchange = settings.rabbit.topic_exchange(&settings.control_exchange);
        let deadline = Instant::now() + settings.rpc_response_timeout;
        for topic in &self.topics {
            let routing_key = format!("{topic}.{}", priority.routing_name());
            let queue = settings.rabbit.topic_queue(&exchange.name, &routing_key);
            let msg = Outgoing {
                exchange: Some(&exchange),
                queues: std::slice::from_ref(&queue),
                routing_key: &routing_key,
                body: &body,
                mandatory: false,
                expiration: None,
            };
            self.transport.inner.publisher.publish(&msg, deadline).await?;
        }
        Ok(())
    }

    pub async fn info(&self, ctx: Option<&Context>, event_type: &str, payload: Value) -> Result<(), RpcError> {
        self.notify(ctx, Priority::Info, event_type, payload).await
    }

    pub async fn error(&self, ctx: Option<&Context>, event_type: &str, payload: Value) -> Result<(), RpcError> {
        self.notify(ctx, Priority::Error, event_type, payload).await
    }
}
