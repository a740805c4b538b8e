//! The daemon's state in the shapes its clients read (serializable, secret-free): the overview
//! the tray, the window and `switchboard status` show, the tool list, registry entries and
//! import previews.

use serde::Serialize;
use serde_json::Value;

use crate::desired::ManifestView;
use crate::engine::{ConnectorStatus, EngineSnapshot};
use crate::health::{self, Overall};
use crate::import::{ImportPlan, PlanAction};
use crate::registry::RegistrySnapshot;

/// Everything the Connectors view shows; sent whole on every change (it is small).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Overview {
    pub connectors: Vec<ConnectorStatus>,
    pub overall: Overall,
    /// The tray's one-line summary ("7/8 healthy · wiki unauthorized").
    pub summary: String,
    pub manifest: Option<ManifestInfo>,
    /// The manifest chosen in the app (over `SWITCHBOARD_MANIFEST`), if any.
    pub manifest_setting: Option<String>,
    /// Set while `servers.json` does not parse: edits are kept, the file is not rewritten.
    pub registry_error: Option<String>,
    pub first_run: bool,
    /// What AI clients are served: the tools switched on, and what they cost a model's context.
    pub served: Served,
}

/// The tools served to AI clients, and about how many tokens of a model's context their
/// definitions take (a token per 4 bytes of JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Served {
    pub tools: usize,
    pub context_tokens: usize,
}

/// About how many tokens of a model's context a tool's definition takes.
fn context_tokens(tool: &rmcp::model::Tool) -> usize {
    serde_json::to_vec(tool)
        .map_or(0, |json| json.len())
        .div_ceil(4)
}

/// What [`Overview::served`] says.
pub fn served(engine: &EngineSnapshot, registry: &RegistrySnapshot) -> Served {
    let mut served = Served::default();
    for (_, entry) in engine.catalog.iter() {
        let disabled = registry.disabled_tools(&entry.connector);
        if !disabled.iter().any(|t| *t == *entry.tool.name) {
            served.tools += 1;
            served.context_tokens += context_tokens(&entry.tool);
        }
    }
    served
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ManifestInfo {
    pub connectors: usize,
    pub stale: Option<String>,
}

/// The overview; `served` is [`served`] of the same snapshots (passed in: it serializes every
/// tool, so the daemon computes it only when the served set changed).
pub fn overview(
    engine: &EngineSnapshot,
    registry: &RegistrySnapshot,
    manifest: Option<&ManifestView>,
    served: Served,
) -> Overview {
    Overview {
        overall: health::overall(&engine.connectors),
        summary: health::summary(&engine.connectors),
        connectors: engine.connectors.clone(),
        manifest: manifest.map(|m| ManifestInfo {
            connectors: m.connectors,
            stale: m.stale.clone(),
        }),
        manifest_setting: registry.manifest.clone(),
        registry_error: registry.file_error.as_ref().map(ToString::to_string),
        first_run: registry.servers.is_empty() && engine.connectors.is_empty(),
        served,
    }
}

/// A tool of a live connector, for `switchboard tools`, the "Call a tool" form and the
/// aggregated server (which reads it back off the wire).
#[derive(Debug, Clone, Serialize, serde::Deserialize)]
pub struct ToolView {
    /// `connector.tool`
    pub name: String,
    pub connector: String,
    /// Its name on its server.
    pub tool: String,
    pub description: Option<String>,
    /// The JSON Schema of its arguments, as its server gave it.
    pub input_schema: Value,
    /// The whole definition as its server gave it (what the aggregated server passes on).
    pub definition: rmcp::model::Tool,
    /// Whether AI clients are served it (the user may switch tools off).
    #[serde(default = "served_by_default")]
    pub enabled: bool,
    /// What its definition costs a model's context: about a token per 4 bytes of its JSON.
    #[serde(default)]
    pub context_tokens: usize,
}

fn served_by_default() -> bool {
    true
}

pub fn tools(engine: &EngineSnapshot, registry: &RegistrySnapshot) -> Vec<ToolView> {
    engine
        .catalog
        .iter()
        .map(|(name, entry)| {
            let tool = entry.tool.name.to_string();
            ToolView {
                name: name.to_string(),
                connector: entry.connector.to_string(),
                enabled: !registry.disabled_tools(&entry.connector).contains(&tool),
                tool,
                description: entry.tool.description.as_ref().map(ToString::to_string),
                input_schema: Value::Object((*entry.tool.input_schema).clone()),
                definition: entry.tool.clone(),
                context_tokens: context_tokens(&entry.tool),
            }
        })
        .collect()
}

/// One registry server for the Registry view: its entry in the `mcpServers` shape, with header
/// and environment values redacted.
#[derive(Debug, Clone, Serialize)]
pub struct RegistryEntry {
    pub name: String,
    pub transport: &'static str,
    pub enabled: bool,
    pub entry: Value,
}

pub fn registry_entries(registry: &RegistrySnapshot) -> Vec<RegistryEntry> {
    registry
        .servers
        .iter()
        .map(|(name, entry)| RegistryEntry {
            name: name.to_string(),
            transport: entry.launch.transport(),
            enabled: entry.enabled,
            entry: serde_json::to_value(entry.redacted()).unwrap_or_default(),
        })
        .collect()
}

/// One line of an import preview.
#[derive(Debug, Clone, Serialize)]
pub struct ImportItem {
    pub name: String,
    pub origin: String,
    /// `add`, `unchanged`, `conflict` or `invalid`.
    pub action: &'static str,
    /// What will be added (redacted), or why it will not be.
    pub detail: Value,
    pub secrets: Vec<String>,
    pub notes: Vec<String>,
}

pub fn import_items(plan: &ImportPlan) -> Vec<ImportItem> {
    plan.items
        .iter()
        .map(|item| {
            let (action, detail) = match &item.action {
                PlanAction::Add(entry) => (
                    "add",
                    serde_json::to_value(entry.redacted()).unwrap_or_default(),
                ),
                PlanAction::Unchanged => ("unchanged", Value::Null),
                PlanAction::Conflict(why) => ("conflict", Value::String(why.clone())),
                PlanAction::Invalid(why) => ("invalid", Value::String(why.clone())),
            };
            ImportItem {
                name: item.name.clone(),
                origin: item.origin.display().to_string(),
                action,
                detail,
                secrets: item.secrets.clone(),
                notes: item.notes.clone(),
            }
        })
        .collect()
}
