//! A connector's calls of the last hour, counted by minute in the Latency chart's buckets: what
//! the chart draws for "the last 5 minutes" or "the last hour" (the HDR histogram holds every
//! call since start). 60 minutes × 18 counts: about 5 KB a connector.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::{HISTOGRAM_BOUNDS_MS, LatencyBucket, LatencyHistogram, LatencySummary};

/// Minutes kept: the longest window the chart offers.
const MINUTES: u64 = 60;
const BUCKETS: usize = HISTOGRAM_BOUNDS_MS.len() + 1;

#[derive(Default)]
pub(super) struct ByMinute {
    /// Oldest first; only minutes that had calls.
    minutes: VecDeque<Minute>,
}

struct Minute {
    /// Minutes since the metrics began.
    index: u64,
    counts: [u64; BUCKETS],
    errors: u64,
}

fn minute_of(at: Instant, epoch: Instant) -> u64 {
    at.saturating_duration_since(epoch).as_secs() / 60
}

/// The bucket a call of `ms` falls in (the last one: beyond every bound).
fn bucket_of(ms: f64) -> usize {
    HISTOGRAM_BOUNDS_MS
        .iter()
        .position(|&upper| ms <= upper)
        .unwrap_or(BUCKETS - 1)
}

impl ByMinute {
    pub(super) fn record(&mut self, at: Instant, epoch: Instant, took: Duration, failed: bool) {
        let index = minute_of(at, epoch);
        if self.minutes.back().is_none_or(|m| m.index != index) {
            self.minutes.push_back(Minute {
                index,
                counts: [0; BUCKETS],
                errors: 0,
            });
        }
        while self
            .minutes
            .front()
            .is_some_and(|m| m.index + MINUTES <= index)
        {
            self.minutes.pop_front();
        }
        if let Some(minute) = self.minutes.back_mut() {
            minute.counts[bucket_of(took.as_secs_f64() * 1e3)] += 1;
            minute.errors += u64::from(failed);
        }
    }

    /// The calls of the last `window` (whole minutes, this one included) as the chart draws
    /// them; percentiles are the upper bounds of the buckets they fall in.
    pub(super) fn histogram(
        &self,
        now: Instant,
        epoch: Instant,
        window: Duration,
    ) -> Option<LatencyHistogram> {
        let now = minute_of(now, epoch);
        let span = window.as_secs().div_ceil(60).clamp(1, MINUTES);
        let mut counts = [0u64; BUCKETS];
        let mut errors = 0;
        for minute in self.minutes.iter().filter(|m| m.index + span > now) {
            for (total, count) in counts.iter_mut().zip(minute.counts) {
                *total += count;
            }
            errors += minute.errors;
        }
        let calls: u64 = counts.iter().sum();
        let upper = |i: usize| HISTOGRAM_BOUNDS_MS.get(i).copied().unwrap_or(f64::INFINITY);
        let quantile = |q: f64| {
            let wanted = (q * calls as f64).ceil().max(1.0) as u64;
            let mut seen = 0;
            let at = counts.iter().position(|&c| {
                seen += c;
                seen >= wanted
            });
            at.map_or(0.0, |i| {
                upper(i).min(HISTOGRAM_BOUNDS_MS[BUCKETS - 2] * 2.0)
            })
        };
        let first = counts.iter().position(|&c| c > 0)?;
        let last = counts.iter().rposition(|&c| c > 0)?;
        Some(LatencyHistogram {
            buckets: (first..=last)
                .map(|i| LatencyBucket {
                    upper_ms: upper(i),
                    count: counts[i],
                })
                .collect(),
            summary: LatencySummary {
                calls,
                errors,
                p50_ms: quantile(0.5),
                p95_ms: quantile(0.95),
                p99_ms: quantile(0.99),
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_window_holds_the_calls_of_its_minutes_only() {
        let epoch = Instant::now();
        let mut by = ByMinute::default();
        let at = |s: u64| epoch + Duration::from_secs(s);
        by.record(at(0), epoch, Duration::from_millis(3), false);
        by.record(at(400), epoch, Duration::from_millis(40), true);
        by.record(at(410), epoch, Duration::from_millis(40), false);
        let now = at(420);
        let five = by.histogram(now, epoch, Duration::from_secs(300)).unwrap();
        assert_eq!(
            (five.summary.calls, five.summary.errors),
            (2, 1),
            "only the recent two"
        );
        assert_eq!(five.buckets.len(), 1);
        assert_eq!(five.buckets[0].upper_ms, 50.0);
        assert_eq!(five.summary.p99_ms, 50.0, "a bucket's upper bound");
        let hour = by.histogram(now, epoch, Duration::from_secs(3600)).unwrap();
        assert_eq!(hour.summary.calls, 3);
        assert_eq!(hour.summary.p50_ms, 50.0);
        assert_eq!(hour.buckets.first().map(|b| b.upper_ms), Some(5.0));
        // An hour on, the first call has gone; with nothing in the window, no chart.
        by.record(at(3700), epoch, Duration::from_millis(1), false);
        let later = by
            .histogram(at(3700), epoch, Duration::from_secs(3600))
            .unwrap();
        assert_eq!(later.summary.calls, 3, "the 0 s call went");
        assert!(
            by.histogram(at(9000), epoch, Duration::from_secs(300))
                .is_none()
        );
    }
}
