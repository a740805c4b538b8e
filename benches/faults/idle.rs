//! The idle cost of watching: the engine following 100 HTTP servers nobody calls (half of each
//! era), its CPU time over 30 s. The servers run in a child process, so their side of each
//! probe is not counted.

use std::io::BufRead as _;
use std::time::{Duration, Instant};

use switchboard::engine::{Engine, EngineOptions};
use switchboard::health::Health;
use switchboard::session::http_client;
use switchboard_fixture::{Fixture, Knobs};

pub const CONNECTORS: usize = 100;
const WATCHED: Duration = Duration::from_secs(30);

/// This binary as the fleet: the servers, their URLs printed one per line.
pub async fn be_fleet() {
    let mut fleet = Vec::new();
    for i in 0..CONNECTORS {
        let knobs = Knobs {
            legacy_only: i % 2 == 0,
            ..Knobs::default()
        };
        let fixture = Fixture::start(knobs).await.expect("fixture");
        println!("{}", fixture.url());
        fleet.push(fixture);
    }
    std::future::pending::<()>().await;
}

/// The engine's share of one core (0.005 is half a percent) while it only watches.
pub async fn cost() -> f64 {
    let me = std::env::current_exe().expect("this benchmark's path");
    let mut child = std::process::Command::new(me)
        .env("FAULTS_FIXTURE", "fleet")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("the fleet");
    let urls: Vec<String> = std::io::BufReader::new(child.stdout.take().expect("piped"))
        .lines()
        .take(CONNECTORS)
        .map(|line| line.expect("a URL"))
        .collect();
    let specs = urls
        .into_iter()
        .enumerate()
        .map(|(i, url)| super::ConnectorSpec {
            id: format!("c{i:03}"),
            ..super::spec(super::http(url))
        })
        .collect();
    let (_desired, specs) = tokio::sync::watch::channel(specs);
    let engine = Engine::start(
        specs,
        http_client().expect("client"),
        EngineOptions::default(),
    );
    let all_healthy = |engine: &Engine| {
        let snapshot = engine.snapshot();
        snapshot.connectors.len() == CONNECTORS
            && snapshot
                .connectors
                .iter()
                .all(|c| c.state == Health::Healthy)
    };
    let started = Instant::now();
    while !all_healthy(&engine) {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the fleet connects"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Past connecting: only the watching is measured.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (cpu, wall) = (cpu_seconds(), Instant::now());
    tokio::time::sleep(WATCHED).await;
    let share = (cpu_seconds() - cpu) / wall.elapsed().as_secs_f64();
    assert!(all_healthy(&engine), "still healthy after watching");
    engine.shutdown().await;
    let _ = child.kill();
    let _ = child.wait();
    share
}

/// User and system CPU time of this process so far (`/proc/self/stat`).
fn cpu_seconds() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").expect("/proc/self/stat");
    // Fields after the command name (which may hold spaces): utime and stime are the 12th and
    // 13th, in clock ticks.
    let after = &stat[stat.rfind(')').expect("the command name's end") + 2..];
    let fields: Vec<&str> = after.split(' ').collect();
    let field = |i: usize| fields[i].parse::<f64>().expect("a tick count");
    let ticks = field(11) + field(12);
    ticks / clock_ticks()
}

fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(100.0)
}
