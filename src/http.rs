//! The HTTP endpoint: `/metrics` (Prometheus text format), `/healthz` (alive), `/readyz`
//! (partitions assigned and nothing failed).

use crate::worker::Shared;
use axum::{extract::State, http::StatusCode, routing::get, Router};
use std::sync::Arc;
use tokio::task::JoinHandle;

async fn metrics(
    State(s): State<Arc<Shared>>,
) -> (StatusCode, [(&'static str, &'static str); 1], String) {
    // Readiness as metrics too, so alerts can see a member that is up but idle or stuck.
    s.metrics.ready.set(s.ready() as i64);
    s.metrics
        .assigned_partitions
        .set(s.assigned.load(std::sync::atomic::Ordering::SeqCst) as i64);
    (
        StatusCode::OK,
        [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
        s.metrics.encode(),
    )
}

async fn healthz(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if s.healthy() {
        (StatusCode::OK, "ok\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "failed\n")
    }
}

async fn readyz(State(s): State<Arc<Shared>>) -> (StatusCode, &'static str) {
    if s.ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n")
    }
}

/// Bind `listen` and serve in the background; an empty address serves nothing.
pub async fn spawn(listen: &str, shared: Arc<Shared>) -> anyhow::Result<JoinHandle<()>> {
    if listen.is_empty() {
        return Ok(tokio::spawn(async {}));
    }
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(shared);
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| anyhow::anyhow!("metrics endpoint: cannot listen on {listen}: {e}"))?;
    tracing::info!(address = %listener.local_addr()?, "serving /metrics, /healthz, /readyz");
    Ok(tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(%e, "metrics endpoint stopped");
        }
    }))
}
