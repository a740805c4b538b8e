//! `client list|install|uninstall`: pointing the AI clients on this machine at `switchboard
//! serve`, with a preview of what changes in each config.

use std::path::Path;

use anyhow::{Context, Result, bail};

use switchboard::clients::{self, AiClient, ENTRY_NAME, ServeCommand, Uninstalled, served_by};
use switchboard::import::Places;
use switchboard::registry::{Registry, RegistryOptions, RegistrySnapshot};

fn places() -> Result<Places> {
    Places::detect().context("cannot tell where the home directory is")
}

fn serve_command(dir: &Path) -> Result<ServeCommand> {
    let program = std::env::current_exe().context("cannot tell where this program is")?;
    Ok(ServeCommand::new(&program, dir))
}

async fn registry(dir: &Path) -> Result<RegistrySnapshot> {
    let registry = Registry::open(RegistryOptions {
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await?;
    let snapshot = (*registry.snapshot()).clone();
    registry.close().await?;
    Ok(snapshot)
}

pub fn list(json: bool) -> Result<()> {
    let places = places()?;
    let statuses: Vec<_> = AiClient::ALL
        .into_iter()
        .map(|c| clients::status(c, &places))
        .collect();
    if json {
        outln!("{}", serde_json::to_string(&statuses)?);
        return Ok(());
    }
    outln!("{:12}  {:8}  {:7}  CONFIG", "CLIENT", "ROUTES", "SERVERS");
    for s in &statuses {
        let routes = match (s.exists, s.routes, &s.error) {
            (false, ..) => "-",
            (_, _, Some(_)) => "?",
            (_, true, _) => "yes",
            (_, false, _) => "no",
        };
        let note = match (&s.error, s.exists) {
            (Some(error), _) => format!("  ({error})"),
            (None, false) => "  (none yet)".into(),
            _ => String::new(),
        };
        outln!(
            "{:12}  {routes:8}  {:7}  {}{note}",
            s.client,
            s.servers.len(),
            s.path.display()
        );
    }
    Ok(())
}

pub async fn install(dir: &Path, client: AiClient, take_over: bool, dry_run: bool) -> Result<()> {
    let places = places()?;
    let registry = registry(dir).await?;
    let serve = serve_command(dir)?;
    let plan = clients::plan_install(client, &places, &serve, take_over, &served_by(&registry))?;
    outln!("{} ({}): {}", client.name(), client, plan.path.display());
    if !plan.changes_anything() {
        outln!("  already routes through Switchboard; nothing to change");
        return Ok(());
    }
    outln!(
        "  + {ENTRY_NAME}: {} {}",
        serve.program,
        serve.args.join(" ")
    );
    for name in &plan.switched_off {
        outln!("  - {name}: switched off here (Switchboard serves it; uninstall puts it back)");
    }
    if plan.before.is_some() {
        outln!("  the original is kept as {}", plan.backup_path().display());
    }
    if dry_run {
        outln!("(dry run: nothing written)");
    } else {
        plan.apply()?;
        outln!("written; restart {} to pick it up", client.name());
    }
    if !plan.duplicates.is_empty() {
        outln!(
            "note: Switchboard serves {} too, so each runs twice; `--take-over` switches the copies here off",
            plan.duplicates.join(", ")
        );
    }
    Ok(())
}

pub async fn uninstall(dir: &Path, client: AiClient) -> Result<()> {
    let places = places()?;
    let registry = registry(dir).await?;
    let serve = serve_command(dir)?;
    let path = client.config_path(&places);
    match clients::uninstall(client, &places, &serve, &served_by(&registry))? {
        Uninstalled::Restored => outln!("{}: restored {} as it was", client.name(), path.display()),
        Uninstalled::Removed { restored_servers } => {
            outln!(
                "{}: removed {ENTRY_NAME} from {}",
                client.name(),
                path.display()
            );
            if !restored_servers.is_empty() {
                outln!("  put back: {}", restored_servers.join(", "));
            }
        }
        Uninstalled::NotInstalled => {
            bail!(
                "{} does not route through Switchboard ({})",
                client.name(),
                path.display()
            )
        }
    }
    Ok(())
}
