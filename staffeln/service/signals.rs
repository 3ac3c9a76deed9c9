//! Shutdown as a value, and oslo.service's signal behaviour.
//!
//! | signal | behaviour |
//! |---|---|
//! | SIGTERM | graceful stop: every loop sees [`Shutdown::requested`]; the process exits when the service returns, or with status 1 and `Graceful shutdown timeout exceeded, instantaneous exiting` after `graceful_shutdown_timeout` seconds (0 waits forever). A second SIGTERM exits at once. |
//! | SIGINT | `Caught SIGINT signal, instantaneous exiting`, status 1 |
//! | SIGHUP | reload the configuration when the process is a daemon (no terminal on stdin, as under systemd or in a container); in a terminal it stops the service like SIGTERM, as oslo.service does |

use tokio::sync::watch;

/// Cloneable view of "has a stop been requested?".
#[derive(Clone, Debug)]
pub struct Shutdown(watch::Receiver<bool>);

/// The sending side, held by whoever decides to stop (the signal task, a test).
#[derive(Debug)]
pub struct ShutdownTrigger(watch::Sender<bool>);

/// A new trigger and its first receiver.
pub fn shutdown_channel() -> (ShutdownTrigger, Shutdown) {
    let (tx, rx) = watch::channel(false);
    (ShutdownTrigger(tx), Shutdown(rx))
}

impl ShutdownTrigger {
    /// Asks every holder of a [`Shutdown`] to stop.
    pub fn trigger(&self) {
        let _ = self.0.send(true);
    }

    /// Another receiver.
    pub fn subscribe(&self) -> Shutdown {
        Shutdown(self.0.subscribe())
    }
}

impl Shutdown {
    /// Completes once a stop has been requested (or the trigger is gone).
    pub async fn requested(&mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }

    /// Whether a stop has been requested, without waiting.
    pub fn is_requested(&self) -> bool {
        *self.0.borrow()
    }
}

/// Whether standard input is a terminal (oslo.service's "not a daemon" test).
pub fn stdin_is_terminal() -> bool {
    use std::io::IsTerminal;
    std::io::stdin().is_terminal()
}

/// Sends `READY=1` to systemd's `$NOTIFY_SOCKET` once, then forgets the
/// variable's value, as oslo.service does. Without the variable this does
/// nothing. A leading `@` names an abstract socket.
pub fn notify_ready() {
    static DONE: std::sync::Once = std::sync::Once::new();
    DONE.call_once(|| {
        let Some(path) = std::env::var_os("NOTIFY_SOCKET") else { return };
        let Ok(socket) = std::os::unix::net::UnixDatagram::unbound() else { return };
        let bytes = path.as_encoded_bytes();
        let sent = if let Some(name) = bytes.strip_prefix(b"@") {
            use std::os::linux::net::SocketAddrExt;
            std::os::unix::net::SocketAddr::from_abstract_name(name)
                .and_then(|addr| socket.send_to_addr(b"READY=1", &addr))
        } else {
            socket.send_to(b"READY=1", &path)
        };
        if let Err(err) = sent {
            tracing::warn!("cannot notify systemd through NOTIFY_SOCKET: {err}");
        }
    });
}
