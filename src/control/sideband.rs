//! The daemon's side of a call's sideband on the control socket: each progress update goes down
//! the connection as [`Down::Progress`], each question as [`Down::Question`], whose answer comes
//! back as an [`ANSWER`](crate::wire::ANSWER) call on the same connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::model::ElicitResult;
use tokio::sync::mpsc::{self, UnboundedSender};
use tokio::sync::oneshot;

use crate::call_log::CallOrigin;
use crate::control::SharedDaemon;
use crate::session::{Question, Sideband};
use crate::wire::{Down, WireError};

/// Questions one connection may leave unanswered at once; more are declined.
const MAX_OPEN_QUESTIONS: usize = 16;

/// A connection's questions waiting for their answers, by question id.
#[derive(Clone, Default)]
pub(crate) struct OpenQuestions(Arc<Mutex<Waiting>>);

#[derive(Default)]
struct Waiting {
    next: u64,
    answers: HashMap<u64, oneshot::Sender<ElicitResult>>,
}

impl OpenQuestions {
    fn waiting(&self) -> MutexGuard<'_, Waiting> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Keeps `question`'s answer channel under a new id; `None` (the question dropped, so
    /// declined) when too many are open.
    fn open(&self, question: Question) -> Option<(u64, rmcp::model::ElicitRequestParams)> {
        let mut waiting = self.waiting();
        waiting.answers.retain(|_, answer| !answer.is_closed());
        if waiting.answers.len() >= MAX_OPEN_QUESTIONS {
            tracing::warn!("a client leaves {MAX_OPEN_QUESTIONS} questions open: declining more");
            return None;
        }
        waiting.next += 1;
        let id = waiting.next;
        waiting.answers.insert(id, question.answer);
        Some((id, question.asked))
    }

    /// The client's answer to question `args.question`.
    pub(crate) fn answer(&self, args: &serde_json::Value) -> Result<(), WireError> {
        let id = args["question"]
            .as_u64()
            .ok_or_else(|| WireError::new("bad_arguments", "answer: no question id".into()))?;
        let answer: ElicitResult = serde_json::from_value(args["answer"].clone())
            .map_err(|e| WireError::new("bad_arguments", format!("answer: {e}")))?;
        let waiting = self.waiting().answers.remove(&id);
        let waiting = waiting.ok_or_else(|| {
            WireError::new(
                "not_found",
                format!("no open question {id} (its call ended)"),
            )
        })?;
        let _ = waiting.send(answer);
        Ok(())
    }
}

/// Calls a tool for a client that asked for progress or questions, sending each down the
/// connection as it comes: every update before the answer.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn call(
    daemon: &SharedDaemon,
    id: u64,
    tool: &str,
    arguments: serde_json::Value,
    origin: CallOrigin,
    (progress, asks): (bool, bool),
    answers: &UnboundedSender<Down>,
    open: &OpenQuestions,
) -> Result<serde_json::Value, WireError> {
    let daemon = daemon.get().await?;
    let (progress_sink, mut updates) = mpsc::channel(64);
    let (question_sink, mut questions) = mpsc::channel(4);
    let sideband = Sideband {
        progress: progress.then_some(progress_sink),
        questions: asks.then_some(question_sink),
    };
    let call = daemon.call_tool_as(tool, arguments, origin, sideband);
    tokio::pin!(call);
    let result = loop {
        tokio::select! {
            biased;
            Some(update) = updates.recv() => {
                let _ = answers.send(Down::Progress { id, update });
            }
            Some(question) = questions.recv() => {
                if let Some((question, asked)) = open.open(question) {
                    let _ = answers.send(Down::Question { id, question, asked });
                }
            }
            result = &mut call => break result,
        }
    };
    while let Ok(update) = updates.try_recv() {
        let _ = answers.send(Down::Progress { id, update });
    }
    crate::control::reply(result?)
}
