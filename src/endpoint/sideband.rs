//! What an AI client hears of its call besides the answer: the server's progress, under the
//! client's own token, and the server's questions, put to the client when it can answer them.

use rmcp::RoleServer;
use rmcp::model::{ElicitResult, ElicitationAction, ProgressNotificationParam, ProgressToken};
use rmcp::service::{Peer, RequestContext};

use crate::session::Question;

/// Whether the calling client can be asked a server's form question: it declared elicitation
/// (an empty declaration means forms) on a session. A 2026-07-28 request has no session to ask
/// on: it is asked with `input_required` instead (see `rounds`).
pub(super) fn can_answer(context: &RequestContext<RoleServer>) -> bool {
    let Some(info) = context.peer.peer_info() else {
        return false;
    };
    info.capabilities
        .elicitation
        .as_ref()
        .is_some_and(|asks| asks.form.is_some() || asks.url.is_none())
}

/// Puts a server's question to the client and hands back its answer; a client that fails to
/// answer has declined.
pub(super) async fn relay(peer: Peer<RoleServer>, question: Question) {
    let answer = match peer.create_elicitation(question.asked).await {
        Ok(answer) => answer,
        Err(error) => {
            tracing::debug!(%error, "a client did not answer a server's question");
            ElicitResult::new(ElicitationAction::Decline)
        }
    };
    let _ = question.answer.send(answer);
}

/// Tells the calling client how far its call is, under the token it chose.
pub(super) async fn notify_progress(
    peer: &Peer<RoleServer>,
    token: Option<ProgressToken>,
    update: crate::session::Progress,
) {
    let Some(token) = token else { return };
    let mut notification = ProgressNotificationParam::new(token, update.progress);
    notification.total = update.total;
    notification.message = update.message;
    if let Err(error) = peer.notify_progress(notification).await {
        tracing::debug!(%error, "a client's progress update could not be sent");
    }
}
