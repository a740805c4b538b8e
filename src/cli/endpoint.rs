//! `endpoint [on | off]`: the daemon's MCP endpoint over HTTP, for clients that connect rather
//! than launch. Through the running daemon, which serves the change at once; with none, the
//! setting is kept for the daemon's next start (no engine is started for it).

use std::path::Path;

use anyhow::Result;

use switchboard::control::ControlClient;
use switchboard::endpoint::EndpointStatus;
use switchboard::endpoint::setting;
use switchboard::wire::Request;

/// What `endpoint on` or `off` asks for.
pub struct Change {
    pub enabled: bool,
    pub port: Option<u16>,
    pub require_token: Option<bool>,
}

pub async fn show(dir: &Path, json: bool) -> Result<()> {
    let status = match ControlClient::connect(dir).await? {
        Some(daemon) => serde_json::from_value(daemon.ask(Request::Endpoint {}).await?)?,
        None => EndpointStatus {
            problem: Some("no daemon runs: nothing serves".into()),
            ..EndpointStatus::kept(setting::load(dir)?)
        },
    };
    if json {
        outln!("{}", serde_json::to_string(&status)?);
    } else {
        print_status(&status)?;
    }
    Ok(())
}

pub async fn change(dir: &Path, change: Change) -> Result<()> {
    let Change {
        enabled,
        port,
        require_token,
    } = change;
    match ControlClient::connect(dir).await? {
        Some(daemon) => {
            let request = Request::SetEndpoint {
                enabled,
                port,
                require_token,
            };
            let status: EndpointStatus = serde_json::from_value(daemon.ask(request).await?)?;
            print_status(&status)?;
        }
        None => {
            setting::keep_change(dir, enabled, port, require_token)?;
            let when = if enabled { "on" } else { "off" };
            outln!("kept: the endpoint is {when} from the daemon's next start (none runs now)");
        }
    }
    Ok(())
}

fn print_status(status: &EndpointStatus) -> Result<()> {
    let setting = &status.setting;
    match &status.url {
        Some(url) => outln!("serving: {url}"),
        None if setting.enabled => outln!("on (port {}), not serving", setting.port),
        None => outln!("off (port {} when on)", setting.port),
    }
    if let Some(file) = &status.token_file {
        outln!(
            "token: send Authorization: Bearer <the token in {}>",
            file.display()
        );
    } else if setting.enabled && !setting.require_token {
        outln!("no token required: any program on this machine can call every tool");
    }
    if let Some(problem) = &status.problem {
        outln!("problem: {problem}");
    }
    Ok(())
}
