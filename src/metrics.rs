//! Every call measured, kept two ways: Prometheus series named after the OpenTelemetry MCP
//! conventions (for scrapers, served on loopback only when asked), and HDR histograms per
//! connector and tool (for the app's p50/p95/p99 and for the degraded rule).

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use serde::Serialize;

use crate::health::Health;

mod by_minute;
mod endpoint;

pub use endpoint::{router, serve};

/// The conventions' bucket bounds for `mcp.client.operation.duration`, in seconds.
pub const DURATION_BUCKETS: [f64; 14] = [
    0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0,
];
/// `error.type` of a call whose result has `isError`.
pub const TOOL_ERROR: &str = "tool_error";
/// Outcomes kept per connector for the degraded rule.
const WINDOW_CALLS: usize = 100;
/// …and how old they may be.
const WINDOW_AGE: Duration = Duration::from_secs(300);

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OperationLabels {
    mcp_method_name: String,
    connector: String,
    gen_ai_tool_name: String,
    error_type: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectorLabels {
    connector: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct QuotaLabels {
    connector: String,
    outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StateLabels {
    connector: String,
    state: String,
}

fn duration_histogram() -> Histogram {
    Histogram::new(DURATION_BUCKETS)
}

/// p50/p95/p99 of a connector's calls, for the UI.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct LatencySummary {
    pub calls: u64,
    pub errors: u64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
}

/// Upper bounds of the latency histogram's buckets, in ms: 1-2-5 steps, readable as labels.
pub const HISTOGRAM_BOUNDS_MS: [f64; 17] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1e3, 2e3, 5e3, 1e4, 3e4, 6e4, 3e5,
];

/// A connector's call durations, bucketed, for the Latency view.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LatencyHistogram {
    pub buckets: Vec<LatencyBucket>,
    pub summary: LatencySummary,
}

/// Calls that took at most `upper_ms` (and more than the previous bucket's bound).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LatencyBucket {
    pub upper_ms: f64,
    pub count: u64,
}

fn summarize(merged: &hdrhistogram::Histogram<u64>, errors: u64) -> LatencySummary {
    let ms = |q: f64| merged.value_at_quantile(q) as f64 / 1e3;
    LatencySummary {
        calls: merged.len(),
        errors,
        p50_ms: ms(0.5),
        p95_ms: ms(0.95),
        p99_ms: ms(0.99),
    }
}

/// Recent calls of one connector.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RecentCalls {
    pub calls: usize,
    pub errors: usize,
    pub p95: Duration,
}

/// A connector's calls so far, and its latest ones. (Per tool, the Prometheus series have it.)
#[derive(Default)]
struct ConnectorStats {
    /// Call durations in µs: 1 µs to 5 min at 2 significant digits (1 %), 23 KB a connector.
    /// One per connector rather than per tool, so a snapshot reads it without merging.
    latency: Option<hdrhistogram::Histogram<u64>>,
    errors: u64,
    recent: VecDeque<(Instant, Duration, bool)>,
    by_minute: by_minute::ByMinute,
}

fn latency_histogram() -> hdrhistogram::Histogram<u64> {
    hdrhistogram::Histogram::new_with_bounds(1, 300_000_000, 2)
        .unwrap_or_else(|_| unreachable!("constant, valid bounds"))
}

/// The engine's measurements; cheap to share.
pub struct Metrics {
    registry: Registry,
    operations: Family<OperationLabels, Histogram, fn() -> Histogram>,
    up: Family<ConnectorLabels, Gauge>,
    state: Family<StateLabels, Gauge>,
    tools: Family<ConnectorLabels, Gauge>,
    sync: Histogram,
    manifest_fetch: Family<ResultLabels, Histogram, fn() -> Histogram>,
    registry_flush: Histogram,
    quota: Family<QuotaLabels, Counter>,
    /// When these metrics began: what the by-minute counts count from.
    epoch: Instant,
    stats: Mutex<HashMap<String, ConnectorStats>>,
}

impl Metrics {
    pub fn new() -> Arc<Self> {
        let mut registry = Registry::default();
        let operations =
            Family::<OperationLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        let (up, state, tools) = (Family::default(), Family::default(), Family::default());
        registry.register(
            "mcp_client_operation_duration_seconds",
            "Duration of MCP client operations (OpenTelemetry mcp.client.operation.duration)",
            operations.clone(),
        );
        registry.register(
            "switchboard_connector_up",
            "1 when healthy or degraded",
            up.clone(),
        );
        registry.register(
            "switchboard_connector_state",
            "1 for the connector's current state",
            state.clone(),
        );
        registry.register(
            "switchboard_tools",
            "Tools listed by the connector",
            tools.clone(),
        );
        let sync = duration_histogram();
        registry.register(
            "switchboard_sync_duration_seconds",
            "From a change of the desired set until no connector is still connecting",
            sync.clone(),
        );
        let manifest_fetch =
            Family::<ResultLabels, Histogram, fn() -> Histogram>::new_with_constructor(
                duration_histogram,
            );
        registry.register(
            "switchboard_manifest_fetch_duration_seconds",
            "Manifest refreshes, retries included, by result",
            manifest_fetch.clone(),
        );
        // Rewrites take milliseconds, far below the MCP buckets.
        let registry_flush = Histogram::new(
            prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 12),
        );
        registry.register(
            "switchboard_registry_flush_duration_seconds",
            "Atomic rewrites of servers.json",
            registry_flush.clone(),
        );
        let quota = Family::default();
        registry.register(
            "switchboard_quota_calls",
            "Calls a connector's quotas held back: waited (for a concurrency slot), rate_limited, queue_full, no_slot",
            quota.clone(),
        );
        Arc::new(Self {
            quota,
            epoch: Instant::now(),
            registry,
            operations,
            up,
            state,
            tools,
            sync,
            manifest_fetch,
            registry_flush,
            stats: Mutex::new(HashMap::new()),
        })
    }

    fn stats(&self) -> MutexGuard<'_, HashMap<String, ConnectorStats>> {
        self.stats
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Counts a call a connector's quotas held back, by `outcome`.
    pub fn record_quota(&self, connector: &str, outcome: &str) {
        let labels = QuotaLabels {
            connector: connector.into(),
            outcome: outcome.into(),
        };
        self.quota.get_or_create(&labels).inc();
    }

    /// Records one `tools/call`; `error_type` is `None` on success.
    pub fn record_call(
        &self,
        connector: &str,
        tool: &str,
        elapsed: Duration,
        error_type: Option<&str>,
    ) {
        let labels = OperationLabels {
            mcp_method_name: "tools/call".into(),
            connector: connector.into(),
            gen_ai_tool_name: tool.into(),
            error_type: error_type.unwrap_or_default().into(),
        };
        self.operations
            .get_or_create(&labels)
            .observe(elapsed.as_secs_f64());
        let micros = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
        let mut stats = self.stats();
        let connector = stats.entry(connector.to_string()).or_default();
        let _ = connector
            .latency
            .get_or_insert_with(latency_histogram)
            .record(micros.clamp(1, 300_000_000));
        if error_type.is_some() {
            connector.errors += 1;
        }
        let now = Instant::now();
        // A tool that answers isError has answered: that is not the connector failing.
        let failed = error_type.is_some_and(|t| t != TOOL_ERROR);
        connector.recent.push_back((now, elapsed, failed));
        connector
            .by_minute
            .record(now, self.epoch, elapsed, error_type.is_some());
        while connector.recent.len() > WINDOW_CALLS
            || connector
                .recent
                .front()
                .is_some_and(|(at, _, _)| now.duration_since(*at) > WINDOW_AGE)
        {
            connector.recent.pop_front();
        }
    }

    /// A desired-set change took this long to settle.
    pub fn record_sync(&self, took: Duration) {
        self.sync.observe(took.as_secs_f64());
    }

    /// A manifest refresh (`updated`, `not_modified`, `stale` or `failed`) took this long.
    pub fn record_manifest_fetch(&self, result: &str, took: Duration) {
        let labels = ResultLabels {
            result: result.into(),
        };
        self.manifest_fetch
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    /// A rewrite of `servers.json` took this long.
    pub fn record_registry_flush(&self, took: Duration) {
        self.registry_flush.observe(took.as_secs_f64());
    }

    /// All of a connector's calls so far.
    pub fn latency(&self, connector: &str) -> Option<LatencySummary> {
        let (merged, errors) = self.calls_of(connector)?;
        Some(summarize(&merged, errors))
    }

    /// All of a connector's calls so far, counted in [`HISTOGRAM_BOUNDS_MS`] buckets (from the
    /// first to the last that holds a call).
    pub fn histogram(&self, connector: &str) -> Option<LatencyHistogram> {
        let (merged, errors) = self.calls_of(connector)?;
        let mut lower_us = 0;
        let mut buckets: Vec<LatencyBucket> = HISTOGRAM_BOUNDS_MS
            .iter()
            .map(|&upper_ms| {
                let upper_us = (upper_ms * 1e3) as u64;
                let count = merged.count_between(lower_us + 1, upper_us);
                lower_us = upper_us;
                LatencyBucket { upper_ms, count }
            })
            .collect();
        let beyond = merged.count_between(lower_us + 1, merged.max().max(lower_us + 1));
        buckets.push(LatencyBucket {
            upper_ms: f64::INFINITY,
            count: beyond,
        });
        let first = buckets.iter().position(|b| b.count > 0)?;
        let last = buckets.iter().rposition(|b| b.count > 0)?;
        Some(LatencyHistogram {
            buckets: buckets[first..=last].to_vec(),
            summary: summarize(&merged, errors),
        })
    }

    /// The connector's calls of the last `window` (at most an hour), by the chart's buckets.
    pub fn histogram_within(&self, connector: &str, window: Duration) -> Option<LatencyHistogram> {
        let stats = self.stats();
        stats
            .get(connector)?
            .by_minute
            .histogram(Instant::now(), self.epoch, window)
    }

    /// A copy of the connector's histogram (a 23 KB copy: the lock that calls record under is
    /// held for that only, not for the percentiles).
    fn calls_of(&self, connector: &str) -> Option<(hdrhistogram::Histogram<u64>, u64)> {
        let stats = self.stats();
        let connector = stats.get(connector)?;
        let latency = connector.latency.as_ref().filter(|h| !h.is_empty())?;
        Some((latency.clone(), connector.errors))
    }

    /// A connector's latest calls (at most 100, at most 5 minutes old).
    pub fn recent(&self, connector: &str) -> RecentCalls {
        let stats = self.stats();
        let Some(recent) = stats.get(connector).map(|c| &c.recent) else {
            return RecentCalls {
                calls: 0,
                errors: 0,
                p95: Duration::ZERO,
            };
        };
        let mut durations: Vec<Duration> = recent.iter().map(|(_, d, _)| *d).collect();
        durations.sort();
        let p95 = durations
            .get(((durations.len() as f64 * 0.95).ceil() as usize).saturating_sub(1))
            .copied()
            .unwrap_or_default();
        RecentCalls {
            calls: recent.len(),
            errors: recent.iter().filter(|(_, _, failed)| *failed).count(),
            p95,
        }
    }

    /// Sets a connector's state gauges.
    pub fn set_connector(&self, connector: &str, state: Health, tools: usize) {
        let label = ConnectorLabels {
            connector: connector.into(),
        };
        let up = state.is_live();
        self.up.get_or_create(&label).set(i64::from(up));
        self.tools.get_or_create(&label).set(tools as i64);
        for candidate in Health::ALL {
            let labels = StateLabels {
                connector: connector.into(),
                state: candidate.as_str().into(),
            };
            self.state
                .get_or_create(&labels)
                .set(i64::from(candidate == state));
        }
    }

    /// Forgets a connector that left the desired set (its call history too).
    pub fn remove_connector(&self, connector: &str) {
        let label = ConnectorLabels {
            connector: connector.into(),
        };
        self.up.remove(&label);
        self.tools.remove(&label);
        for state in Health::ALL {
            self.state.remove(&StateLabels {
                connector: connector.into(),
                state: state.as_str().into(),
            });
        }
        self.stats().remove(connector);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            tracing::error!("could not encode metrics");
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_feed_percentiles_the_window_and_the_exposition() {
        let metrics = Metrics::new();
        for ms in 1..=100 {
            let failed = (ms % 10 == 0).then_some("timeout");
            metrics.record_call("wiki", "search", Duration::from_millis(ms), failed);
        }
        metrics.record_call("docs", "get", Duration::from_millis(1), Some(TOOL_ERROR));
        assert_eq!(
            metrics.recent("docs").errors,
            0,
            "isError is the tool's answer, not a failure"
        );
        assert_eq!(
            metrics.latency("docs").unwrap().errors,
            1,
            "but it is counted"
        );
        let summary = metrics.latency("wiki").unwrap();
        assert_eq!((summary.calls, summary.errors), (100, 10));
        assert!((summary.p50_ms - 50.0).abs() < 0.5, "{summary:?}");
        assert!((summary.p99_ms - 99.0).abs() < 0.5, "{summary:?}");
        let recent = metrics.recent("wiki");
        assert_eq!((recent.calls, recent.errors), (100, 10));
        assert_eq!(recent.p95, Duration::from_millis(95));

        metrics.set_connector("wiki", Health::Healthy, 7);
        metrics.record_sync(Duration::from_millis(800));
        metrics.record_manifest_fetch("stale", Duration::from_millis(30));
        metrics.record_registry_flush(Duration::from_micros(900));
        let text = metrics.render();
        assert!(
            text.contains("switchboard_sync_duration_seconds_count 1"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_manifest_fetch_duration_seconds_count{result=\"stale\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_registry_flush_duration_seconds_bucket{le=\"0.001\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("mcp_client_operation_duration_seconds_bucket{"),
            "{text}"
        );
        assert!(text.contains("gen_ai_tool_name=\"search\""), "{text}");
        assert!(text.contains("error_type=\"timeout\""), "{text}");
        assert!(
            text.contains("switchboard_connector_up{connector=\"wiki\"} 1"),
            "{text}"
        );
        assert!(
            text.contains("switchboard_tools{connector=\"wiki\"} 7"),
            "{text}"
        );
        assert!(text.contains("state=\"healthy\"} 1"), "{text}");

        metrics.remove_connector("wiki");
        assert!(metrics.latency("wiki").is_none());
        assert!(
            !metrics
                .render()
                .contains("switchboard_connector_up{connector=\"wiki\"}")
        );
    }
}
