//! The admin API, on its own listener (127.0.0.1 by default).
//!
//! `/healthz`, `/readyz` and `/metrics` are open; everything under `/admin` requires
//! `Authorization: Bearer <gateway.admin.token>`.

use std::sync::Arc;

use async_trait::async_trait;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use oauth_edge::Edge;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::metrics::Metrics;
use crate::settings;

#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) edge: Edge,
    pub(crate) metrics: Arc<Metrics>,
    pub(crate) settings: settings::Admin,
}

/// Serves the admin API until shutdown.
pub(crate) struct AdminService {
    state: AdminState,
    listener: std::sync::Mutex<Option<std::net::TcpListener>>,
}

impl AdminService {
    pub(crate) fn new(
        edge: Edge,
        metrics: Arc<Metrics>,
        settings: settings::Admin,
        listener: std::net::TcpListener,
    ) -> Self {
        AdminService {
            state: AdminState {
                edge,
                metrics,
                settings,
            },
            listener: std::sync::Mutex::new(Some(listener)),
        }
    }
}

pub(crate) fn router(state: AdminState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(state)
}

async fn readyz(State(s): State<AdminState>) -> impl IntoResponse {
    // Ready when the store answers.
    match s.edge.store().server_keys().await {
        Ok(_) => (StatusCode::OK, "ready\n"),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "store unavailable\n"),
    }
}

async fn metrics(State(s): State<AdminState>) -> impl IntoResponse {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        s.metrics.render(&s.edge),
    )
}

#[async_trait]
impl BackgroundService for AdminService {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let Some(std_listener) = self.listener.lock().ok().and_then(|mut l| l.take()) else {
            return;
        };
        let listener = match tokio::net::TcpListener::from_std(std_listener) {
            Ok(l) => l,
            Err(e) => {
                tracing::error!(error = %e, "admin listener");
                return;
            }
        };
        let app = router(self.state.clone());
        let stop = async move {
            let _ = shutdown.changed().await;
        };
        if let Err(e) = axum::serve(listener, app)
            .with_graceful_shutdown(stop)
            .await
        {
            tracing::error!(error = %e, "admin API stopped");
        }
    }
}
