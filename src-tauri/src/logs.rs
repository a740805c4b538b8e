//! The app's log: `tracing` to a daily-rolling file under the user data dir (and stderr), and
//! the tray's "Open logs".

use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::sync::Arc;

use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

/// Where the log files are.
pub struct LogDir(PathBuf);

impl LogDir {
    /// Opens the folder in the desktop's file manager.
    pub fn open(&self) {
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else if cfg!(windows) {
            "explorer"
        } else {
            "xdg-open"
        };
        if let Err(error) = std::process::Command::new(opener).arg(&self.0).spawn() {
            tracing::warn!(%error, dir = %self.0.display(), "cannot open the log folder");
        }
    }
}

/// Starts logging (`RUST_LOG` filters; default `info` for Switchboard, `warn` for the rest).
/// `SWITCHBOARD_LOG_DIR` overrides the folder.
pub fn init() -> Arc<LogDir> {
    let dir = std::env::var_os("SWITCHBOARD_LOG_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            directories::ProjectDirs::from("dev", "switchboard", "switchboard")
                .map(|p| p.data_dir().join("logs"))
        })
        .unwrap_or_else(|| std::env::temp_dir().join("switchboard-logs"));
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,switchboard=info,switchboard_app=info,rmcp=off"));
    let _ = std::fs::create_dir_all(&dir);
    let file = tracing_appender::rolling::Builder::new()
        .rotation(tracing_appender::rolling::Rotation::DAILY)
        .filename_prefix("switchboard")
        .filename_suffix("log")
        .max_log_files(7)
        .build(&dir);
    let registry = tracing_subscriber::registry().with(filter).with(
        tracing_subscriber::fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr),
    );
    match file {
        Ok(file) => {
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(file),
                )
                .init();
        }
        Err(error) => {
            registry.init();
            tracing::warn!(%error, dir = %dir.display(), "no log file; logging to stderr only");
        }
    }
    Arc::new(LogDir(dir))
}
