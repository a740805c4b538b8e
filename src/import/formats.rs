//! The config shapes of other MCP clients, turned into registry entries.
//!
//! Each shape is first rewritten into the registry's own entry shape and then deserialized as a
//! [`ServerEntry`], so imported servers pass exactly the validation hand-written ones do.

use std::path::Path;

use serde_json::{Map, Value};

use super::{Candidate, ClientKind, Found, Unusable};
use crate::registry::model::{ServerEntry, ServerName};

/// One server entry of a client config, by name, rewritten into the registry's entry shape or
/// with the reason it cannot be.
type RawEntry = (String, Result<Map<String, Value>, String>);

/// Largest client config read; real ones are a few kilobytes (Zed's settings a few dozen).
pub const MAX_CONFIG_BYTES: u64 = 8 * 1024 * 1024;

/// Deepest nesting of arrays and objects read: serde_json's own limit. `json5` has none and
/// recurses, so 30,000 `[` overflowed the stack.
pub const MAX_DEPTH: usize = 128;

/// Checks, before parsing, that arrays and objects in `text` nest at most `max` deep (strings
/// and comments skipped, as JSON5 writes them).
pub fn within_depth(text: &str, max: usize) -> Result<(), String> {
    let mut depth = 0usize;
    let mut line = 1;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\n' => line += 1,
            '"' | '\'' => {
                while let Some(inner) = chars.next() {
                    match inner {
                        '\\' => {
                            chars.next();
                        }
                        '\n' => line += 1,
                        _ if inner == c => break,
                        _ => {}
                    }
                }
            }
            // A line comment: skipped to its end (or the text's).
            '/' if chars.peek() == Some(&'/') && chars.by_ref().any(|c| c == '\n') => line += 1,
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut star = false;
                for inner in chars.by_ref() {
                    match inner {
                        '/' if star => break,
                        '\n' => line += 1,
                        _ => {}
                    }
                    star = inner == '*';
                }
            }
            '[' | '{' => {
                depth += 1;
                if depth > max {
                    return Err(format!("line {line}: nested more than {max} levels deep"));
                }
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Parses `text` (JSON with comments and trailing commas, as VS Code and Zed write) from `path`.
/// `kind` says which client wrote it; `None` guesses from the content.
pub fn parse(text: &str, path: &Path, kind: Option<ClientKind>) -> Result<Found, String> {
    within_depth(text, MAX_DEPTH)?;
    let root: Value = json5::from_str(text).map_err(|e| match e.position() {
        Some(p) => format!("line {} column {}: {e}", p.line + 1, p.column + 1),
        None => e.to_string(),
    })?;
    let Value::Object(root) = root else {
        return Err("expected a JSON object at the top level".into());
    };
    let kind = match kind {
        Some(kind) => kind,
        None => guess(&root).ok_or(
            "found none of \"mcpServers\", \"servers\" or \"context_servers\"; \
             not an MCP client config Switchboard knows",
        )?,
    };
    let mut found = Found::default();
    let entries: Vec<RawEntry> = match kind {
        ClientKind::Claude | ClientKind::Cursor | ClientKind::Windsurf => {
            object_entries(&root, "mcpServers", |e| {
                Ok(rename(e, &[("serverUrl", "url")]))
            })
        }
        ClientKind::VsCode => {
            let servers = root
                .get("servers")
                .or_else(|| root.get("mcp").and_then(|m| m.get("servers")));
            match servers.and_then(Value::as_object) {
                Some(map) => map
                    .iter()
                    .map(|(name, v)| (name.clone(), as_object(v).cloned()))
                    .collect(),
                None => Vec::new(),
            }
        }
        ClientKind::Zed => object_entries(&root, "context_servers", zed_entry),
        ClientKind::Cortex => cortex_entries(&root),
    };
    for (raw_name, fields) in entries {
        match fields.and_then(|f| candidate(&raw_name, f, path)) {
            Ok(candidate) => found.candidates.push(candidate),
            Err(reason) => found.unusable.push(Unusable {
                name: raw_name,
                origin: path.to_path_buf(),
                reason,
            }),
        }
    }
    Ok(found)
}

fn guess(root: &Map<String, Value>) -> Option<ClientKind> {
    if root.contains_key("mcpServers") {
        // Windsurf differs only in `serverUrl`, which the shared reader accepts anyway.
        Some(ClientKind::Claude)
    } else if root.contains_key("context_servers") {
        Some(ClientKind::Zed)
    } else {
        match root.get("servers") {
            Some(Value::Array(_)) => Some(ClientKind::Cortex),
            Some(Value::Object(_)) => Some(ClientKind::VsCode),
            _ => root
                .get("mcp")
                .and_then(|m| m.get("servers"))
                .map(|_| ClientKind::VsCode),
        }
    }
}

fn as_object(v: &Value) -> Result<&Map<String, Value>, String> {
    v.as_object()
        .ok_or_else(|| "entry is not a JSON object".to_string())
}

fn object_entries(
    root: &Map<String, Value>,
    key: &str,
    convert: impl Fn(&Map<String, Value>) -> Result<Map<String, Value>, String>,
) -> Vec<RawEntry> {
    root.get(key)
        .and_then(Value::as_object)
        .map(|map| {
            map.iter()
                .map(|(name, v)| (name.clone(), as_object(v).and_then(&convert)))
                .collect()
        })
        .unwrap_or_default()
}

fn rename(entry: &Map<String, Value>, pairs: &[(&str, &str)]) -> Map<String, Value> {
    let mut out = entry.clone();
    for (from, to) in pairs {
        if let Some(v) = out.remove(*from) {
            out.entry(to.to_string()).or_insert(v);
        }
    }
    out
}

/// Zed: `{"command": "npx", "args": […]}` (current), `{"command": {"path", "args", "env"}}`
/// (older), or `{"url", "headers"}`. Servers provided by Zed extensions have no command here.
fn zed_entry(entry: &Map<String, Value>) -> Result<Map<String, Value>, String> {
    let mut out = entry.clone();
    out.remove("source");
    out.remove("settings");
    if let Some(Value::Object(command)) = out.get("command").cloned() {
        out.remove("command");
        for (from, to) in [("path", "command"), ("args", "args"), ("env", "env")] {
            if let Some(v) = command.get(from) {
                out.insert(to.into(), v.clone());
            }
        }
    }
    if !out.contains_key("command") && !out.contains_key("url") {
        return Err("provided by a Zed extension (no command in settings.json); install it in Switchboard by hand".into());
    }
    Ok(out)
}

/// The replaced system's registry: `{"servers": [{name, transport, command, args, env, endpoint,
/// headers}]}`.
fn cortex_entries(root: &Map<String, Value>) -> Vec<RawEntry> {
    let Some(Value::Array(servers)) = root.get("servers") else {
        return Vec::new();
    };
    servers
        .iter()
        .enumerate()
        .map(|(i, server)| {
            let name = server
                .get("name")
                .and_then(Value::as_str)
                .map_or_else(|| format!("servers[{i}]"), str::to_string);
            let fields = as_object(server).and_then(|s| {
                let mut out = rename(s, &[("endpoint", "url")]);
                out.remove("name");
                let transport = out.remove("transport");
                let kind = match transport.as_ref().and_then(Value::as_str) {
                    None | Some("stdio") => None,
                    Some("http" | "streamableHttp") => Some("http"),
                    Some("sse") => Some("sse"),
                    Some(other) => return Err(format!("unknown transport {other:?}")),
                };
                if let Some(kind) = kind {
                    out.insert("type".into(), kind.into());
                }
                Ok(out)
            });
            (name, fields)
        })
        .collect()
}

/// Builds a validated candidate from fields in the registry's entry shape.
fn candidate(
    raw_name: &str,
    mut fields: Map<String, Value>,
    origin: &Path,
) -> Result<Candidate, String> {
    let mut notes = Vec::new();
    let name = if raw_name.contains('.') {
        let renamed = raw_name.replace('.', "-");
        notes.push(format!(
            "renamed from {raw_name:?}: '.' separates server and tool names"
        ));
        renamed
    } else {
        raw_name.to_string()
    };
    let name = ServerName::new(name).map_err(|invalid| invalid.reason)?;
    // Some clients mark switched-off servers `"disabled": true`.
    if let Some(Value::Bool(disabled)) = fields.remove("disabled") {
        fields.insert("enabled".into(), Value::Bool(!disabled));
    }
    if fields.get("type").and_then(Value::as_str) == Some("stdio") && fields.contains_key("command")
    {
        fields.remove("type");
    }
    let mut entry: ServerEntry =
        serde_json::from_value(Value::Object(fields)).map_err(|e| e.to_string())?;
    let secrets = secrets_in(&entry);
    let inputs = vscode_inputs_in(&entry);
    if !inputs.is_empty() {
        entry.enabled = false;
        notes.push(format!(
            "uses VS Code input {} that only VS Code can prompt for; imported disabled until you set it",
            inputs.join(", ")
        ));
    }
    Ok(Candidate {
        name,
        entry,
        origin: origin.to_path_buf(),
        secrets,
        notes,
    })
}

/// Names of env vars and headers that hold what looks like a literal secret.
pub fn secrets_in(entry: &ServerEntry) -> Vec<String> {
    use crate::credentials::looks_secret;
    use crate::registry::model::Launch;
    let literal = |value: &str| !value.is_empty() && !value.contains("${");
    let (prefix, map) = match &entry.launch {
        Launch::Stdio { env, .. } => ("env", env),
        Launch::Remote { headers, .. } => ("headers", headers),
    };
    map.iter()
        .filter(|(k, v)| looks_secret(k) && literal(v))
        .map(|(k, _)| format!("{prefix}.{k}"))
        .collect()
}

fn vscode_inputs_in(entry: &ServerEntry) -> Vec<String> {
    use crate::registry::model::Launch;
    let values: Vec<&String> = match &entry.launch {
        Launch::Stdio { env, args, .. } => env.values().chain(args.iter()).collect(),
        Launch::Remote { headers, url, .. } => headers.values().chain([url]).collect(),
    };
    let mut inputs: Vec<String> = values
        .iter()
        .flat_map(|v| v.match_indices("${input:").map(move |(i, _)| &v[i..]))
        .filter_map(|s| s.find('}').map(|end| s[..=end].to_string()))
        .collect();
    inputs.dedup();
    inputs
}
