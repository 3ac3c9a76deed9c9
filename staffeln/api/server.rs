//! The listener: bind `[api] host:port`, HTTP or HTTPS (rustls, TLS 1.2 and
//! 1.3, HTTP/1.1), one task per connection, and the graceful stop.
//!
//! * Every connection has `[api] client_timeout` for its TLS handshake and
//!   for the headers of each request (hyper's header-read timeout), so a slow
//!   or silent client holds a socket for that long at most.
//! * A request head (URL and headers) that outgrows 64 KiB of read buffer is
//!   refused by hyper itself (431), before any handler runs.
//! * `TCP_NODELAY` is set: answers are small and latency matters to Cinder.
//! * On stop, the listener closes at once, `/healthcheck` turns 503, idle
//!   keep-alive connections are closed, and requests in progress get up to
//!   the drain timeout (`request_timeout` + 1 s, bounded by
//!   `[DEFAULT] graceful_shutdown_timeout`) before their connections are
//!   dropped.

use std::io::BufReader;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tracing::{debug, info, warn};

use super::app::App;
use super::router;
use super::settings::{ApiSettings, TlsFiles};
use std::path::PathBuf;

use crate::db::DbError;
use crate::service::Shutdown;

/// Why staffeln-api could not start or stopped with an error. A value it
/// cannot use is not one of these: [`ApiSettings::from_config`] refuses it
/// before anything starts.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("cannot listen on {addr}")]
    Bind {
        addr: String,
        #[source]
        source: std::io::Error,
    },
    /// `[api] ssl_cert_file` / `ssl_key_file` cannot be used.
    #[error("cannot use {} for HTTPS: {reason}", .path.display())]
    Tls { path: PathBuf, reason: String },
    #[error("database work did not finish")]
    Join(#[from] tokio::task::JoinError),
}

/// The largest request head (request line and headers) read; hyper refuses
/// a larger one itself.
const MAX_HEAD_SIZE: usize = 64 * 1024;

/// A bound socket, with the TLS configuration when serving HTTPS.
pub struct Listener {
    tcp: TcpListener,
    tls: Option<TlsAcceptor>,
    addr: SocketAddr,
}

impl Listener {
    /// Loads the certificate (if any) and binds `host:port`.
    pub async fn bind(settings: &ApiSettings) -> Result<Listener, ServeError> {
        let tls = settings.tls.as_ref().map(acceptor).transpose()?;
        let host = settings.host.trim_start_matches('[').trim_end_matches(']');
        let target = (host, settings.port);
        let shown = if host.contains(':') {
            format!("[{host}]:{}", settings.port)
        } else {
            format!("{host}:{}", settings.port)
        };
        let tcp = TcpListener::bind(target).await.map_err(|source| ServeError::Bind { addr: shown.clone(), source })?;
        let addr = tcp.local_addr().map_err(|source| ServeError::Bind { addr: shown, source })?;
        Ok(Listener { tcp, tls, addr })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }
}

/// The rustls server configuration of `[api] ssl_cert_file` / `ssl_key_file`.
pub fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ServeError> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let certs = read_certs(&files.cert)?;
    let key = read_key(&files.key)?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| ServeError::Tls { path: files.key.clone(), reason: format!("the key does not fit: {e}") })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn open(path: &Path) -> Result<BufReader<std::fs::File>, ServeError> {
    std::fs::File::open(path)
        .map(BufReader::new)
        .map_err(|e| ServeError::Tls { path: path.to_owned(), reason: e.to_string() })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, ServeError> {
    let certs = CertificateDer::pem_reader_iter(open(path)?)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ServeError::Tls { path: path.to_owned(), reason: format!("not PEM certificates: {e}") })?;
    if certs.is_empty() {
        return Err(ServeError::Tls { path: path.to_owned(), reason: "no certificate in the file".to_owned() });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, ServeError> {
    PrivateKeyDer::from_pem_reader(open(path)?)
        .map_err(|e| ServeError::Tls { path: path.to_owned(), reason: format!("no PEM private key: {e}") })
}

/// Accepts until `shutdown`, then drains (see the module doc).
pub(crate) async fn run(listener: Listener, app: Arc<App>, mut shutdown: Shutdown) {
    let graceful = GracefulShutdown::new();
    let Listener { tcp, tls, addr } = listener;
    loop {
        tokio::select! {
            () = shutdown.requested() => break,
            accepted = tcp.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    serve_connection(&graceful, &app, tls.clone(), stream, peer);
                }
                Err(err) => {
                    // Out of file descriptors and the like: wait a little
                    // instead of spinning.
                    warn!("cannot accept a connection on {addr}: {err}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }
    drop(tcp);
    app.draining.store(true, Ordering::Relaxed);
    let drain = app.settings.drain_timeout;
    tokio::select! {
        () = graceful.shutdown() => debug!("every connection on {addr} closed"),
        () = tokio::time::sleep(drain) => {
            info!("requests still open on {addr} after {} s are dropped", drain.as_secs_f32());
        }
    }
}

fn serve_connection(
    graceful: &GracefulShutdown,
    app: &Arc<App>,
    tls: Option<TlsAcceptor>,
    stream: TcpStream,
    peer: SocketAddr,
) {
    let client_timeout = app.settings.client_timeout;
    let mut builder = http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(client_timeout).max_buf_size(MAX_HEAD_SIZE).keep_alive(true);
    let is_tls = tls.is_some();
    let app_for_service = app.clone();
    let service = service_fn(move |req| router::handle(app_for_service.clone(), is_tls, req));
    match tls {
        None => {
            let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
            tokio::spawn(async move {
                if let Err(err) = conn.await {
                    debug!("connection from {peer} ended: {err}");
                }
            });
        }
        Some(acceptor) => {
            // The handshake happens in the connection's task; a stop while
            // it runs lets it end by its timeout.
            let watcher = graceful.watcher();
            tokio::spawn(async move {
                let stream = match tokio::time::timeout(client_timeout, acceptor.accept(stream)).await {
                    Ok(Ok(stream)) => stream,
                    Ok(Err(err)) => {
                        debug!("TLS handshake with {peer} failed: {err}");
                        return;
                    }
                    Err(_) => {
                        debug!("TLS handshake with {peer} timed out");
                        return;
                    }
                };
                let conn = watcher.watch(builder.serve_connection(TokioIo::new(stream), service));
                if let Err(err) = conn.await {
                    debug!("connection from {peer} ended: {err}");
                }
            });
        }
    }
}
