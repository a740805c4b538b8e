//! `switchboard conformance-client URL`: the entry point the official MCP client conformance
//! suite runs, one scenario per process (`MCP_CONFORMANCE_SCENARIO`). It drives the engine's own
//! session layer, so what the suite checks is what every connector gets. Its authorization
//! scenarios sign in with the same flow `auth login` runs; the browser is played headlessly
//! (the suite's authorization server approves at once and redirects straight back).

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use switchboard::connector::{
    ConnectorSpec, DEFAULT_CALL_TIMEOUT, DEFAULT_CONNECT_TIMEOUT, Endpoint, Source,
};
use switchboard::session::{Elicitation, Session, SessionError, http_client};
use switchboard::signin::{self, ClientIdentity, SIGN_IN_TIMEOUT, TokenStore};

/// Where the suite's authorization server lets a client ID metadata document be (never
/// fetched: the suite only checks the client uses it when the server supports them).
const CLIENT_METADATA_URL: &str = "https://conformance-test.local/client-metadata.json";
/// Sign-ins one scenario may take (the first, then step-ups), as the spec's bounded retries.
const MAX_SIGN_INS: usize = 3;

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
    let http = http_client()?;
    let tokens_dir = tempfile::tempdir()?;
    let mut auth = Auth {
        store: TokenStore::in_file(tokens_dir.path().join("tokens.json")),
        identity: ClientIdentity {
            client_id: context["client_id"].as_str().map(str::to_string),
            client_secret: context["client_secret"].as_str().map(str::to_string),
            metadata_url: Some(CLIENT_METADATA_URL.into()),
            scopes: Vec::new(),
        },
        sign_ins: 0,
        http: http.clone(),
    };
    let mut session = auth.open(&spec).await?;
    let calls = planned_calls(&session, &context);
    for (tool, arguments) in calls {
        let mut outcome = session.caller().call(&tool, Some(arguments.clone())).await;
        // A server that wants more scope for this call: sign in again with it, and retry.
        while let Err(SessionError::NeedsSignIn(challenge)) = &outcome {
            if auth.sign_ins >= MAX_SIGN_INS {
                break;
            }
            auth.sign_in(url, Some(challenge)).await?;
            session.close().await;
            session = auth.open(&spec).await?;
            outcome = session.caller().call(&tool, Some(arguments.clone())).await;
        }
        match outcome {
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

/// The scenario's sign-ins: the tokens, who the client is, the scopes asked so far.
struct Auth {
    store: std::sync::Arc<TokenStore>,
    identity: ClientIdentity,
    sign_ins: usize,
    http: reqwest::Client,
}

impl Auth {
    /// Opens the session, signing in (at most [`MAX_SIGN_INS`] times) while the server asks.
    async fn open(&mut self, spec: &ConnectorSpec) -> Result<Session> {
        let Endpoint::Http { url, .. } = &spec.endpoint else {
            bail!("the conformance client speaks HTTP");
        };
        loop {
            // Standing in for a user who accepts what a form proposes (scenarios expect it).
            let opened = Session::open_with(
                spec,
                &self.http,
                None,
                Elicitation::AcceptDefaults,
                Some(&self.store),
            )
            .await;
            match opened {
                Err(
                    SessionError::NeedsSignIn(challenge) | SessionError::Unauthorized(challenge),
                ) if self.sign_ins < MAX_SIGN_INS => {
                    let challenge = challenge.starts_with("Bearer").then_some(challenge);
                    self.sign_in(url, challenge.as_deref()).await?;
                }
                opened => return opened.with_context(|| format!("cannot connect to {url}")),
            }
        }
    }

    /// One sign-in, the browser played headlessly, asking for every scope challenged so far.
    async fn sign_in(&mut self, url: &str, challenge: Option<&str>) -> Result<()> {
        self.sign_ins += 1;
        for scope in challenge.map(signin::challenged_scopes).unwrap_or_default() {
            if !self.identity.scopes.contains(&scope) {
                self.identity.scopes.push(scope);
            }
        }
        let started = signin::begin(
            "conformance",
            url,
            &self.identity,
            &self.store,
            &self.http,
            challenge,
        )
        .await
        .context("cannot start the sign-in")?;
        let page = started.url().to_string();
        let (finished, browsed) = tokio::join!(started.finish(SIGN_IN_TIMEOUT), browse(&page));
        browsed?;
        finished.context("the sign-in did not complete")
    }
}

/// The user's browser: opens the page and follows its redirect back, to the redirect listener.
async fn browse(page: &str) -> Result<()> {
    let browser = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let approved = browser.get(page).send().await?;
    let back = approved
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .with_context(|| format!("the authorization page answered {}", approved.status()))?
        .to_string();
    browser.get(&back).send().await?;
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
