//! The Prometheus endpoint: `GET /metrics` on loopback. [`router`] builds it, so tests drive
//! it without a socket; [`serve`] puts it on one.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::Metrics;

/// `GET /metrics`: the text exposition, as OpenMetrics.
pub fn router(metrics: Arc<Metrics>) -> axum::Router {
    axum::Router::new().route(
        "/metrics",
        axum::routing::get(move || {
            let metrics = metrics.clone();
            async move {
                (
                    [(
                        axum::http::header::CONTENT_TYPE,
                        "application/openmetrics-text; version=1.0.0; charset=utf-8",
                    )],
                    metrics.render(),
                )
            }
        }),
    )
}

/// Serves `GET /metrics` on `addr`, which must be a loopback address, until `stop`.
pub async fn serve(
    metrics: Arc<Metrics>,
    addr: SocketAddr,
    stop: CancellationToken,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    if !addr.ip().is_loopback() {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidInput,
            format!("metrics are served on loopback only, not {addr}"),
        ));
    }
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let bound = listener.local_addr()?;
    let router = router(metrics);
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, router)
            .with_graceful_shutdown(stop.cancelled_owned())
            .await;
    });
    Ok((bound, task))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tower::ServiceExt as _;

    use super::*;

    #[tokio::test]
    async fn the_router_serves_the_exposition_and_nothing_else() {
        let metrics = Metrics::new();
        metrics.record_call("wiki", "search", Duration::from_millis(3), None);
        let get = |uri: &str| {
            axum::http::Request::get(uri)
                .body(axum::body::Body::empty())
                .expect("request")
        };
        let answer = router(metrics.clone())
            .oneshot(get("/metrics"))
            .await
            .expect("answer");
        assert_eq!(answer.status(), 200);
        assert!(
            answer.headers()[axum::http::header::CONTENT_TYPE]
                .to_str()
                .is_ok_and(|t| t.starts_with("application/openmetrics-text"))
        );
        let body = axum::body::to_bytes(answer.into_body(), 1 << 20)
            .await
            .expect("body");
        let text = String::from_utf8_lossy(&body);
        assert!(text.contains("gen_ai_tool_name=\"search\""), "{text}");
        let other = router(metrics).oneshot(get("/")).await.expect("answer");
        assert_eq!(other.status(), 404);
    }

    #[tokio::test]
    async fn only_loopback_addresses_are_served() {
        let refused = serve(
            Metrics::new(),
            "0.0.0.0:0".parse().expect("address"),
            CancellationToken::new(),
        )
        .await
        .expect_err("not loopback");
        assert!(refused.to_string().contains("loopback only"), "{refused}");
    }
}
