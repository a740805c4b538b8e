//! The deprecated HTTP+SSE transport (protocol 2024-11-05), for servers that still speak only
//! it; rmcp no longer ships a client for it.
//!
//! GET the SSE URL and wait for the `endpoint` event; POST every outgoing message to that
//! endpoint (resolved against the SSE URL, and refused unless it is on the same origin, since the
//! POSTs carry the connector's credentials); read incoming `message` events. Handed to rmcp as a
//! (sink, stream) pair.

use std::time::Duration;

use futures::{Sink, Stream, StreamExt as _};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use sse_stream::SseStream;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SseTransportError {
    #[error("{0}")]
    Http(String),
    #[error("the server answered HTTP {0}")]
    Status(reqwest::StatusCode),
    #[error("the server did not announce its message endpoint within {} ms", .0.as_millis())]
    NoEndpoint(Duration),
    #[error("the announced endpoint {0:?} is not on the server's origin")]
    ForeignEndpoint(String),
}

impl SseTransportError {
    fn http(error: reqwest::Error) -> Self {
        Self::Http(super::innermost_cause(&error).0)
    }
}

pub type MessageSink =
    std::pin::Pin<Box<dyn Sink<ClientJsonRpcMessage, Error = SseTransportError> + Send>>;
pub type MessageStream = std::pin::Pin<Box<dyn Stream<Item = ServerJsonRpcMessage> + Send>>;

/// Opens the event stream at `url` and waits (up to `deadline`) for the message endpoint.
pub async fn connect(
    http: &reqwest::Client,
    url: &str,
    headers: HeaderMap,
    deadline: Duration,
) -> Result<(MessageSink, MessageStream), SseTransportError> {
    let base = url::Url::parse(url).map_err(|e| SseTransportError::Http(e.to_string()))?;
    let response = http
        .get(base.clone())
        .headers(headers.clone())
        .header(ACCEPT, HeaderValue::from_static("text/event-stream"))
        .send()
        .await
        .map_err(SseTransportError::http)?;
    if !response.status().is_success() {
        return Err(SseTransportError::Status(response.status()));
    }
    let mut events = Box::pin(SseStream::from_bytes_stream(response.bytes_stream()));
    let announced = tokio::time::timeout(deadline, async {
        while let Some(Ok(event)) = events.next().await {
            if event.event.as_deref() == Some("endpoint") {
                return event.data;
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
    .ok_or(SseTransportError::NoEndpoint(deadline))?;
    let endpoint = base
        .join(announced.trim())
        .map_err(|_| SseTransportError::ForeignEndpoint(announced.clone()))?;
    if endpoint.origin() != base.origin() {
        return Err(SseTransportError::ForeignEndpoint(announced));
    }

    let incoming = events
        .take_while(|event| std::future::ready(event.is_ok()))
        .filter_map(|event| async move {
            let event = event.ok()?;
            // Events without a name are "message" events.
            if event.event.as_deref().is_some_and(|name| name != "message") {
                return None;
            }
            let data = event.data?;
            match serde_json::from_str::<ServerJsonRpcMessage>(&data) {
                Ok(message) => Some(message),
                Err(e) => {
                    tracing::warn!(error = %e, "ignoring an SSE message that is not JSON-RPC");
                    None
                }
            }
        });
    let outgoing = futures::sink::unfold(
        (http.clone(), endpoint, headers),
        |(http, endpoint, headers), message: ClientJsonRpcMessage| async move {
            let body =
                serde_json::to_vec(&message).map_err(|e| SseTransportError::Http(e.to_string()))?;
            let response = http
                .post(endpoint.clone())
                .headers(headers.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body)
                .send()
                .await
                .map_err(SseTransportError::http)?;
            if !response.status().is_success() {
                return Err(SseTransportError::Status(response.status()));
            }
            Ok((http, endpoint, headers))
        },
    );
    Ok((Box::pin(outgoing), Box::pin(incoming)))
}
