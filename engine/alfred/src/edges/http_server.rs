//! The HTTP/1 accept loop shared by the webhook and the metrics listener: accept errors
//! are retried (not fatal), slow headers are cut off, and shutdown stops accepting, then
//! drains open connections for a bounded grace period.

use std::convert::Infallible;
use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;

/// A listener's deadlines.
#[derive(Clone, Copy, Debug)]
pub struct Deadlines {
    /// How long request headers may take (slowloris).
    pub header_read: Duration,
    /// How long open connections may take to finish after shutdown.
    pub shutdown_grace: Duration,
}

/// Serves `handler` on `listener` until `shutdown` completes. `name` labels the logs.
pub async fn serve<H, Fut>(
    name: &'static str,
    listener: TcpListener,
    deadlines: Deadlines,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let local = listener.local_addr()?;
    tracing::info!(%local, "{name} listening");
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _peer)) => stream,
                    Err(e) => {
                        tracing::warn!(error = %e, "{name}: accept failed");
                        // EMFILE and friends: back off instead of spinning.
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let handler = handler.clone();
                let service = service_fn(move |req| {
                    let response = handler(req);
                    async move { Ok::<_, Infallible>(response.await) }
                });
                let conn = http1::Builder::new()
                    .timer(TokioTimer::new())
                    .header_read_timeout(deadlines.header_read)
                    .serve_connection(TokioIo::new(stream), service);
                let conn = graceful.watch(conn);
                tokio::spawn(async move {
                    if let Err(e) = conn.await {
                        tracing::debug!(error = %e, "{name}: connection ended with an error");
                    }
                });
            }
            () = &mut shutdown => break,
        }
    }
    drop(listener);
    tracing::info!("{name}: shutting down, draining connections");
    tokio::select! {
        () = graceful.shutdown() => tracing::info!("{name}: all connections closed"),
        () = tokio::time::sleep(deadlines.shutdown_grace) => {
            tracing::warn!(grace = ?deadlines.shutdown_grace, "{name}: connections still open after the grace period");
        }
    }
    Ok(())
}
