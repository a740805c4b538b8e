//! What a session answers when a server asks its user a question (`elicitation/create`, or an
//! elicitation inside an `input_required` result) and no caller takes it (see
//! [`super::questions`]): it declines; a caller that stands for a user can accept the server's
//! proposed defaults instead.

use rmcp::model::{ElicitRequestParams, ElicitResult, ElicitationAction};
use serde_json::{Map, Value};

/// How a session answers a server's form questions.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Elicitation {
    /// Decline every question, and offer none (nobody is there to answer).
    #[default]
    Decline,
    /// Offer form questions, each passed to the caller whose call it is for where that caller
    /// takes questions; declined otherwise.
    Relay,
    /// Accept with the defaults the form proposes, when it proposes one for every required
    /// field; decline otherwise. URL questions (sign in elsewhere) are always declined.
    AcceptDefaults,
}

impl Elicitation {
    pub(super) fn answer(self, params: &ElicitRequestParams) -> ElicitResult {
        let ElicitRequestParams::FormElicitationParams {
            requested_schema, ..
        } = params
        else {
            return ElicitResult::new(ElicitationAction::Decline);
        };
        if self != Self::AcceptDefaults {
            return ElicitResult::new(ElicitationAction::Decline);
        }
        let schema = serde_json::to_value(requested_schema).unwrap_or_default();
        match with_defaults(&schema, Map::new()) {
            Some(content) => {
                ElicitResult::new(ElicitationAction::Accept).with_content(Value::Object(content))
            }
            None => ElicitResult::new(ElicitationAction::Decline),
        }
    }
}

/// `content` with every field it omits filled from the schema's defaults (SEP-1034), or `None`
/// when a required field has neither a value nor a default.
pub fn with_defaults(
    schema: &Value,
    mut content: Map<String, Value>,
) -> Option<Map<String, Value>> {
    let properties = schema.get("properties").and_then(Value::as_object);
    for (name, property) in properties.into_iter().flatten() {
        if let Some(default) = property.get("default")
            && !content.contains_key(name)
        {
            content.insert(name.clone(), default.clone());
        }
    }
    let required = schema.get("required").and_then(Value::as_array);
    required
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .all(|name| content.contains_key(name))
        .then_some(content)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn omitted_fields_take_their_defaults_and_given_ones_stay() {
        let schema = json!({
            "type": "object",
            "properties": {
                "name": {"type": "string", "default": "John Doe"},
                "age": {"type": "integer", "default": 30},
                "note": {"type": "string"}
            },
            "required": ["name"]
        });
        let given = Map::from_iter([("age".to_string(), json!(41))]);
        let filled = with_defaults(&schema, given).unwrap();
        assert_eq!(
            Value::Object(filled),
            json!({"name": "John Doe", "age": 41})
        );
    }

    #[test]
    fn a_required_field_without_value_or_default_refuses() {
        let schema = json!({
            "type": "object",
            "properties": {"token": {"type": "string"}},
            "required": ["token"]
        });
        assert_eq!(with_defaults(&schema, Map::new()), None);
    }
}
