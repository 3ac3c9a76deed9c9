//! `fake://`: an in-process broker over tokio channels with the routing
//! rules the oslo topology needs (topic exchanges with exact routing keys,
//! fanout exchanges, the default exchange). One broker per virtual host per
//! process, so a server and a client made from two `fake:///demo`
//! transports meet. No persistence, no acknowledgements, no expiry.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use tokio::sync::mpsc;

use super::topology::{ExchangeDecl, ExchangeType, QueueDecl};

type Shared<T> = Arc<tokio::sync::Mutex<T>>;

struct FakeQueue {
    tx: mpsc::UnboundedSender<Vec<u8>>,
    rx: Shared<mpsc::UnboundedReceiver<Vec<u8>>>,
}

#[derive(Default)]
struct State {
    exchanges: HashMap<String, (ExchangeType, Vec<(String, String)>)>,
    queues: HashMap<String, FakeQueue>,
}

#[derive(Default)]
pub(crate) struct FakeBroker {
    state: Mutex<State>,
}

/// The broker of virtual host `vhost` in this process.
pub(crate) fn broker(vhost: &str) -> Arc<FakeBroker> {
    static BROKERS: OnceLock<Mutex<HashMap<String, Arc<FakeBroker>>>> = OnceLock::new();
    let mut brokers = BROKERS.get_or_init(Mutex::default).lock().unwrap_or_else(|e| e.into_inner());
    brokers.entry(vhost.to_owned()).or_default().clone()
}

impl FakeBroker {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn declare_exchange(&self, x: &ExchangeDecl) {
        self.state().exchanges.entry(x.name.clone()).or_insert_with(|| (x.kind, Vec::new()));
    }

    pub(crate) fn declare_queue(&self, q: &QueueDecl) {
        let mut state = self.state();
        state.queues.entry(q.name.clone()).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            FakeQueue { tx, rx: Arc::new(tokio::sync::Mutex::new(rx)) }
        });
        if let Some((exchange, key)) = &q.bind {
            let (_, bindings) =
                state.exchanges.entry(exchange.clone()).or_insert_with(|| (ExchangeType::Topic, Vec::new()));
            let binding = (key.clone(), q.name.clone());
            if !bindings.contains(&binding) {
                bindings.push(binding);
            }
        }
    }

    pub(crate) fn delete_queue(&self, name: &str) {
        let mut state = self.state();
        state.queues.remove(name);
        for (_, bindings) in state.exchanges.values_mut() {
            bindings.retain(|(_, q)| q != name);
        }
    }

    /// Routes a message; `false` when no queue took it.
    pub(crate) fn publish(&self, exchange: &str, routing_key: &str, body: &[u8]) -> bool {
        let state = self.state();
        let targets: Vec<&str> = if exchange.is_empty() {
            vec![routing_key]
        } else {
            match state.exchanges.get(exchange) {
                Some((ExchangeType::Fanout, bindings)) => bindings.iter().map(|(_, q)| q.as_str()).collect(),
                Some((ExchangeType::Topic, bindings)) => {
                    bindings.iter().filter(|(k, _)| k == routing_key).map(|(_, q)| q.as_str()).collect()
                }
                None => Vec::new(),
            }
        };
        let mut routed = false;
        for name in targets {
            if let Some(q) = state.queues.get(name) {
                routed |= q.tx.send(body.to_vec()).is_ok();
            }
        }
        routed
    }

    /// Starts forwarding queue `name` into `out` until `out` closes or the
    /// queue is deleted. Several consumers of one queue share its messages.
    pub(crate) fn consume(&self, name: &str, out: mpsc::Sender<Vec<u8>>) -> Option<tokio::task::JoinHandle<()>> {
        let rx = self.state().queues.get(name)?.rx.clone();
        Some(tokio::spawn(async move {
            loop {
                let mut guard = tokio::select! {
                    guard = rx.lock() => guard,
                    () = out.closed() => return,
                };
                let msg = tokio::select! {
                    msg = guard.recv() => msg,
                    () = out.closed() => return,
                };
                drop(guard);
                let Some(msg) = msg else { return };
                if out.send(msg).await.is_err() {
                    return;
                }
            }
        }))
    }
}
