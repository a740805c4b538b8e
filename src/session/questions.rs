//! A server's questions for its user (`elicitation/create` while a call runs, or the
//! elicitations of an `input_required` result), passed to whoever made the call when it can
//! answer: an AI client that declared elicitation, through `serve` and the daemon.
//!
//! `elicitation/create` does not say which call it is for, so a question goes to a caller only
//! when that caller's call is the only one in flight on the session; with several in flight, or
//! none that can answer, the session answers as its [`Elicitation`](super::Elicitation) says.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use rmcp::model::{ElicitRequestParams, ElicitResult, InputRequest, InputRequests, InputResponses};
use tokio::sync::{mpsc, oneshot};

use super::{Elicitation, ProgressSink, SessionError};

/// A server's question and where its answer goes. Dropping `answer` declines.
#[derive(Debug)]
pub struct Question {
    pub asked: ElicitRequestParams,
    pub answer: oneshot::Sender<ElicitResult>,
}

/// Where a caller takes its call's questions.
pub type QuestionSink = mpsc::Sender<Question>;

/// What a caller hears of its call besides the result: progress updates and questions. Each is
/// passed on only where the caller gave a sink for it.
#[derive(Clone, Default)]
pub struct Sideband {
    pub progress: Option<ProgressSink>,
    pub questions: Option<QuestionSink>,
}

impl Sideband {
    pub fn progress(sink: ProgressSink) -> Self {
        Self {
            progress: Some(sink),
            questions: None,
        }
    }
}

/// Asks the caller behind `sink`; `None` when it has gone or dropped the question unanswered.
pub async fn ask(sink: &QuestionSink, asked: ElicitRequestParams) -> Option<ElicitResult> {
    let (answer, answered) = oneshot::channel();
    sink.send(Question { asked, answer }).await.ok()?;
    answered.await.ok()
}

/// The calls in flight on one session, each with where its questions go (if anywhere).
#[derive(Clone, Default)]
pub(super) struct QuestionRoutes(Arc<Mutex<Calls>>);

#[derive(Default)]
struct Calls {
    next: u64,
    in_flight: HashMap<u64, Option<QuestionSink>>,
}

impl QuestionRoutes {
    fn calls(&self) -> MutexGuard<'_, Calls> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call in flight until the guard drops.
    pub(super) fn enter(&self, questions: Option<QuestionSink>) -> InFlight {
        let mut calls = self.calls();
        calls.next += 1;
        let id = calls.next;
        calls.in_flight.insert(id, questions);
        InFlight {
            routes: self.clone(),
            id,
        }
    }

    /// Who a question the server sent with no call named is for: the only call in flight, when
    /// it can answer.
    pub(super) fn asker(&self) -> Option<QuestionSink> {
        let calls = self.calls();
        match calls.in_flight.values().collect::<Vec<_>>().as_slice() {
            [Some(sink)] => Some(sink.clone()),
            _ => None,
        }
    }
}

/// A call in flight on a session; dropped when it ends, however it ends.
pub(super) struct InFlight {
    routes: QuestionRoutes,
    id: u64,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.routes.calls().in_flight.remove(&self.id);
    }
}

/// Answers the questions of an `input_required` result (2026-07-28): the call's own, so each
/// elicitation goes to `asker` when there is one, or is answered as `elicitation` says.
pub(super) async fn input_responses(
    elicitation: Elicitation,
    asker: Option<&QuestionSink>,
    requests: InputRequests,
) -> Result<InputResponses, SessionError> {
    let mut responses = InputResponses::new();
    for (key, request) in requests {
        let answer = match request {
            InputRequest::Elicitation(request) => {
                let asked = match asker {
                    Some(asker) => ask(asker, request.params.clone()).await,
                    None => None,
                };
                let answer = asked.unwrap_or_else(|| elicitation.answer(&request.params));
                serde_json::to_value(answer)
            }
            InputRequest::ListRoots(_) => Ok(serde_json::json!({ "roots": [] })),
            _ => {
                return Err(SessionError::Unsupported(
                    "the server asked for an LLM completion (sampling), which Switchboard does \
                     not offer"
                        .into(),
                ));
            }
        };
        let answer = answer.map_err(|e| SessionError::transport(e.to_string()))?;
        responses.insert(key, answer);
    }
    Ok(responses)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_question_goes_only_to_the_one_call_in_flight() {
        let routes = QuestionRoutes::default();
        assert!(routes.asker().is_none(), "no call, nobody to ask");
        let (sink, _questions) = mpsc::channel(1);
        let first = routes.enter(Some(sink));
        assert!(routes.asker().is_some());
        let second = routes.enter(None);
        assert!(
            routes.asker().is_none(),
            "two calls: the question could be either's"
        );
        drop(first);
        assert!(routes.asker().is_none(), "the call left cannot answer");
        drop(second);
        assert!(routes.calls().in_flight.is_empty());
    }
}
