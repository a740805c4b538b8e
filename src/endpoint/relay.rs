//! `serve` with a daemon running: the daemon serves the AI client's MCP session itself, over
//! the control socket ([`wire::MCP`]), and this process passes lines between the two. It
//! reads just enough of each to know which requests the client still waits on, and keeps the
//! client's opening (`initialize`, `notifications/initialized`), so that when the daemon goes
//! away (the user quits the app) the same session goes on: opened again with the next daemon,
//! or with an engine of this process's own, the client none the wiser but for one
//! `list_changed` and an error for each request caught in the switch.

use std::collections::HashMap;
use std::path::Path;
use std::pin::Pin;
use std::time::Duration;

use futures::{SinkExt as _, StreamExt as _};
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio_util::codec::{Framed, FramedRead, FramedWrite, LinesCodec, LinesCodecError};

use super::server::{AggregatedServer, Following, Source};
use super::stdio;
use crate::daemon::DaemonOptions;
use crate::wire::{self, Call, Down};

/// How long a daemon has to agree to carry a session before `serve` does without it.
const AGREE_WITHIN: Duration = Duration::from_secs(5);

/// The longest message passed along (a tool's answer of the engine's largest, 16 MiB, escaped
/// again as JSON); a longer one is dropped, said on stderr, and the session goes on.
const MAX_MESSAGE: usize = 64 << 20;

fn codec() -> LinesCodec {
    LinesCodec::new_with_max_length(MAX_MESSAGE)
}

pub trait Duplex: AsyncRead + AsyncWrite + Send {}
impl<T: AsyncRead + AsyncWrite + Send> Duplex for T {}

/// Where the session is served: the daemon's socket, or an engine of this process's own.
pub type Link = Framed<Pin<Box<dyn Duplex>>, LinesCodec>;

/// The daemon's socket, switched over to carry an MCP session; `None` with no daemon (or one
/// that does not agree in time).
pub async fn open(config_dir: &Path) -> Option<Link> {
    let path = crate::control::socket::socket_path(config_dir).ok()?;
    let stream = tokio::net::UnixStream::connect(&path).await.ok()?;
    let mut link: Link = Framed::new(Box::pin(stream), codec());
    let call = Call {
        id: 1,
        command: wire::MCP.into(),
        args: Value::Null,
    };
    link.send(serde_json::to_string(&call).ok()?).await.ok()?;
    let agreed = tokio::time::timeout(AGREE_WITHIN, link.next())
        .await
        .ok()??
        .ok()?;
    match serde_json::from_str(&agreed) {
        Ok(Down::Answer {
            id: 1,
            result: Ok(_),
        }) => Some(link),
        _ => {
            tracing::warn!("the daemon does not carry MCP sessions; serving without it");
            None
        }
    }
}

/// Carries the client's session over `link` until the client ends it.
pub async fn run(link: Link, options: DaemonOptions) {
    let (reader, writer) = stdio::streams();
    let mut from_client = FramedRead::new(reader, codec());
    let mut to_client = FramedWrite::new(writer, codec());
    let mut session = Session::default();
    let mut link = link;
    let mut engine: Option<Engine> = None;
    loop {
        let lost = tokio::select! {
            line = from_client.next() => match line {
                Some(Ok(line)) => {
                    session.client_sent(&line);
                    link.send(line).await.is_err()
                }
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    tracing::warn!("dropped a message of the client's over {MAX_MESSAGE} bytes");
                    false
                }
                // The client has gone: so does its session.
                _ => break,
            },
            line = link.next() => match line {
                Some(Ok(line)) => {
                    if to_client.send(session.server_sent(line)).await.is_err() {
                        break;
                    }
                    false
                }
                Some(Err(LinesCodecError::MaxLineLengthExceeded)) => {
                    tracing::warn!("dropped a message to the client over {MAX_MESSAGE} bytes");
                    false
                }
                _ => true,
            },
        };
        if lost {
            if engine.is_some() {
                tracing::error!("the engine of this process's own stopped serving");
                break;
            }
            tracing::warn!("the daemon went away; going on without it");
            for line in session.caught_in_switch() {
                let _ = to_client.send(line).await;
            }
            link = match open(&options.config_dir).await {
                Some(next) => next,
                None => {
                    let (started, next) = Engine::start(options.clone());
                    engine = Some(started);
                    next
                }
            };
            for line in session.reopening() {
                let _ = link.send(line).await;
            }
        }
    }
    drop(link);
    if let Some(engine) = engine {
        engine.close().await;
    }
}

/// An aggregated server of this process's own, reached over an in-process pipe.
struct Engine {
    following: Following,
    service: tokio::task::JoinHandle<()>,
}

impl Engine {
    fn start(options: DaemonOptions) -> (Self, Link) {
        use rmcp::ServiceExt as _;
        let (ours, its) = tokio::io::duplex(64 << 10);
        let (server, following) = AggregatedServer::start(Source::Open(options));
        let service = tokio::spawn(async move {
            match server.serve(its).await {
                Ok(running) => {
                    let _ = running.waiting().await;
                }
                Err(error) => tracing::error!(%error, "the session could not be opened again"),
            }
        });
        let link: Link = Framed::new(Box::pin(ours), codec());
        (Self { following, service }, link)
    }

    async fn close(self) {
        let _ = self.service.await;
        self.following.close().await;
    }
}

/// What the relay knows of the session it carries.
#[derive(Default)]
struct Session {
    /// The client's `initialize` and `notifications/initialized`, as sent.
    opening: Vec<String>,
    /// The client's requests not answered yet, by id (as JSON text): the id and the method.
    waiting: HashMap<String, (Value, String)>,
    /// Held for replay to the next server: requests that only wait to be told things.
    listening: HashMap<String, String>,
    /// The id of a replayed `initialize`: its answer is for the relay, not the client.
    reopened: Option<String>,
}

/// Just the parts of a message the relay reads (the rest is skipped, not kept).
#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    id: Option<Value>,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    params: Option<Params>,
}

#[derive(Deserialize)]
struct Params {
    #[serde(default, rename = "requestId")]
    request_id: Option<Value>,
}

/// What the client waits on for as long as the session lasts (a 2026-era subscription).
const LISTEN: &str = "subscriptions/listen";

impl Session {
    fn client_sent(&mut self, line: &str) {
        let Ok(message) = serde_json::from_str::<Message>(line) else {
            return;
        };
        match (message.id, message.method.as_deref()) {
            (Some(id), Some(method)) => {
                let key = id.to_string();
                if method == "initialize" && self.opening.is_empty() {
                    self.opening.push(line.to_string());
                }
                if method == LISTEN {
                    self.listening.insert(key.clone(), line.to_string());
                }
                self.waiting.insert(key, (id, method.to_string()));
            }
            (None, Some("notifications/initialized")) if self.opening.len() == 1 => {
                self.opening.push(line.to_string());
            }
            (None, Some("notifications/cancelled")) => {
                let cancelled = message.params.and_then(|p| p.request_id);
                if let Some(id) = cancelled {
                    self.answered(&id.to_string());
                }
            }
            _ => {}
        }
    }

    /// What to pass on for `line` from the server: itself, or for the answer to a replayed
    /// opening a word that the tools may have changed (the client was told of another set).
    fn server_sent(&mut self, line: String) -> String {
        let Some(id) = answered_id(&line) else {
            return line;
        };
        if self.reopened.as_deref() == Some(id.as_str()) {
            self.reopened = None;
            let changed = json!({"jsonrpc": "2.0", "method": "notifications/tools/list_changed"});
            return changed.to_string();
        }
        self.answered(&id);
        line
    }

    fn answered(&mut self, id: &str) {
        self.waiting.remove(id);
        self.listening.remove(id);
    }

    /// An answer for each request the server that went away left unanswered (but those that
    /// are replayed): a tool error for a call, so the model reads why, an error for the rest.
    fn caught_in_switch(&mut self) -> Vec<String> {
        let why = "Switchboard's daemon stopped while this was asked; ask again";
        // A session opened with `initialize` is of the 2025 era or older; one without, of the
        // 2026-07-28 era, whose results say what they are.
        let stateless = self.opening.is_empty();
        let listening = &self.listening;
        let mut answers = Vec::new();
        self.waiting.retain(|key, (id, method)| {
            if listening.contains_key(key) {
                return true;
            }
            let answer = if method == "tools/call" {
                let mut result =
                    json!({"content": [{"type": "text", "text": why}], "isError": true});
                if stateless {
                    result["resultType"] = "complete".into();
                }
                json!({"jsonrpc": "2.0", "id": id, "result": result})
            } else {
                json!({"jsonrpc": "2.0", "id": id, "error": {"code": -32603, "message": why}})
            };
            answers.push(answer.to_string());
            false
        });
        answers
    }

    /// What the next server is told so the session goes on: the opening, then the requests
    /// still listening.
    fn reopening(&mut self) -> Vec<String> {
        if let Some(initialize) = self.opening.first() {
            self.reopened = serde_json::from_str::<Message>(initialize)
                .ok()
                .and_then(|m| m.id)
                .map(|id| id.to_string());
        }
        self.opening
            .iter()
            .chain(self.listening.values())
            .cloned()
            .collect()
    }
}

/// The id `line` answers, if it is an answer (a result or an error). The daemon's MCP stack
/// writes `{"jsonrpc":"2.0","id":…` first, so a 5,000-tool page is not parsed to find it;
/// anything else is parsed.
fn answered_id(line: &str) -> Option<String> {
    if let Some(rest) = line.strip_prefix(r#"{"jsonrpc":"2.0","id":"#) {
        let end = rest.find([',', '"', '\\']);
        if let Some(end) = end.filter(|&end| end > 0 && rest.as_bytes()[end] == b',') {
            let (id, after) = rest.split_at(end);
            let answer = after.starts_with(r#","result""#) || after.starts_with(r#","error""#);
            return answer.then(|| id.to_string());
        }
    }
    let message: Message = serde_json::from_str(line).ok()?;
    match (message.id, message.method) {
        (Some(id), None) => Some(id.to_string()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_is_known_by_its_id_read_fast_or_parsed() {
        let fast = r#"{"jsonrpc":"2.0","id":42,"result":{"tools":[]}}"#;
        assert_eq!(answered_id(fast).as_deref(), Some("42"));
        let error = r#"{"jsonrpc":"2.0","id":7,"error":{"code":1,"message":"x"}}"#;
        assert_eq!(answered_id(error).as_deref(), Some("7"));
        let named = r#"{"jsonrpc":"2.0","id":"a,b","result":{}}"#;
        assert_eq!(answered_id(named).as_deref(), Some(r#""a,b""#));
        let request = r#"{"jsonrpc":"2.0","id":3,"method":"elicitation/create","params":{}}"#;
        assert_eq!(answered_id(request), None);
        let notification = r#"{"jsonrpc":"2.0","method":"notifications/progress"}"#;
        assert_eq!(answered_id(notification), None);
    }

    #[test]
    fn a_call_of_a_session_opened_without_initialize_is_answered_as_2026_results_are() {
        let mut session = Session::default();
        session.client_sent(r#"{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{}}"#);
        let answers = session.caught_in_switch();
        let answer: Value = serde_json::from_str(&answers[0]).expect("JSON");
        assert_eq!(answer["result"]["resultType"], "complete", "{answer}");
    }

    #[test]
    fn a_switch_answers_what_waits_and_reopens_the_same_session() {
        let mut session = Session::default();
        let initialize = r#"{"jsonrpc":"2.0","id":0,"method":"initialize","params":{}}"#;
        let initialized = r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#;
        let call = r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"a"}}"#;
        let listed = r#"{"jsonrpc":"2.0","id":6,"method":"tools/list"}"#;
        let cancelled = r#"{"jsonrpc":"2.0","id":8,"method":"tools/call","params":{}}"#;
        let cancel =
            r#"{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":8}}"#;
        let listen = r#"{"jsonrpc":"2.0","id":"s","method":"subscriptions/listen","params":{}}"#;
        for line in [
            initialize,
            initialized,
            call,
            listed,
            cancelled,
            cancel,
            listen,
        ] {
            session.client_sent(line);
        }
        let init_answer = r#"{"jsonrpc":"2.0","id":0,"result":{}}"#.to_string();
        assert_eq!(session.server_sent(init_answer.clone()), init_answer);
        let list_answer = r#"{"jsonrpc":"2.0","id":6,"result":{"tools":[]}}"#.to_string();
        assert_eq!(session.server_sent(list_answer.clone()), list_answer);

        let answers = session.caught_in_switch();
        assert_eq!(answers.len(), 1, "the call alone still waited: {answers:?}");
        let answer: Value = serde_json::from_str(&answers[0]).expect("JSON");
        assert_eq!(answer["id"], 5);
        assert_eq!(answer["result"]["isError"], true, "a tool error: {answer}");
        assert!(answer["result"].get("resultType").is_none(), "{answer}");
        let replayed = session.reopening();
        assert_eq!(replayed, vec![initialize, initialized, listen]);
        let notice = session.server_sent(init_answer);
        assert!(notice.contains("tools/list_changed"), "{notice}");
    }
}
