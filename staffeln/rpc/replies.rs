//! The reply queue of a process (`reply_<uuid>`) and the task consuming it:
//! each reply is routed by its `_msg_id` to the call that awaits it.
//! Declared on the first call, shared by every client of a transport.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, watch};

use super::bus::{Subscription, stopped};
use super::connection::Connector;
use super::envelope::{Reply, ReplyBody, new_id};
use super::error::RpcError;
use super::topology::QueueDecl;

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
    pub(crate) async fn start(connector: Arc<Connector>) -> Result<ReplyListener, RpcError> {
        let queue = format!("reply_{}", new_id());
        let decl = connector.rabbit().reply_queue(&queue);
        let sub = Subscription::open(&connector, "reply", &[], std::slice::from_ref(&decl)).await?;
        let pending = Pending::default();
        let (stop, stop_rx) = watch::channel(false);
        let task = tokio::spawn(listen(connector, decl, sub, pending.clone(), stop_rx));
        Ok(ReplyListener { queue, pending, stop, task: Mutex::new(Some(task)) })
    }

    /// The queue's name, the `reply_q` of a call.
    pub(crate) fn queue(&self) -> &str {
        &self.queue
    }

    /// Registers a call awaiting the replies to `msg_id`; they arrive on
    /// the returned value until it is dropped.
    pub(crate) fn expect(&self, msg_id: String) -> PendingCall<'_> {
        let (tx, rx) = mpsc::unbounded_channel();
        lock(&self.pending).insert(msg_id.clone(), tx);
        PendingCall { pending: &self.pending, msg_id, rx }
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
                    Err(err) => {
                        tracing::warn!("dropping a malformed reply on {}: {}", decl.name, crate::errors::chain(&err))
                    }
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

/// A call waiting for its replies.
pub(crate) struct PendingCall<'a> {
    pending: &'a Pending,
    msg_id: String,
    rx: mpsc::UnboundedReceiver<ReplyBody>,
}

impl PendingCall<'_> {
    /// The next reply (a heartbeat, a partial or the last one); `None` once
    /// the reply queue is gone.
    pub(crate) async fn recv(&mut self) -> Option<ReplyBody> {
        self.rx.recv().await
    }
}

impl Drop for PendingCall<'_> {
    fn drop(&mut self) {
        lock(self.pending).remove(&self.msg_id);
    }
}
