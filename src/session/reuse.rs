//! Keeps HTTP/1.1 keep-alive connections reusable across calls.
//!
//! `rmcp` hands a response from an SSE stream to its caller first and drains the rest of the
//! stream afterwards. A caller that sends its next request at once then finds the connection
//! still busy, and the pool opens a new one: with servers that answer in SSE (the TypeScript SDK's
//! default) a session ends up holding two connections and churning more under load. This client
//! reverses the order: an SSE response event is passed on only after the stream has ended
//! (bounded by the same 50 ms rmcp allows), so the connection is back in the pool first.
//!
//! It also tells when the server's standalone stream is open ([`Listening`]).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::StreamExt as _;
use futures::stream::BoxStream;
use reqwest::header::{HeaderName, HeaderValue};
use rmcp::model::ClientJsonRpcMessage;
use rmcp::transport::streamable_http_client::{
    SseError, StreamableHttpClient, StreamableHttpError, StreamableHttpPostResponse,
    StreamableHttpResponseLimits,
};
use sse_stream::Sse;

/// How long to wait for a stream to end after its response; what rmcp itself waits.
const DRAIN_LIMIT: Duration = Duration::from_millis(50);

type SseStream = BoxStream<'static, Result<Sse, SseError>>;
type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

/// The shared `reqwest::Client`, delivering SSE responses only once their stream has ended.
#[derive(Clone)]
pub struct ReusingClient {
    pub http: reqwest::Client,
    pub listening: Arc<Listening>,
}

/// Whether the standalone stream of an initialize-era session is open. rmcp opens it (a GET)
/// in the background once the server assigns a session; until then, what the server sends on
/// its own (a request for input, "the tool list changed") is lost: servers drop messages for
/// a stream nobody holds.
pub struct Listening {
    expected: AtomicBool,
    answered: tokio::sync::watch::Sender<bool>,
}

impl Default for Listening {
    fn default() -> Self {
        Self {
            expected: AtomicBool::new(false),
            answered: tokio::sync::watch::Sender::new(false),
        }
    }
}

impl Listening {
    /// Returns once the server has answered the stream's GET (open, or refused with 405), or
    /// at once when no stream is coming, or when `wait` has passed.
    pub async fn settled(&self, wait: Duration) {
        if !self.expected.load(Ordering::Acquire) {
            return;
        }
        let mut answered = self.answered.subscribe();
        let _ = tokio::time::timeout(wait, answered.wait_for(|answered| *answered)).await;
    }

    fn saw(&self, response: &PostResult) {
        if let Ok(
            StreamableHttpPostResponse::Json(_, Some(_))
            | StreamableHttpPostResponse::Sse(_, Some(_)),
        ) = response
        {
            self.expected.store(true, Ordering::Release);
        }
    }
}

impl StreamableHttpClient for ReusingClient {
    type Error = reqwest::Error;

    async fn post_message(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> PostResult {
        let response = self
            .http
            .post_message(uri, message, session_id, auth_header, custom_headers)
            .await;
        self.listening.saw(&response);
        response.map(drain_before_response)
    }

    async fn post_message_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> PostResult {
        let response = self
            .http
            .post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        self.listening.saw(&response);
        response.map(drain_before_response)
    }

    async fn post_message_with_response_limits(
        &self,
        uri: Arc<str>,
        message: ClientJsonRpcMessage,
        session_id: Option<Arc<str>>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        limits: StreamableHttpResponseLimits,
    ) -> PostResult {
        let response = self
            .http
            .post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            )
            .await;
        self.listening.saw(&response);
        response.map(drain_before_response)
    }

    async fn delete_session(
        &self,
        uri: Arc<str>,
        session_id: Arc<str>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<(), StreamableHttpError<Self::Error>> {
        self.http
            .delete_session(uri, session_id, auth_header, custom_headers)
            .await
    }

    async fn get_stream(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
    ) -> Result<SseStream, StreamableHttpError<Self::Error>> {
        let standalone = last_event_id.is_none();
        let stream = self
            .http
            .get_stream(uri, session_id, last_event_id, auth_header, custom_headers)
            .await;
        if standalone {
            self.listening.answered.send_replace(true);
        }
        stream
    }

    async fn get_stream_with_max_sse_event_size(
        &self,
        uri: Arc<str>,
        session_id: Option<Arc<str>>,
        last_event_id: Option<String>,
        auth_header: Option<String>,
        custom_headers: HashMap<HeaderName, HeaderValue>,
        max_sse_event_size: usize,
    ) -> Result<SseStream, StreamableHttpError<Self::Error>> {
        let standalone = last_event_id.is_none();
        let stream = self
            .http
            .get_stream_with_max_sse_event_size(
                uri,
                session_id,
                last_event_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            )
            .await;
        if standalone {
            self.listening.answered.send_replace(true);
        }
        stream
    }
}

fn drain_before_response(response: StreamableHttpPostResponse) -> StreamableHttpPostResponse {
    match response {
        StreamableHttpPostResponse::Sse(stream, session) => {
            StreamableHttpPostResponse::Sse(hold_response_until_end(stream), session)
        }
        other => other,
    }
}

/// Passes events through; a JSON-RPC response is passed on only after the stream ends.
fn hold_response_until_end(stream: SseStream) -> SseStream {
    futures::stream::unfold(Some(stream), |state| async move {
        let mut stream = state?;
        let item = stream.next().await?;
        if item.as_ref().is_ok_and(is_response) {
            let _ = tokio::time::timeout(DRAIN_LIMIT, async {
                while stream.next().await.is_some() {}
            })
            .await;
            return Some((item, None));
        }
        Some((item, Some(stream)))
    })
    .boxed()
}

/// A JSON-RPC response or error (an `id` with `result` or `error`, and no `method`).
fn is_response(event: &Sse) -> bool {
    #[derive(serde::Deserialize)]
    struct Probe {
        id: Option<serde::de::IgnoredAny>,
        method: Option<serde::de::IgnoredAny>,
        result: Option<serde::de::IgnoredAny>,
        error: Option<serde::de::IgnoredAny>,
    }
    event
        .data
        .as_deref()
        .and_then(|data| serde_json::from_str::<Probe>(data).ok())
        .is_some_and(|p| {
            p.id.is_some() && p.method.is_none() && (p.result.is_some() || p.error.is_some())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(data: &str) -> Result<Sse, SseError> {
        Ok(Sse {
            event: Some("message".into()),
            data: Some(data.into()),
            id: None,
            retry: None,
        })
    }

    #[tokio::test]
    async fn the_response_waits_for_the_end_of_its_stream() {
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut held = hold_response_until_end(rx.boxed());
        tx.unbounded_send(event(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
        ))
        .unwrap();
        tx.unbounded_send(event(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
            .unwrap();
        let first = held.next().await.unwrap().unwrap();
        assert!(
            first.data.unwrap().contains("progress"),
            "notifications pass straight through"
        );
        let mut response = std::pin::pin!(held.next());
        assert!(
            futures::poll!(&mut response).is_pending(),
            "the response is held while the stream is open"
        );
        drop(tx); // the server ends the stream
        let response = response.await.unwrap().unwrap();
        assert!(response.data.unwrap().contains("result"));
        assert!(held.next().await.is_none());
    }
}
