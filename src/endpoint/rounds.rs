//! A server's question for a 2026-07-28 client, which has no session to be asked on: the call
//! answers `input_required` with the question, and the client's retry, naming the
//! `requestState` it was given, carries the answer on to the call, still running upstream.
//!
//! The state is a random handle to what is kept here, good for one retry: it cannot be replayed
//! or guessed, and says nothing itself. A call whose client does not come back is stopped after
//! [`PARK_LIMIT`] (or sooner, by its own deadline).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rmcp::RoleServer;
use rmcp::model::{
    CallToolResult, ElicitRequest, ElicitResult, ElicitationAction, ErrorData, InputRequest,
    InputRequests, InputRequiredResult, InputResponses,
};
use rmcp::service::RequestContext;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::session::{Progress, Question};

/// How long a call waits for its client to come back with an answer.
const PARK_LIMIT: Duration = Duration::from_secs(600);

/// Calls waiting for their clients at once; beyond, a question is declined.
const MAX_PARKED: usize = 256;

/// The key of the one question of a round in `inputRequests`.
const QUESTION_KEY: &str = "question";

/// Whether the calling client takes a server's form questions as `input_required`: a
/// 2026-07-28 request whose client declared elicitation (an empty declaration means forms).
pub(super) fn can_answer(context: &RequestContext<RoleServer>) -> bool {
    let modern = context
        .meta
        .protocol_version()
        .is_some_and(|v| v.as_str() >= rmcp::model::ProtocolVersion::V_2026_07_28.as_str());
    modern
        && context
            .meta
            .client_capabilities()
            .and_then(|capabilities| capabilities.elicitation)
            .is_some_and(|asks| asks.form.is_some() || asks.url.is_none())
}

/// A call relayed upstream and what it says on the way. Dropping it stops the call.
pub(super) struct Running {
    pub task: JoinHandle<Result<CallToolResult, ErrorData>>,
    pub updates: mpsc::Receiver<Progress>,
    pub asked: mpsc::Receiver<Question>,
    /// The served name the client called, which its retries must name too.
    pub tool: String,
    pub client: String,
    pub correlation: String,
    pub started: Instant,
}

impl Drop for Running {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Parked {
    running: Running,
    question: Question,
    since: Instant,
}

/// The calls waiting for their clients' answers, by the state handed out.
#[derive(Default)]
pub(super) struct Rounds {
    parked: Mutex<HashMap<String, Parked>>,
}

impl Rounds {
    fn parked(&self) -> std::sync::MutexGuard<'_, HashMap<String, Parked>> {
        let mut parked = self
            .parked
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // Calls whose clients never came back are stopped (dropping them aborts the relay).
        parked.retain(|_, p| p.since.elapsed() < PARK_LIMIT);
        parked
    }

    /// Keeps the call until its client answers `question`; what to answer the client now.
    /// With too many calls waiting, hands both back: the question is to be declined.
    pub(super) fn park(
        &self,
        running: Running,
        question: Question,
    ) -> Result<InputRequiredResult, Box<(Running, Question)>> {
        let mut parked = self.parked();
        if parked.len() >= MAX_PARKED {
            tracing::warn!(
                call = %running.correlation,
                "too many calls wait for their clients' answers; declining a server's question"
            );
            return Err(Box::new((running, question)));
        }
        let state = new_state();
        let asked = ElicitRequest::new(question.asked.clone());
        let requests =
            InputRequests::from([(QUESTION_KEY.to_owned(), InputRequest::Elicitation(asked))]);
        parked.insert(
            state.clone(),
            Parked {
                running,
                question,
                since: Instant::now(),
            },
        );
        Ok(InputRequiredResult::new(Some(requests), Some(state)))
    }

    /// The call a retry continues, its question answered with what the client sent (a
    /// missing or malformed answer declines). A state is good for one retry, of the same tool.
    pub(super) fn resume(
        &self,
        state: &str,
        tool: &str,
        responses: Option<InputResponses>,
    ) -> Result<Running, ErrorData> {
        let found = self.parked().remove(state);
        let Some(Parked {
            running, question, ..
        }) = found
        else {
            return Err(ErrorData::invalid_params(
                "this requestState is not one Switchboard is waiting on: it was used already, \
                 has expired, or was never handed out; call the tool again",
                None,
            ));
        };
        if running.tool != tool {
            return Err(ErrorData::invalid_params(
                format!(
                    "this requestState belongs to a call of {:?}, not {tool:?}; that call is \
                     stopped",
                    running.tool
                ),
                None,
            ));
        }
        let answer = responses
            .and_then(|mut responses| responses.remove(QUESTION_KEY))
            .and_then(|answer| serde_json::from_value::<ElicitResult>(answer).ok())
            .unwrap_or_else(|| ElicitResult::new(ElicitationAction::Decline));
        let _ = question.answer.send(answer);
        Ok(running)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.parked().len()
    }
}

/// 128 random bits, hex: a handle nobody can guess.
fn new_state() -> String {
    let bits: u128 = rand::random();
    format!("{bits:032x}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use rmcp::model::ElicitRequestParams;
    use tokio::sync::oneshot;

    fn running(tool: &str) -> (Running, mpsc::Sender<Question>) {
        let (_progress, updates) = mpsc::channel(1);
        let (questions, asked) = mpsc::channel(1);
        let running = Running {
            task: tokio::spawn(std::future::pending()),
            updates,
            asked,
            tool: tool.into(),
            client: "test".into(),
            correlation: "c1".into(),
            started: Instant::now(),
        };
        (running, questions)
    }

    fn question() -> (Question, oneshot::Receiver<ElicitResult>) {
        let (answer, answered) = oneshot::channel();
        let asked: ElicitRequestParams = serde_json::from_value(serde_json::json!({
            "mode": "form",
            "message": "Proceed?",
            "requestedSchema": {"type": "object", "properties": {}}
        }))
        .unwrap();
        (Question { asked, answer }, answered)
    }

    /// A call of `tool` parked on a question: its state, and where its answer arrives.
    fn parked(rounds: &Rounds, tool: &str) -> (String, oneshot::Receiver<ElicitResult>) {
        let (call, _questions) = running(tool);
        let (asked, answered) = question();
        let asking = rounds.park(call, asked).ok().expect("room to park");
        (asking.request_state.expect("a state"), answered)
    }

    #[tokio::test]
    async fn a_state_carries_its_answer_once_and_to_the_same_tool_only() {
        let rounds = Rounds::default();
        let (call, _questions) = running("fx_tool");
        let (asked, answered) = question();
        let Ok(result) = rounds.park(call, asked) else {
            panic!("one call is not too many")
        };
        let state = result.request_state.clone().unwrap();
        assert_eq!(state.len(), 32);
        let requests = result.input_requests.unwrap();
        assert!(matches!(
            requests.get(QUESTION_KEY),
            Some(InputRequest::Elicitation(_))
        ));

        let accepted = serde_json::json!({"action": "accept", "content": {"answer": "yes"}});
        let responses = InputResponses::from([(QUESTION_KEY.to_owned(), accepted)]);
        let resumed = rounds.resume(&state, "fx_tool", Some(responses.clone()));
        assert!(resumed.is_ok());
        let answer = answered.await.unwrap();
        assert_eq!(answer.action, ElicitationAction::Accept);

        let replayed = rounds.resume(&state, "fx_tool", Some(responses));
        let error = replayed.err().expect("a state is good for one retry");
        assert!(error.message.contains("used already"), "{}", error.message);
        assert!(
            rounds.resume("00", "fx_tool", None).is_err(),
            "never handed out"
        );

        let (state, answered) = parked(&rounds, "fx_tool");
        let other = rounds.resume(&state, "other_tool", None);
        assert!(other.err().unwrap().message.contains("\"fx_tool\""));
        assert!(
            answered.await.is_err(),
            "a stopped call's question is dropped"
        );
        assert_eq!(rounds.len(), 0);
    }

    #[tokio::test]
    async fn a_missing_answer_declines_and_too_many_waiting_calls_decline() {
        let rounds = Rounds::default();
        let (state, answered) = parked(&rounds, "fx_tool");
        let garbled = InputResponses::from([(QUESTION_KEY.to_owned(), serde_json::json!(7))]);
        assert!(rounds.resume(&state, "fx_tool", Some(garbled)).is_ok());
        assert_eq!(answered.await.unwrap().action, ElicitationAction::Decline);

        let mut kept = Vec::new();
        for _ in 0..MAX_PARKED {
            let (call, questions) = running("fx_tool");
            let (asked, _answered) = question();
            assert!(rounds.park(call, asked).is_ok());
            kept.push(questions);
        }
        let (call, _questions) = running("fx_tool");
        let (asked, _answered) = question();
        assert!(rounds.park(call, asked).is_err(), "the cap holds");
        assert_eq!(rounds.len(), MAX_PARKED);
    }
}
