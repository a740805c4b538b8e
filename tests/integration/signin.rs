//! Signing in to OAuth-protected servers (MCP authorization).

use switchboard::health::Health;
use switchboard_fixture::{Fixture, Knobs};

use crate::engine::{spec_at, start, state};
use crate::support::wait_for_watch;

#[tokio::test]
async fn an_oauth_challenge_reads_needs_sign_in_and_a_refused_key_unauthorized() {
    let protected = Fixture::start(Knobs {
        oauth: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let refusing = Fixture::start(Knobs {
        unauthorized: true,
        ..Knobs::default()
    })
    .await
    .unwrap();
    let (engine, _desired) = start(vec![
        spec_at("notes", protected.url()),
        spec_at("wiki", refusing.url()),
    ]);
    let settled = wait_for_watch(engine.subscribe(), "both refused", |s| {
        state(s, "notes") == Some(Health::NeedsSignIn)
            && state(s, "wiki") == Some(Health::Unauthorized)
    })
    .await;
    let notes = settled.connectors.iter().find(|c| c.id == "notes").unwrap();
    let reason = notes.reason.as_deref().unwrap_or_default();
    assert!(
        reason.contains("sign-in") && reason.contains("resource_metadata"),
        "the reason says why and where to sign in: {reason}"
    );
    assert_eq!(
        serde_json::to_value(notes.state).unwrap(),
        "needs-sign-in",
        "the state's wire name"
    );
    assert_eq!(
        settled
            .catalog
            .iter()
            .filter(|(_, tool)| tool.connector == "notes")
            .count(),
        0,
        "a connector that needs sign-in lists no tools"
    );
}
