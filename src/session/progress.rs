//! Progress of a long call, passed from the server to whoever made the call. rmcp puts a
//! progress token of its own on every request and tells it only once the request is on its way,
//! so the session keeps the few updates nobody has claimed yet: the first one of a call cannot
//! be lost to the moment between sending it and claiming its token.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use rmcp::RoleClient;
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResponse, CancelledNotificationParam,
    ClientRequest, JsonRpcMessage, ProgressNotificationParam, ProgressToken, ServerNotification,
    ServerResult,
};
use rmcp::service::{PeerRequestOptions, RxJsonRpcMessage, ServiceError, TxJsonRpcMessage};
use rmcp::transport::Transport;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

/// Updates kept for tokens not (yet) claimed; older ones go first.
const UNCLAIMED: usize = 32;
/// A progress message is passed on cut to this many characters: it is a status line, and a
/// server could send megabytes in every one.
const MAX_MESSAGE_CHARS: usize = 1_000;

/// One progress update of a call, as the server sent it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Progress {
    pub progress: f64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub total: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

impl From<ProgressNotificationParam> for Progress {
    fn from(update: ProgressNotificationParam) -> Self {
        Self {
            progress: update.progress,
            total: update.total,
            message: update
                .message
                .map(|m| m.chars().take(MAX_MESSAGE_CHARS).collect()),
        }
    }
}

/// Where a caller wants a call's progress. Updates that find it full are dropped: each says
/// how far the call is, so a later one makes up for a lost one.
pub type ProgressSink = mpsc::Sender<Progress>;

/// The session's progress updates, routed to the calls that asked for them.
#[derive(Clone, Default)]
pub(super) struct ProgressRoutes(Arc<Mutex<Routes>>);

#[derive(Default)]
struct Routes {
    claimed: HashMap<ProgressToken, ProgressSink>,
    unclaimed: VecDeque<ProgressNotificationParam>,
}

impl ProgressRoutes {
    fn routes(&self) -> std::sync::MutexGuard<'_, Routes> {
        self.0
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// A server's update: to its call, or kept a moment for a call about to claim it.
    pub(super) fn deliver(&self, update: ProgressNotificationParam) {
        let mut routes = self.routes();
        if let Some(sink) = routes.claimed.get(&update.progress_token) {
            let _ = sink.try_send(update.into());
            return;
        }
        tracing::trace!(token = ?update.progress_token, "progress update for no call (yet)");
        if routes.unclaimed.len() == UNCLAIMED {
            routes.unclaimed.pop_front();
        }
        routes.unclaimed.push_back(update);
    }

    /// Sends `token`'s updates to `sink` (those already kept first) until the route is dropped.
    fn claim(&self, token: ProgressToken, sink: ProgressSink) -> Claimed {
        let mut routes = self.routes();
        let (early, rest) = std::mem::take(&mut routes.unclaimed)
            .into_iter()
            .partition(|u| u.progress_token == token);
        routes.unclaimed = rest;
        for update in early {
            let _ = sink.try_send(update.into());
        }
        routes.claimed.insert(token.clone(), sink);
        Claimed {
            routes: self.clone(),
            token,
        }
    }
}

struct Claimed {
    routes: ProgressRoutes,
    token: ProgressToken,
}

impl Drop for Claimed {
    fn drop(&mut self) {
        self.routes.routes().claimed.remove(&self.token);
    }
}

/// A request sent and not answered yet; dropped so (its caller gave up), it tells the server,
/// as rmcp's own calls do.
struct Abandoned {
    peer: rmcp::Peer<RoleClient>,
    id: Option<rmcp::model::RequestId>,
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        let Some(id) = self.id.take() else { return };
        let peer = self.peer.clone();
        tokio::spawn(async move {
            let cancelled = CancelledNotificationParam::new(
                Some(id),
                Some("request abandoned by the caller".into()),
            );
            let _ = peer.notify_cancelled(cancelled).await;
        });
    }
}

/// One `tools/call` round, as `Peer::call_tool_once`, with the server's progress passed to
/// `sink` while it runs.
pub(super) async fn call_once_reporting(
    peer: &rmcp::Peer<RoleClient>,
    routes: &ProgressRoutes,
    sink: &ProgressSink,
    params: CallToolRequestParams,
) -> Result<CallToolResponse, ServiceError> {
    let request = ClientRequest::CallToolRequest(CallToolRequest::new(params));
    let handle = peer
        .send_request_with_option(request, PeerRequestOptions::no_options())
        .await?;
    let _route = routes.claim(handle.progress_token.clone(), sink.clone());
    let mut abandoned = Abandoned {
        peer: peer.clone(),
        id: Some(handle.id.clone()),
    };
    let answer = handle.await_response().await;
    abandoned.id = None;
    match answer? {
        ServerResult::CallToolResult(result) => Ok(CallToolResponse::Complete(result)),
        ServerResult::InputRequiredResult(asked) => Ok(CallToolResponse::InputRequired(asked)),
        ServerResult::CreateTaskResult(task) => Ok(CallToolResponse::Task(task)),
        _ => Err(ServiceError::UnexpectedResponse),
    }
}

/// A transport that hands each progress update to its call as it is read, before whatever the
/// server sent after it: rmcp runs notification handlers as tasks of their own, so a call's
/// last update would otherwise often arrive after its answer, and be lost.
pub(super) struct ProgressTap<T> {
    inner: T,
    routes: ProgressRoutes,
}

impl<T> ProgressTap<T> {
    pub(super) fn new(inner: T, routes: ProgressRoutes) -> Self {
        Self { inner, routes }
    }
}

impl<T: Transport<RoleClient>> Transport<RoleClient> for ProgressTap<T> {
    type Error = T::Error;

    fn name() -> std::borrow::Cow<'static, str> {
        T::name()
    }

    fn send(
        &mut self,
        item: TxJsonRpcMessage<RoleClient>,
    ) -> impl Future<Output = Result<(), Self::Error>> + Send + 'static {
        self.inner.send(item)
    }

    fn receive(&mut self) -> impl Future<Output = Option<RxJsonRpcMessage<RoleClient>>> + Send {
        let routes = self.routes.clone();
        let next = self.inner.receive();
        async move {
            let message = next.await;
            if let Some(JsonRpcMessage::Notification(notification)) = &message
                && let ServerNotification::ProgressNotification(update) = &notification.notification
            {
                routes.deliver(update.params.clone());
            }
            message
        }
    }

    fn close(&mut self) -> impl Future<Output = Result<(), Self::Error>> + Send {
        self.inner.close()
    }
}

#[cfg(test)]
mod tests {
    use rmcp::model::NumberOrString;

    use super::*;

    fn update(token: i64, progress: f64, message: &str) -> ProgressNotificationParam {
        let mut update =
            ProgressNotificationParam::new(ProgressToken(NumberOrString::Number(token)), progress);
        update.message = Some(message.to_string());
        update
    }

    #[test]
    fn an_update_before_its_claim_is_kept_a_moment_and_others_are_bounded() {
        let routes = ProgressRoutes::default();
        routes.deliver(update(7, 1.0, "early"));
        for n in 0..100 {
            routes.deliver(update(1000 + n, 1.0, "nobody's"));
        }
        routes.deliver(update(8, 1.0, "early too"));
        assert_eq!(routes.routes().unclaimed.len(), UNCLAIMED, "bounded");
        let (sink, mut got) = mpsc::channel(8);
        let claimed = routes.claim(ProgressToken(NumberOrString::Number(8)), sink);
        routes.deliver(update(8, 2.0, &"x".repeat(5_000)));
        assert_eq!(
            got.try_recv().unwrap().message.as_deref(),
            Some("early too")
        );
        let long = got.try_recv().unwrap();
        assert_eq!(long.progress, 2.0);
        assert_eq!(long.message.map(|m| m.len()), Some(MAX_MESSAGE_CHARS));
        drop(claimed);
        routes.deliver(update(8, 3.0, "late"));
        assert!(got.try_recv().is_err(), "a call that ended hears no more");
    }
}
