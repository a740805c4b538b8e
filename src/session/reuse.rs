//! Keeps HTTP/1.1 keep-alive connections reusable across calls.
//!
//! `rmcp` hands a response from an SSE stream to its caller first and drains the rest of the
//! stream afterwards. A caller that sends its next request at once then finds the connection
//! still busy, and the pool opens a new one: with servers that answer in SSE (the TypeScript SDK's
//! default) a session ends up holding two connections and churning more under load. So this
//! client keeps count of the streams whose answer has been handed on but which have not ended,
//! and a new request waits for them (at most the 50 ms rmcp itself allows a drain): the
//! connection is back in the pool first. The answer itself is never held back, so a call pays
//! nothing for this unless the next one follows it within a stream's last few bytes.
//!
//! It also tells when the server's standalone stream is open ([`Listening`]), and when the
//! session should be looked at again: its standalone stream ended or could not be reopened (the
//! server may be gone), or rmcp made the session again after a 404 (the server restarted or
//! forgot it, and may list other tools now).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
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
/// Turns given to other tasks after a stream ends, before the next request goes.
const POOL_RETURN_YIELDS: usize = 2;

type SseStream = BoxStream<'static, Result<Sse, SseError>>;
type PostResult = Result<StreamableHttpPostResponse, StreamableHttpError<reqwest::Error>>;

/// The shared `reqwest::Client`, sending a request only once earlier answers' streams ended.
#[derive(Clone)]
pub struct ReusingClient {
    http: reqwest::Client,
    listening: Arc<Listening>,
    draining: Arc<Draining>,
    faults: Arc<StreamFaults>,
}

/// Why an answer's stream broke, when it did (an event over the size limit, a cut
/// connection): rmcp reports such a call only as "Transport closed".
#[derive(Default)]
pub struct StreamFaults {
    last: std::sync::Mutex<Option<String>>,
}

impl StreamFaults {
    fn record(&self, error: &SseError) {
        if let Ok(mut last) = self.last.lock() {
            *last = Some(crate::session::error::bounded(&error.to_string()));
        }
    }

    /// The reason last recorded, taken (so it explains one failure only).
    pub fn take(&self) -> Option<String> {
        self.last.lock().ok()?.take()
    }
}

impl ReusingClient {
    pub fn new(
        http: reqwest::Client,
        listening: Arc<Listening>,
        faults: Arc<StreamFaults>,
    ) -> Self {
        Self {
            http,
            listening,
            draining: Arc::default(),
            faults,
        }
    }

    /// What every POST does before and after sending.
    /// `initialize`: whether the message is the `initialize` request.
    async fn post(&self, initialize: bool, send: impl Future<Output = PostResult>) -> PostResult {
        self.draining.ended(DRAIN_LIMIT).await;
        let response = send.await;
        self.listening.saw(&response);
        // The handshake is the first initialize; any later one is rmcp making the session again.
        if initialize
            && response.is_ok()
            && self.listening.initializes.fetch_add(1, Ordering::AcqRel) > 0
        {
            self.listening.look_again.notify_one();
        }
        response.map(|response| match response {
            StreamableHttpPostResponse::Sse(stream, session) => {
                let faults = self.faults.clone();
                let stream = stream.inspect(move |item| {
                    if let Err(error) = item {
                        faults.record(error);
                    }
                });
                StreamableHttpPostResponse::Sse(self.draining.track(stream), session)
            }
            other => other,
        })
    }
}

/// How many SSE responses have handed on their answer but not yet ended.
#[derive(Default)]
struct Draining {
    open: tokio::sync::watch::Sender<usize>,
}

/// One stream past its answer; counted until it is dropped (ended, or abandoned by rmcp).
struct PastAnswer(Arc<Draining>);

impl Drop for PastAnswer {
    fn drop(&mut self) {
        self.0.open.send_modify(|open| *open -= 1);
    }
}

impl Draining {
    /// Returns once no stream is past its answer, or after `limit`.
    async fn ended(&self, limit: Duration) {
        if *self.open.borrow() == 0 {
            return;
        }
        let mut open = self.open.subscribe();
        let _ = tokio::time::timeout(limit, open.wait_for(|open| *open == 0)).await;
        // hyper puts a connection back in the pool from a task of its own, woken by the same
        // end of stream that woke this one: let it run first.
        for _ in 0..POOL_RETURN_YIELDS {
            tokio::task::yield_now().await;
        }
    }

    /// Passes `stream` through, counting it from its JSON-RPC response to its end.
    fn track(
        self: &Arc<Self>,
        stream: impl futures::Stream<Item = Result<Sse, SseError>> + Unpin + Send + 'static,
    ) -> SseStream {
        let draining = self.clone();
        futures::stream::unfold((stream, None), move |(mut stream, past)| {
            let draining = draining.clone();
            async move {
                let item = stream.next().await?; // the end: `past` is dropped with the state
                let past = match past {
                    None if item.as_ref().is_ok_and(is_response) => {
                        draining.open.send_modify(|open| *open += 1);
                        Some(PastAnswer(draining))
                    }
                    past => past,
                };
                Some((item, (stream, past)))
            }
        })
        .boxed()
    }
}

/// Whether the standalone stream of an initialize-era session is open. rmcp opens it (a GET)
/// in the background once the server assigns a session; until then, what the server sends on
/// its own (a request for input, "the tool list changed") is lost: servers drop messages for
/// a stream nobody holds.
pub struct Listening {
    expected: AtomicBool,
    answered: tokio::sync::watch::Sender<bool>,
    /// Set once a standalone stream was open, so only its loss counts (not a server's 405).
    was_open: AtomicBool,
    initializes: AtomicU64,
    look_again: tokio::sync::Notify,
}

impl Default for Listening {
    fn default() -> Self {
        Self {
            expected: AtomicBool::new(false),
            answered: tokio::sync::watch::Sender::new(false),
            was_open: AtomicBool::new(false),
            initializes: AtomicU64::new(0),
            look_again: tokio::sync::Notify::new(),
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

    /// Returns when the session should be checked again (see the module's note).
    pub async fn look_again(&self) {
        self.look_again.notified().await;
    }

    /// Watches a standalone stream (a GET) for its end: a stream that ended or broke, or a
    /// reopening that failed after one had been open, asks for a look.
    fn watch(
        self: &Arc<Self>,
        stream: Result<SseStream, StreamableHttpError<reqwest::Error>>,
    ) -> Result<SseStream, StreamableHttpError<reqwest::Error>> {
        let stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                if self.was_open.load(Ordering::Acquire) {
                    self.look_again.notify_one();
                }
                return Err(error);
            }
        };
        self.was_open.store(true, Ordering::Release);
        let listening = self.clone();
        let ended = futures::stream::once(async move {
            listening.look_again.notify_one();
            None
        });
        Ok(stream
            .map(Some)
            .chain(ended)
            .filter_map(std::future::ready)
            .boxed())
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
        let initialize = is_initialize(&message);
        self.post(
            initialize,
            self.http
                .post_message(uri, message, session_id, auth_header, custom_headers),
        )
        .await
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
        let initialize = is_initialize(&message);
        self.post(
            initialize,
            self.http.post_message_with_max_sse_event_size(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                max_sse_event_size,
            ),
        )
        .await
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
        let initialize = is_initialize(&message);
        self.post(
            initialize,
            self.http.post_message_with_response_limits(
                uri,
                message,
                session_id,
                auth_header,
                custom_headers,
                limits,
            ),
        )
        .await
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
        if !standalone {
            return stream;
        }
        self.listening.answered.send_replace(true);
        self.listening.watch(stream)
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
        if !standalone {
            return stream;
        }
        self.listening.answered.send_replace(true);
        self.listening.watch(stream)
    }
}

fn is_initialize(message: &ClientJsonRpcMessage) -> bool {
    matches!(
        message,
        ClientJsonRpcMessage::Request(request)
            if matches!(request.request, rmcp::model::ClientRequest::InitializeRequest(_))
    )
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
    async fn the_answer_passes_at_once_and_the_next_request_waits_for_its_stream_to_end() {
        let draining = Arc::new(Draining::default());
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut stream = draining.track(rx.boxed());
        tx.unbounded_send(event(
            r#"{"jsonrpc":"2.0","method":"notifications/progress","params":{}}"#,
        ))
        .unwrap();
        let progress = stream.next().await.unwrap().unwrap();
        assert!(progress.data.unwrap().contains("progress"));
        assert_eq!(
            *draining.open.borrow(),
            0,
            "a notification is not an answer"
        );
        tx.unbounded_send(event(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
            .unwrap();
        let answer = stream.next().await.unwrap().unwrap();
        assert!(answer.data.unwrap().contains("result"), "not held back");
        let mut next_request = std::pin::pin!(draining.ended(Duration::from_secs(60)));
        assert!(
            futures::poll!(&mut next_request).is_pending(),
            "the next request waits while the answered stream is open"
        );
        drop(tx); // the server ends the stream
        assert!(stream.next().await.is_none());
        tokio::time::timeout(Duration::from_secs(5), next_request)
            .await
            .expect("the stream's end lets the next request go");
    }

    #[tokio::test]
    async fn an_abandoned_stream_stops_holding_requests() {
        let draining = Arc::new(Draining::default());
        let (tx, rx) = futures::channel::mpsc::unbounded();
        let mut stream = draining.track(rx.boxed());
        tx.unbounded_send(event(r#"{"jsonrpc":"2.0","id":1,"result":{}}"#))
            .unwrap();
        stream.next().await.unwrap().unwrap();
        assert_eq!(*draining.open.borrow(), 1);
        drop(stream); // rmcp gave up draining it
        assert_eq!(*draining.open.borrow(), 0);
    }
}
