//! A server's questions (form elicitation) during a call reach the AI client that made it, when
//! that client declared it can answer, through `serve` and the daemon's socket and through the
//! HTTP endpoint; every other caller's server hears a decline, never a hang.

use serde_json::Value;
use switchboard_fixture::Knobs;

use crate::sdk::{Sdk, SdkClient, Target};
use crate::serve::healthy_fleet_with;

const QUESTION: &str = "Proceed with the deployment?";

/// What the fixture's tool echoed of the answer it got to its question.
fn asked(report: &Value) -> Value {
    let text = report["text"].as_str().unwrap_or_default();
    let echo: Value = serde_json::from_str(text).unwrap_or_else(|e| panic!("{e}: {report}"));
    echo["asked"].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_servers_question_reaches_the_client_that_can_answer_and_its_answer_the_server() {
    let knobs = Knobs {
        tools: 1,
        ask: Some(QUESTION.into()),
        // The fixture can ask only on an initialize-era session.
        legacy_only: true,
        ..Knobs::default()
    };
    let (_fixture, tmp, daemon) = healthy_fleet_with(knobs, &["--http", "127.0.0.1:0"]).await;
    let url = daemon.mcp.clone().expect("sync printed its MCP endpoint");
    let token = std::fs::read_to_string(tmp.path().join("endpoint-token")).unwrap();
    let answering = ["ask", "fx_tool_000", "{}", "ship it"];
    // Through serve and the daemon's socket, and through the HTTP endpoint in the daemon; an
    // initialize-era client is asked on its session, a 2026-07-28 one with `input_required`
    // (it has no session), its retry carrying the answer to the call still waiting upstream.
    let targets = [Target::Serve(tmp.path()), Target::Http(&url, Some(&token))];
    for sdk in [Sdk::PythonLegacy, Sdk::PythonAuto] {
        for target in targets {
            let client = SdkClient::start(sdk, target, &answering);
            let report = client.next();
            let through = match target {
                Target::Serve(_) => "serve",
                Target::Http(..) => "the HTTP endpoint",
            };
            let context = format!("{sdk:?} through {through}: {report}");
            assert_eq!(
                report["questions"],
                serde_json::json!([QUESTION]),
                "{context}"
            );
            assert_eq!(report["is_error"], false, "{context}");
            let answer = asked(&report);
            assert_eq!(answer["action"], "accept", "{context}");
            assert_eq!(answer["content"]["answer"], "ship it", "{context}");
            client.finish().await;
        }
    }
    // Clients that declared no elicitation, of either era: the server is declined at once and
    // the call answers.
    for sdk in [Sdk::PythonLegacy, Sdk::PythonAuto] {
        let scenario = ["list-call", "fx_tool_000", "{}"];
        let client = SdkClient::start(sdk, Target::Serve(tmp.path()), &scenario);
        let report = client.next();
        assert_eq!(asked(&report)["action"], "decline", "{sdk:?}: {report}");
        client.finish().await;
    }
}
