//! A notification listener, as a stock oslo.messaging listener with a pool
//! behaves on the wire: it declares its own queue, named after the pool,
//! binds it to the publisher's exchange with `<topic>.<priority>`, and
//! acknowledges each message after its handler returned. A queue of its own
//! means it never takes a message from `<topic>.<priority>`, the queue other
//! listeners (Ceilometer) read: the exchange copies every notification to
//! each bound queue.
//!
//! Where it differs from Python's pool queue: the queue carries `x-expires`
//! (`rabbit_transient_queues_ttl`), so a listener that is gone for good
//! leaves no queue filling up. Messages that cannot be decoded are logged
//! with what was wrong, acknowledged and dropped: a redelivery would fail
//! the same way and block nothing else.

use std::future::Future;

use tokio::sync::watch;

use super::bus::{Subscription, stopped};
use super::envelope::{Notification, Priority};
use super::error::RpcError;
use super::transport::Transport;
use crate::errors::chain;

/// Where a listener reads: `queue`, bound to `exchange` with `<topic>.<priority>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListenTarget {
    pub exchange: String,
    pub topic: String,
    pub priority: Priority,
    /// The listener's own queue (a pool name); never `<topic>.<priority>`.
    pub queue: String,
    /// The queue is this listener's alone and goes with it (auto-delete):
    /// a process that wants every event only while it runs. Otherwise a
    /// pool queue that listeners share and that outlives them.
    pub private: bool,
}

impl ListenTarget {
    /// `notifications.info`.
    pub fn routing_key(&self) -> String {
        format!("{}.{}", self.topic, self.priority.routing_name())
    }
}

/// Starts notification listeners.
pub struct NotificationListener;

impl NotificationListener {
    /// Declares and binds the queue and starts consuming before it returns
    /// (an unreachable broker or a refused declaration is reported here),
    /// then hands every decoded notification to `handle`, one at a time,
    /// reconnecting as needed, until [`ListenerHandle::stop`].
    pub async fn start<F, Fut>(
        transport: &Transport,
        target: ListenTarget,
        handle: F,
    ) -> Result<ListenerHandle, RpcError>
    where
        F: Fn(Notification) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let connector = transport.inner.connector.clone();
        let rabbit = connector.rabbit();
        let routing_key = target.routing_key();
        let exchanges = vec![rabbit.topic_exchange(&target.exchange)];
        let queue = if target.private {
            rabbit.private_queue(&target.exchange, &target.queue, &routing_key)
        } else {
            rabbit.pool_queue(&target.exchange, &target.queue, &routing_key)
        };
        let queues = vec![queue];
        let sub = Subscription::open(&connector, "notification-listener", &exchanges, &queues).await?;
        tracing::info!(
            "listening for notifications {routing_key} on exchange {} through queue {} at {}",
            target.exchange,
            target.queue,
            connector.url
        );
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(async move {
            let mut sub = sub;
            let mut stop_rx = stop_rx;
            loop {
                let next = tokio::select! {
                    biased;
                    () = stopped(&mut stop_rx) => break,
                    next = sub.next() => next,
                };
                match next {
                    Ok(delivery) => {
                        match Notification::decode(&delivery.body) {
                            Ok(notification) => handle(notification).await,
                            Err(err) => {
                                tracing::warn!("notification on queue {} dropped: {}", target.queue, chain(&err))
                            }
                        }
                        delivery.ack().await;
                    }
                    Err(why) => {
                        tracing::warn!(
                            "notification listener on {} lost its consumer ({why}); reconnecting",
                            target.queue
                        );
                        match Subscription::reopen(
                            &connector,
                            "notification-listener",
                            &exchanges,
                            &queues,
                            &mut stop_rx,
                        )
                        .await
                        {
                            Some(new) => sub = new,
                            None => break,
                        }
                    }
                }
            }
            sub.close().await;
            tracing::info!("notification listener on {} stopped", target.queue);
        });
        Ok(ListenerHandle { stop, task })
    }
}

/// A running listener.
pub struct ListenerHandle {
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl ListenerHandle {
    /// Stops consuming (a notification being handled is finished and
    /// acknowledged first) and closes the connection.
    pub async fn stop(self) {
        let _ = self.stop.send(true);
        if let Err(err) = self.task.await {
            tracing::error!("the notification listener task failed: {err}");
        }
    }
}
