//! A tool call relayed for a client: through the engine's timed path, with its progress passed
//! on under the client's token and its server's questions put to the client, on its session
//! or (a 2026-07-28 client) as an `input_required` answer the client comes back from.

use std::time::Instant;

use rmcp::RoleServer;
use rmcp::model::{CallToolRequestParams, CallToolResponse, CallToolResult, ErrorData};
use rmcp::service::RequestContext;
use serde_json::Value;

use super::rounds::{self, Running};
use super::server::{AggregatedServer, tool_error};
use super::sideband::{self, notify_progress};
use super::upstream::BAD_ANSWER;
use crate::call_log::CallOrigin;
use crate::session::Sideband;
use crate::wire::WireError;

impl AggregatedServer {
    pub(super) async fn call(
        &self,
        mut request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let mut running = match request.request_state.take() {
            // A 2026-07-28 client back with the answer to a question of its call's server.
            Some(state) => {
                self.rounds()
                    .resume(&state, &request.name, request.input_responses.take())?
            }
            None => self.start_call(request, &context),
        };
        // rmcp moves the request's `_meta` (its progress token) into the context.
        let token = context.meta.get_progress_token();
        let outcome = loop {
            let next = tokio::select! {
                outcome = &mut running.task => Next::Done(outcome),
                Some(update) = running.updates.recv() => Next::Progress(update),
                Some(question) = running.asked.recv() => Next::Asked(question),
                () = context.ct.cancelled() => Next::Cancelled,
            };
            match next {
                Next::Done(outcome) => {
                    break outcome.unwrap_or_else(|_| {
                        Err(ErrorData::internal_error("the call was stopped", None))
                    });
                }
                Next::Progress(update) => {
                    notify_progress(&context.peer, token.clone(), update).await;
                }
                // Answered on a task of its own: the call (and its cancellation) goes on.
                Next::Asked(question) if sideband::can_answer(&context) => {
                    tokio::spawn(sideband::relay(context.peer.clone(), question));
                }
                // No session to ask on: the client gets the question as this call's answer.
                Next::Asked(question) => match self.rounds().park(running, question) {
                    Ok(asking) => return Ok(asking.into()),
                    // Dropping the question declines it.
                    Err(refused) => running = refused.0,
                },
                Next::Cancelled => {
                    break Err(ErrorData::internal_error("cancelled by the client", None));
                }
            }
        };
        while let Ok(update) = running.updates.try_recv() {
            notify_progress(&context.peer, token.clone(), update).await;
        }
        let result = match &outcome {
            Ok(r) if r.is_error == Some(true) => "tool_error",
            Ok(_) => "ok",
            Err(_) => "error",
        };
        tracing::info!(
            call = %running.correlation,
            client = %running.client,
            tool = %running.tool,
            ms = running.started.elapsed().as_secs_f64() * 1e3,
            result,
            "tool call"
        );
        outcome.map(Into::into)
    }

    /// Relays one call and says how it went: the tool's answer, or a tool error the calling
    /// model can read (a connector that went down, a daemon that went away).
    async fn relay(
        &self,
        name: &str,
        arguments: Value,
        caller: CallOrigin,
        sideband: Sideband,
    ) -> Result<CallToolResult, ErrorData> {
        let served = self.served().await;
        let origin = match served.origin(name) {
            Ok(origin) => origin.clone(),
            Err(Some(departed)) => {
                let why = self.why_not_served(&departed.connector).await;
                return Ok(tool_error(format!(
                    "{name} is no longer served: connector {:?} {why}",
                    departed.connector
                )));
            }
            Err(None) => {
                return Err(ErrorData::invalid_params(
                    format!("no tool named {name:?}"),
                    None,
                ));
            }
        };
        let Some(upstream) = self.upstream().await else {
            return Ok(tool_error("Switchboard is shutting down".into()));
        };
        let qualified = crate::catalog::qualified_name(&origin.connector, &origin.tool);
        match upstream.call(qualified, arguments, caller, sideband).await {
            // An initialize-era server's answer has no `resultType`, which a 2026-07-28 client
            // requires (rmcp strips it again for older clients).
            Ok(mut answer) => {
                answer.result_type = Some(rmcp::model::ResultType::COMPLETE);
                Ok(answer)
            }
            Err(WireError { code, message, .. }) if code == BAD_ANSWER => {
                Err(ErrorData::internal_error(message, None))
            }
            Err(WireError { message, .. }) => Ok(tool_error(message)),
        }
    }

    /// Starts relaying a call on a task of its own, which can outlive this request when the
    /// client is asked a question with `input_required`.
    fn start_call(
        &self,
        request: CallToolRequestParams,
        context: &RequestContext<RoleServer>,
    ) -> Running {
        let correlation = crate::call_log::new_correlation();
        let client = context
            .peer
            .peer_info()
            .map(|info| info.client_info.name.clone())
            .or_else(|| context.meta.client_info().map(|info| info.name))
            .unwrap_or_else(|| "unknown".into());
        let arguments = request.arguments.map_or(Value::Null, Value::Object);
        let (progress, updates) = tokio::sync::mpsc::channel(64);
        let (questions, asked) = tokio::sync::mpsc::channel(4);
        let answers = sideband::can_answer(context) || rounds::can_answer(context);
        let sideband = Sideband {
            progress: context.meta.get_progress_token().map(|_| progress),
            questions: answers.then_some(questions),
        };
        let origin = CallOrigin {
            client: Some(client.clone()),
            correlation: Some(correlation.clone()),
        };
        let server = self.clone();
        let name = request.name.to_string();
        let task =
            tokio::spawn(async move { server.relay(&name, arguments, origin, sideband).await });
        Running {
            task,
            updates,
            asked,
            tool: request.name.into(),
            client,
            correlation,
            started: Instant::now(),
        }
    }
}

/// What a relayed call did next.
enum Next {
    Done(Result<Result<CallToolResult, ErrorData>, tokio::task::JoinError>),
    Progress(crate::session::Progress),
    Asked(crate::session::Question),
    Cancelled,
}
