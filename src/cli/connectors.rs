//! `sync`, `tools` and `call`: connect the desired set and report on it.

use std::path::Path;

use anyhow::{Context, Result, bail};
use serde_json::Value;

use switchboard::catalog::split_qualified;
use switchboard::connector::{self, ConnectorSpec};
use switchboard::manifest::loader::{LoaderOptions, ManifestLoader, ManifestSource, Refresh};
use switchboard::registry::{Registry, RegistryOptions};
use switchboard::session::{Session, http_client};
use switchboard::sync::{Connected, ConnectorReport, SyncOptions, connect_all};

/// The desired set: the manifest's connectors (when one is given) and the registry's servers.
/// A manifest that cannot be had is reported on stderr, and the last good one (from the disk
/// cache) used if there is one.
async fn desired_set(
    dir: &Path,
    manifest: Option<&str>,
    http: &reqwest::Client,
) -> Result<Vec<ConnectorSpec>> {
    let registry = Registry::open(RegistryOptions {
        watch: false,
        ..RegistryOptions::in_dir(dir)
    })
    .await?;
    let snapshot = registry.snapshot();
    registry.close().await?;
    let Some(source) = manifest else {
        return Ok(connector::desired_set(None, &snapshot));
    };
    let source = ManifestSource::parse(source).map_err(anyhow::Error::msg)?;
    let options = LoaderOptions {
        key: std::env::var("SWITCHBOARD_MANIFEST_KEY")
            .ok()
            .map(String::into_bytes),
        cache_path: Some(dir.join("manifest-cache.json")),
        ..LoaderOptions::default()
    };
    let mut loader = ManifestLoader::new(source, http.clone(), options);
    match loader.refresh().await {
        Refresh::Updated | Refresh::NotModified => {}
        Refresh::Stale(reason) => eprintln!("manifest: stale, using the last good one ({reason})"),
        Refresh::Failed(reason) => eprintln!("manifest: unusable, no last good one ({reason})"),
    }
    let manifest = loader.current().map(|state| state.manifest.clone());
    Ok(connector::desired_set(manifest.as_deref(), &snapshot))
}

async fn connect(dir: &Path, manifest: Option<&str>) -> Result<Connected> {
    let http = http_client().context("cannot set up the HTTP client")?;
    let specs = desired_set(dir, manifest, &http).await?;
    Ok(connect_all(specs, &http, SyncOptions::from_env()).await)
}

pub async fn sync_once(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let connected = connect(dir, manifest).await?;
    print_reports(&connected.reports, json)?;
    connected.close().await;
    Ok(())
}

fn print_reports(reports: &[ConnectorReport], json: bool) -> Result<()> {
    if json {
        outln!("{}", serde_json::to_string(reports)?);
        return Ok(());
    }
    if reports.is_empty() {
        outln!("no connectors: add one with `switchboard registry add`");
        return Ok(());
    }
    let width = reports
        .iter()
        .map(|r| r.id.chars().count())
        .max()
        .unwrap_or(2)
        .max(9);
    outln!(
        "{:width$}  {:12}  {:>5}  {:>10}  {:10}  DETAIL",
        "CONNECTOR",
        "STATE",
        "TOOLS",
        "LATENCY",
        "PROTOCOL"
    );
    for r in reports {
        let latency = r
            .latency_ms
            .map_or_else(|| "-".into(), |ms| format!("{ms:.1} ms"));
        outln!(
            "{:width$}  {:12}  {:>5}  {:>10}  {:10}  {}",
            r.id,
            r.state.as_str(),
            r.tools,
            latency,
            r.protocol_version.as_deref().unwrap_or("-"),
            r.error.as_deref().unwrap_or("")
        );
    }
    Ok(())
}

pub async fn tools(dir: &Path, manifest: Option<&str>, json: bool) -> Result<()> {
    let connected = connect(dir, manifest).await?;
    let catalog = connected.catalog();
    if json {
        let rows: Vec<Value> = catalog
            .iter()
            .map(|(name, t)| {
                serde_json::json!({
                    "name": name,
                    "connector": t.connector,
                    "tool": t.tool.name,
                    "description": t.tool.description,
                })
            })
            .collect();
        outln!("{}", Value::Array(rows));
    } else {
        for (name, t) in catalog.iter() {
            outln!("{name}  {}", t.tool.description.as_deref().unwrap_or(""));
        }
    }
    for report in connected.reports.iter().filter(|r| r.error.is_some()) {
        eprintln!(
            "{}: {} ({})",
            report.id,
            report.state.as_str(),
            report.error.as_deref().unwrap_or("")
        );
    }
    connected.close().await;
    Ok(())
}

pub async fn call(
    dir: &Path,
    manifest: Option<&str>,
    qualified: &str,
    args: Option<&str>,
) -> Result<()> {
    let (connector_id, tool) = split_qualified(qualified)
        .with_context(|| format!("{qualified:?} is not CONNECTOR.TOOL"))?;
    let arguments = match args {
        None => None,
        Some(text) => match serde_json::from_str::<Value>(text).context("--args is not JSON")? {
            Value::Object(map) => Some(map),
            other => bail!("--args must be a JSON object, not {other}"),
        },
    };
    let http = http_client().context("cannot set up the HTTP client")?;
    let spec = desired_set(dir, manifest, &http)
        .await?
        .into_iter()
        .find(|s| s.id == connector_id)
        .with_context(|| format!("no connector {connector_id:?}"))?;
    if !spec.enabled {
        bail!("connector {connector_id:?} is disabled");
    }
    if let Some(variable) = &spec.missing_credential {
        bail!("connector {connector_id:?} needs a credential: set {variable}");
    }
    let session = Session::open(&spec, &http)
        .await
        .with_context(|| format!("cannot connect to {connector_id}"))?;
    let outcome = session.call(tool, arguments, spec.call_timeout).await;
    session.close().await;
    let result = outcome.with_context(|| format!("{qualified} failed"))?;
    outln!("{}", serde_json::to_string(&result)?);
    if result.is_error == Some(true) {
        bail!("{qualified} returned an error result");
    }
    Ok(())
}
