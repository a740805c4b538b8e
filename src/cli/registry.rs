//! `registry …`: listing, adding, removing, toggling, importing and exporting servers, each
//! through the registry's own door (journaled, locked), whether or not a daemon runs.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use switchboard::import::{self, ImportSource, Places, PlanAction};
use switchboard::registry::model::Launch;
use switchboard::registry::{Registry, RegistryOptions, RegistrySnapshot};

use super::{ExportFormat, RegistryCommand};

/// `tools enable|disable CONNECTOR.TOOL`: one edit through the registry, which the daemon
/// (and every `serve` relaying to it) follows.
pub async fn set_tool_enabled(dir: PathBuf, qualified: &str, enabled: bool) -> Result<()> {
    let (connector, tool) = switchboard::catalog::split_qualified(qualified)
        .with_context(|| format!("{qualified:?} is not CONNECTOR.TOOL"))?;
    let registry = open(&dir).await?;
    registry
        .apply(vec![switchboard::registry::Edit::SetToolEnabled {
            connector: connector.to_string(),
            tool: tool.to_string(),
            enabled,
        }])
        .await?;
    if enabled {
        outln!("serving {qualified} to AI clients again");
    } else {
        outln!("no longer serving {qualified} to AI clients (kept in servers.json)");
    }
    close(registry).await;
    Ok(())
}

/// The registry for one command, then exit: nothing to watch for.
async fn open(dir: &std::path::Path) -> Result<Registry> {
    Ok(Registry::open(RegistryOptions {
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await?)
}

/// Returns once servers.json holds the edits, so the next reader sees them in the file too. An
/// edit acknowledged before is already in servers.journal (durable, and replayed by every
/// reader): a rewrite that fails now (a full disk) does not undo it, so it is no failure of the
/// command, which would invite a retry that finds the name taken.
async fn close(registry: Registry) {
    if let Err(error) = registry.close().await {
        errln!(
            "warning: the edit is kept in servers.journal, but servers.json could not be \
             rewritten ({error}); the next write will"
        );
    }
}

pub async fn run(dir: PathBuf, command: RegistryCommand) -> Result<()> {
    let registry = open(&dir).await?;
    match command {
        RegistryCommand::List { json } => print_list(&registry.snapshot(), json)?,
        RegistryCommand::Add(args) => {
            let name = args.name.clone();
            let entry = args.entry();
            let described = describe(&entry.redacted().launch);
            registry.add(name.clone(), entry).await?;
            outln!("added {name} ({described})");
        }
        RegistryCommand::Remove { name } => {
            registry.remove(name.clone()).await?;
            outln!("removed {name}");
        }
        RegistryCommand::Enable { name } => {
            registry.set_enabled(name.clone(), true).await?;
            outln!("enabled {name}");
        }
        RegistryCommand::Disable { name } => {
            registry.set_enabled(name.clone(), false).await?;
            outln!("disabled {name}");
        }
        RegistryCommand::Import { from, dry_run } => import(&registry, from, dry_run).await?,
        RegistryCommand::Export {
            format: ExportFormat::Claude,
        } => {
            // Pretty JSON is safe as it is: serde escapes every control character in strings,
            // and its own line breaks are meant.
            let export = serde_json::to_string_pretty(&export_claude(&registry.snapshot()))?;
            for line in export.lines() {
                outln!("{line}");
            }
        }
    }
    close(registry).await;
    Ok(())
}

fn describe(launch: &Launch) -> String {
    match launch {
        Launch::Stdio { command, args, .. } => {
            format!(
                "stdio: {}",
                [command.as_str()]
                    .into_iter()
                    .chain(args.iter().map(String::as_str))
                    .collect::<Vec<_>>()
                    .join(" ")
            )
        }
        Launch::Remote { url, kind, .. } => format!("{}: {url}", kind.as_str()),
    }
}

fn print_list(snapshot: &RegistrySnapshot, json: bool) -> Result<()> {
    if json {
        let rows: Vec<Value> = snapshot
            .servers
            .iter()
            .map(|(name, entry)| {
                let mut row = json!({
                    "name": name,
                    "enabled": entry.enabled,
                    "transport": entry.launch.transport(),
                    "tags": entry.tags,
                });
                // Values of env and headers may be secrets: only their names are shown.
                match &entry.launch {
                    Launch::Stdio {
                        command,
                        args,
                        env,
                        cwd,
                    } => {
                        row["command"] = json!(command);
                        row["args"] = json!(switchboard::credentials::redacted_args(args));
                        row["env"] = json!(env.keys().collect::<Vec<_>>());
                        row["cwd"] = json!(cwd);
                    }
                    Launch::Remote { url, headers, .. } => {
                        row["url"] = json!(switchboard::credentials::redacted_url(url));
                        row["headers"] = json!(headers.keys().collect::<Vec<_>>());
                    }
                }
                row
            })
            .collect();
        outln!("{}", Value::Array(rows));
        return Ok(());
    }
    if snapshot.servers.is_empty() {
        outln!("no servers yet: `switchboard registry add` or `switchboard registry import`");
        return Ok(());
    }
    let width = snapshot
        .servers
        .keys()
        .map(|n| n.as_str().chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    outln!("{:width$}  {:8}  TARGET", "NAME", "STATE");
    for (name, entry) in &snapshot.servers {
        let state = if entry.enabled { "enabled" } else { "disabled" };
        outln!(
            "{:width$}  {state:8}  {}",
            name.as_str(),
            describe(&entry.redacted().launch)
        );
    }
    Ok(())
}

async fn import(registry: &Registry, from: Option<ImportSource>, dry_run: bool) -> Result<()> {
    let places = Places::detect().context("cannot tell where the home directory is")?;
    let found = match import::find(from.as_ref(), &places) {
        Err(import::ImportError::NothingFound) => {
            bail!("{}; use --from PATH", import::ImportError::NothingFound)
        }
        other => other?,
    };
    let plan = import::plan(&registry.snapshot(), found);
    let (mut adds, mut same, mut clashes, mut invalid) = (0, 0, 0, 0);
    for item in &plan.items {
        let origin = item.origin.display();
        match &item.action {
            PlanAction::Add(entry) => {
                adds += 1;
                outln!(
                    "+ add        {}  ({})  from {origin}",
                    item.name,
                    describe(&entry.redacted().launch)
                );
            }
            PlanAction::Unchanged => {
                same += 1;
                outln!("= unchanged  {}  from {origin}", item.name);
            }
            PlanAction::Conflict(why) => {
                clashes += 1;
                outln!(
                    "! conflict   {}: {why}; not imported (from {origin})",
                    item.name
                );
            }
            PlanAction::Invalid(why) => {
                invalid += 1;
                outln!("x invalid    {}: {why} (in {origin})", item.name);
            }
        }
        for secret in &item.secrets {
            outln!(
                "      secret in {secret}: stored in servers.json (mode 0600); prefer an environment variable"
            );
        }
        for note in &item.notes {
            outln!("      note: {note}");
        }
    }
    let verb = if dry_run { "would add" } else { "added" };
    outln!("{verb} {adds}, unchanged {same}, conflicts {clashes}, invalid {invalid}");
    if !dry_run && adds > 0 {
        registry.apply(plan.edits()).await?;
    }
    Ok(())
}

/// The enabled servers as `{"mcpServers": {…}}`, with only the fields other clients know.
fn export_claude(snapshot: &RegistrySnapshot) -> Value {
    let servers: serde_json::Map<String, Value> = snapshot
        .servers
        .iter()
        .filter(|(_, entry)| entry.enabled)
        .map(|(name, entry)| {
            let value = match &entry.launch {
                Launch::Stdio {
                    command,
                    args,
                    env,
                    cwd,
                } => {
                    let mut v = json!({ "command": command, "args": args });
                    if !env.is_empty() {
                        v["env"] = json!(env);
                    }
                    if let Some(cwd) = cwd {
                        v["cwd"] = json!(cwd);
                    }
                    v
                }
                Launch::Remote { url, kind, headers } => {
                    let mut v = json!({ "type": kind.as_str(), "url": url });
                    if !headers.is_empty() {
                        v["headers"] = json!(headers);
                    }
                    v
                }
            };
            (name.to_string(), value)
        })
        .collect();
    json!({ "mcpServers": servers })
}
