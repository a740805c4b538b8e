//! Reading and editing a client's server list in place, through a concrete syntax tree
//! (`jsonc-parser`'s CST): comments, trailing commas, indentation and the order of everything
//! not edited stay as the user wrote them. (Zed's settings are JSON with comments; the others
//! are plain JSON, which is a subset.)

use std::path::Path;

use jsonc_parser::ParseOptions;
use jsonc_parser::cst::{CstInputValue, CstObject, CstRootNode};
use serde_json::Value;

use super::ClientError;
use crate::import::{MAX_DEPTH, within_depth};

/// Every entry under `key` (none when there is no `key`), by name, in file order.
pub fn entries(text: &str, key: &str, path: &Path) -> Result<Vec<(String, Value)>, ClientError> {
    let root = parse(text, path)?;
    let Some(object) = root.object_value() else {
        return Err(unusable(path, "is not a JSON object"));
    };
    let Some(servers) = servers(&object, key, path)? else {
        return Ok(Vec::new());
    };
    Ok(servers
        .properties()
        .into_iter()
        .filter_map(|prop| {
            let name = prop.decoded_name()?;
            let value = prop.value()?.to_serde_value()?;
            Some((name, value))
        })
        .collect())
}

/// `text` with `key.name` set to `value` (added at the end if new; removed with `None`) and
/// each of `remove` taken out; everything else as it was.
pub fn edit(
    text: &str,
    key: &str,
    path: &Path,
    name: &str,
    value: Option<&Value>,
    remove: &[String],
) -> Result<String, ClientError> {
    let root = parse(text, path)?;
    if root.value().is_some() && root.object_value().is_none() {
        return Err(unusable(path, "is not a JSON object"));
    }
    let object = root.object_value_or_set();
    let servers = match servers(&object, key, path)? {
        Some(servers) => servers,
        None if value.is_none() => return Ok(text.to_string()),
        None => object.object_value_or_set(key),
    };
    match (servers.get(name), value) {
        (Some(prop), Some(value)) => prop.set_value(input(value)),
        (None, Some(value)) => {
            servers.append(name, input(value));
        }
        (Some(prop), None) => prop.remove(),
        (None, None) => {}
    }
    for other in remove {
        if let Some(prop) = servers.get(other) {
            prop.remove();
        }
    }
    let mut out = root.to_string();
    if text.ends_with('\n') && !out.ends_with('\n') {
        out.push('\n');
    }
    Ok(out)
}

fn parse(text: &str, path: &Path) -> Result<CstRootNode, ClientError> {
    within_depth(text, MAX_DEPTH).map_err(|why| unusable(path, &why))?;
    CstRootNode::parse(text, &ParseOptions::default())
        .map_err(|e| unusable(path, &format!("does not parse: {e}")))
}

/// The object under `key`: `None` if there is none, an error if it is something else.
fn servers(object: &CstObject, key: &str, path: &Path) -> Result<Option<CstObject>, ClientError> {
    match object.get(key) {
        None => Ok(None),
        Some(prop) => prop
            .object_value()
            .map(Some)
            .ok_or_else(|| unusable(path, &format!("{key:?} is not an object"))),
    }
}

fn input(value: &Value) -> CstInputValue {
    match value {
        Value::Null => CstInputValue::Null,
        Value::Bool(b) => CstInputValue::Bool(*b),
        Value::Number(n) => CstInputValue::Number(n.to_string()),
        Value::String(s) => CstInputValue::String(s.clone()),
        Value::Array(items) => CstInputValue::Array(items.iter().map(input).collect()),
        Value::Object(map) => {
            CstInputValue::Object(map.iter().map(|(k, v)| (k.clone(), input(v))).collect())
        }
    }
}

fn unusable(path: &Path, reason: &str) -> ClientError {
    ClientError::Unusable {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ZED: &str = r#"// Zed settings
{
  "theme": "One Dark", // the user's theme
  "context_servers": {
    // my own server
    "files": { "source": "custom", "command": "mcp-files", "args": [] },
  },
}
"#;

    #[test]
    fn an_entry_goes_in_and_comments_and_trailing_commas_stay() {
        let path = Path::new("settings.json");
        let entry = serde_json::json!({"source": "custom", "command": "/bin/switchboard", "args": ["serve"]});
        let edited = edit(
            ZED,
            "context_servers",
            path,
            "switchboard",
            Some(&entry),
            &[],
        )
        .unwrap();
        for kept in [
            "// Zed settings",
            "// the user's theme",
            "// my own server",
            "\"files\"",
        ] {
            assert!(edited.contains(kept), "{kept} kept:\n{edited}");
        }
        let names: Vec<String> = entries(&edited, "context_servers", path)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect();
        assert_eq!(names, ["files", "switchboard"]);
        let back = edit(&edited, "context_servers", path, "switchboard", None, &[]).unwrap();
        assert!(!back.contains("switchboard"), "{back}");
        assert!(back.contains("// my own server"), "{back}");
    }

    #[test]
    fn a_missing_list_is_made_and_what_is_not_an_object_is_refused() {
        let path = Path::new("c.json");
        let entry = serde_json::json!({"command": "x"});
        let made = edit("{\"a\": 1}\n", "mcpServers", path, "s", Some(&entry), &[]).unwrap();
        let value: Value = serde_json::from_str(&made).unwrap();
        assert_eq!(value["a"], 1);
        assert_eq!(value["mcpServers"]["s"]["command"], "x");
        let refused = edit("[1]", "mcpServers", path, "s", Some(&entry), &[]).unwrap_err();
        assert!(
            refused.to_string().contains("not a JSON object"),
            "{refused}"
        );
        let refused = entries("{\"mcpServers\": 3}", "mcpServers", path).unwrap_err();
        assert!(
            refused
                .to_string()
                .contains("\"mcpServers\" is not an object"),
            "{refused}"
        );
        let deep = format!("{{\"a\": {}{}}}", "[".repeat(10_000), "]".repeat(10_000));
        assert!(
            entries(&deep, "mcpServers", path).is_err(),
            "too deep: refused, no overflow"
        );
    }
}
