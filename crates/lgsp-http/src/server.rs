//! Serving the [`router`](crate::router): plain HTTP, or HTTPS (rustls) when `http.tls`
//! names a certificate; a client that has not finished its TLS handshake or sent its
//! request's headers within `http.header_timeout` is disconnected (a slow client holds
//! no connection open), and at shutdown the listener closes at once while requests in
//! flight get a few seconds to finish.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use lgsp_core::config::{HttpConfig, ServerTls};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::AppState;

/// How long requests in flight may take to finish once shutdown begins.
const DRAIN: Duration = Duration::from_secs(10);

/// Why the HTTP server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(
        "cannot listen on {listen}: {source}; change http.listen (is another process using the port?)"
    )]
    Bind {
        listen: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{key} ({}): {reason}; give a PEM file ({what})", path.display())]
    TlsFile {
        key: &'static str,
        path: PathBuf,
        what: &'static str,
        reason: String,
    },
    #[error(
        "http.tls: the certificate and key do not make a TLS server: {0}; check that the key belongs to the certificate"
    )]
    TlsConfig(rustls::Error),
}

/// Bind `http.listen` (port 0 picks a free port) and serve until `shutdown`; returns
/// the bound address once listening and the server task.
pub async fn serve(
    http: &HttpConfig,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(SocketAddr, tokio::task::JoinHandle<()>), ServeError> {
    let tls = match &http.tls {
        Some(t) => Some(TlsAcceptor::from(Arc::new(server_config(t)?))),
        None => None,
    };
    let bind = |source| ServeError::Bind {
        listen: http.listen.clone(),
        source,
    };
    let listener = TcpListener::bind(&http.listen).await.map_err(bind)?;
    let addr = listener.local_addr().map_err(bind)?;
    let app = crate::router(state);
    let task = tokio::spawn(accept_loop(
        listener,
        tls,
        app,
        http.header_timeout.get(),
        shutdown,
    ));
    Ok((addr, task))
}

/// The rustls server configuration of `http.tls` (HTTP/1.1 only, as the server speaks).
fn server_config(t: &ServerTls) -> Result<rustls::ServerConfig, ServeError> {
    let certs = read_pem(
        &t.cert,
        "http.tls.cert",
        "the certificate chain, leaf first",
        |b| CertificateDer::pem_slice_iter(b).collect::<Result<Vec<_>, _>>(),
    )?;
    if certs.is_empty() {
        return Err(ServeError::TlsFile {
            key: "http.tls.cert",
            path: t.cert.clone(),
            what: "the certificate chain, leaf first",
            reason: "no CERTIFICATE block in the file".into(),
        });
    }
    let key = read_pem(
        &t.key,
        "http.tls.key",
        "the certificate's private key",
        PrivateKeyDer::from_pem_slice,
    )?;
    let mut config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(ServeError::TlsConfig)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

fn read_pem<T>(
    path: &Path,
    key: &'static str,
    what: &'static str,
    parse: impl FnOnce(&[u8]) -> Result<T, rustls::pki_types::pem::Error>,
) -> Result<T, ServeError> {
    let fail = |reason: String| ServeError::TlsFile {
        key,
        path: path.to_owned(),
        what,
        reason,
    };
    let bytes = std::fs::read(path).map_err(|e| fail(format!("cannot read it: {e}")))?;
    parse(&bytes).map_err(|e| fail(e.to_string()))
}

async fn accept_loop(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    app: Router,
    header_timeout: Duration,
    shutdown: CancellationToken,
) {
    let graceful = GracefulShutdown::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    loop {
        let (tcp, peer) = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: wait a little, do not spin.
                    warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = tcp.set_nodelay(true);
        let (http, app, watcher) = (http.clone(), app.clone(), graceful.watcher());
        match &tls {
            None => {
                tokio::spawn(connection(tcp, peer, http, app, watcher));
            }
            Some(acceptor) => {
                let acceptor = acceptor.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(header_timeout, acceptor.accept(tcp)).await {
                        Ok(Ok(stream)) => connection(stream, peer, http, app, watcher).await,
                        Ok(Err(e)) => debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => debug!(%peer, "TLS handshake timed out"),
                    }
                });
            }
        }
    }
    drop(listener);
    if tokio::time::timeout(DRAIN, graceful.shutdown())
        .await
        .is_err()
    {
        warn!(
            "HTTP requests still in flight after {}s of shutdown were cut off",
            DRAIN.as_secs()
        );
    }
}

async fn connection<I>(
    io: I,
    peer: SocketAddr,
    http: http1::Builder,
    app: Router,
    watcher: hyper_util::server::graceful::Watcher,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let conn = http.serve_connection(TokioIo::new(io), TowerToHyperService::new(app));
    if let Err(e) = watcher.watch(conn).await {
        debug!(%peer, error = %e, "HTTP connection ended with an error");
    }
}
