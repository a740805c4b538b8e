//! `switchboard conformance-client URL`: the entry point the official MCP client conformance
//! suite runs, one scenario per process (`MCP_CONFORMANCE_SCENARIO`). It drives the engine's own
//! session layer, so what the suite checks is what every connector gets.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use switchboard::connector::{
    ConnectorSpec, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoint, Source,
};
use switchboard::session::{Elicitation, Session, SessionError, http_client};

/// The tool whose schema `json-schema-2020-12-preservation` wants echoed, and the echo tool.
const RICH_SCHEMA_TOOL: &str = "json_schema_2020_12_tool";
const ECHO_TOOL: &str = "json_schema_echo";

pub async fn run(url: &str) -> Result<()> {
    let scenario = std::env::var("MCP_CONFORMANCE_SCENARIO").unwrap_or_default();
    let context: Value = match std::env::var("MCP_CONFORMANCE_CONTEXT") {
        Ok(raw) => serde_json::from_str(&raw).context("MCP_CONFORMANCE_CONTEXT is not JSON")?,
        Err(_) => Value::Null,
    };
    tracing::info!(scenario, url, "conformance client");
    let spec = ConnectorSpec {
        id: "conformance".into(),
        endpoint: Endpoint::Http {
            url: url.into(),
            kind: None,
            headers: Default::default(),
        },
        enabled: true,
        connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        call_timeout: DEFAULT_CALL_TIMEOUT,
        source: Source::Registry,
        missing_credential: None,
        info: Default::default(),
    };
    // Standing in for a user who accepts what a form proposes (the scenarios expect an answer).
    let session = Session::open_with(
        &spec,
        &http_client()?,
        None,
        Elicitation::AcceptDefaults,
        None,
    )
    .await
    .with_context(|| format!("cannot connect to {url}"))?;
    let calls = planned_calls(&session, &context);
    let caller = session.caller();
    for (tool, arguments) in calls {
        match caller.call(&tool, Some(arguments)).await {
            Ok(result) => tracing::info!(tool, ?result, "called"),
            // The server's own answer to the call: the session is fine.
            Err(error @ SessionError::Server { .. }) => errln!("{tool}: {error}"),
            Err(error) => {
                session.close().await;
                bail!("calling {tool}: {error}");
            }
        }
    }
    session.close().await;
    Ok(())
}

/// The calls a scenario wants: those its context lists; for the schema scenario, the rich
/// schema echoed back verbatim; otherwise every listed tool, with arguments its schema accepts.
fn planned_calls(session: &Session, context: &Value) -> Vec<(String, Map<String, Value>)> {
    if let Some(calls) = context.get("toolCalls").and_then(Value::as_array) {
        return calls
            .iter()
            .filter_map(|call| {
                let name = call.get("name")?.as_str()?.to_string();
                let arguments = call.get("arguments")?.as_object()?.clone();
                Some((name, arguments))
            })
            .collect();
    }
    let tool = |name: &str| session.tools.iter().find(|t| t.name == name);
    if let (Some(rich), Some(_)) = (tool(RICH_SCHEMA_TOOL), tool(ECHO_TOOL)) {
        let schema = Value::Object((*rich.input_schema).clone());
        return vec![(
            ECHO_TOOL.into(),
            Map::from_iter([("schema".into(), schema)]),
        )];
    }
    session
        .tools
        .iter()
        .map(|tool| {
            let schema = Value::Object((*tool.input_schema).clone());
            (tool.name.to_string(), sample_arguments(&schema))
        })
        .collect()
}

/// Arguments that satisfy a tool's input schema: every required property, with a plain value of
/// its type.
fn sample_arguments(schema: &Value) -> Map<String, Value> {
    let properties = schema.get("properties").and_then(Value::as_object);
    let required = schema.get("required").and_then(Value::as_array);
    let mut arguments = Map::new();
    for name in required.into_iter().flatten().filter_map(Value::as_str) {
        let property = properties.and_then(|p| p.get(name)).unwrap_or(&Value::Null);
        arguments.insert(name.to_string(), sample_value(property));
    }
    arguments
}

fn sample_value(schema: &Value) -> Value {
    match schema.get("type").and_then(Value::as_str) {
        Some("number" | "integer") => json!(1),
        Some("boolean") => json!(true),
        Some("array") => json!([]),
        Some("object") => Value::Object(sample_arguments(schema)),
        _ => json!("conformance"),
    }
}
