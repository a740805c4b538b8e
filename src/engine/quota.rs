//! A connector's call quotas (`concurrent`, `perMinute`, `perHour`): what keeps an AI client
//! in a loop from spending a developer's API allowance. Beyond concurrency a call waits its turn
//! (first come, first served, a bounded queue) until its deadline; beyond a rate it is refused
//! at once, saying when to retry, since waiting minutes would only look like a hang.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::connector::Quotas;

/// Calls that may wait for a concurrency slot of one connector; more are refused at once.
pub const MAX_WAITING: usize = 64;
const MINUTE: Duration = Duration::from_secs(60);
const HOUR: Duration = Duration::from_secs(3600);

/// Why a call was not let through.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Refusal {
    #[error("is over its quota of {max} calls per {per}; retry in {}", seconds(*retry_after))]
    Rate {
        max: u32,
        per: &'static str,
        retry_after: Duration,
    },
    #[error("already has {MAX_WAITING} calls waiting for one of its {slots} concurrent slots")]
    QueueFull { slots: u32 },
    #[error("had no free slot of its {slots} concurrent within the call deadline of {} ms", waited.as_millis())]
    NoSlot { slots: u32, waited: Duration },
}

impl Refusal {
    /// The `outcome` label of its counter.
    pub fn outcome(&self) -> &'static str {
        match self {
            Self::Rate { .. } => "rate_limited",
            Self::QueueFull { .. } => "queue_full",
            Self::NoSlot { .. } => "no_slot",
        }
    }
}

/// "3 s", rounded up: a client told to retry sooner would be refused again.
fn seconds(duration: Duration) -> String {
    let millis = duration.as_millis();
    if millis < 1000 {
        format!(
            "{:.1} s",
            (millis.max(100) as f64 / 1000.0 * 10.0).ceil() / 10.0
        )
    } else {
        format!("{} s", millis.div_ceil(1000))
    }
}

/// One connector's quotas, enforced. Shared by every call to it, whoever makes it.
pub struct QuotaGate {
    quotas: Quotas,
    slots: Option<Arc<Semaphore>>,
    /// When the calls of the last hour (or minute, with no hourly limit) were let through,
    /// oldest first; never longer than the larger limit.
    admitted: Mutex<VecDeque<Instant>>,
    waiting: AtomicUsize,
}

struct CountedOut<'a>(&'a AtomicUsize);

impl Drop for CountedOut<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// A call let through: holds its concurrency slot until dropped.
pub struct Admitted {
    _slot: Option<OwnedSemaphorePermit>,
    /// Whether it had to wait for its slot.
    pub waited: bool,
}

impl QuotaGate {
    /// `None` when `quotas` limit nothing.
    pub fn new(quotas: Quotas) -> Option<Arc<Self>> {
        (quotas != Quotas::default()).then(|| {
            Arc::new(Self {
                quotas,
                slots: quotas
                    .concurrent
                    .map(|n| Arc::new(Semaphore::new(n as usize))),
                admitted: Mutex::new(VecDeque::new()),
                waiting: AtomicUsize::new(0),
            })
        })
    }

    pub fn quotas(&self) -> Quotas {
        self.quotas
    }

    /// Lets a call through, or says why not: rates first (refused at once), then a slot,
    /// waited for in turn until `deadline`. A call that got no slot does not count against
    /// the rates.
    pub async fn admit(&self, deadline: Duration) -> Result<Admitted, Refusal> {
        let at = self.take_rate(Instant::now())?;
        let slot = self.slot(deadline).await;
        if slot.is_err() {
            self.give_back(at);
        }
        slot
    }

    async fn slot(&self, deadline: Duration) -> Result<Admitted, Refusal> {
        let (Some(slots), Some(count)) = (&self.slots, self.quotas.concurrent) else {
            return Ok(Admitted {
                _slot: None,
                waited: false,
            });
        };
        if let Ok(slot) = slots.clone().try_acquire_owned() {
            return Ok(Admitted {
                _slot: Some(slot),
                waited: false,
            });
        }
        if self.waiting.fetch_add(1, Ordering::AcqRel) >= MAX_WAITING {
            self.waiting.fetch_sub(1, Ordering::AcqRel);
            return Err(Refusal::QueueFull { slots: count });
        }
        // Counted out however the wait ends, the caller giving up included.
        let _waiting = CountedOut(&self.waiting);
        // tokio's semaphore hands out permits in the order they were asked for.
        match tokio::time::timeout(deadline, slots.clone().acquire_owned()).await {
            Ok(Ok(slot)) => Ok(Admitted {
                _slot: Some(slot),
                waited: true,
            }),
            _ => Err(Refusal::NoSlot {
                slots: count,
                waited: deadline,
            }),
        }
    }

    /// Counts a call at `now` against the rates, or says when one would be let through.
    fn take_rate(&self, now: Instant) -> Result<Option<Instant>, Refusal> {
        let limits = [
            (self.quotas.per_minute, MINUTE, "minute"),
            (self.quotas.per_hour, HOUR, "hour"),
        ];
        if limits.iter().all(|(max, ..)| max.is_none()) {
            return Ok(None);
        }
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        let kept = if self.quotas.per_hour.is_some() {
            HOUR
        } else {
            MINUTE
        };
        while admitted
            .front()
            .is_some_and(|t| now.duration_since(*t) >= kept)
        {
            admitted.pop_front();
        }
        for (max, window, per) in limits {
            let Some(max) = max else { continue };
            let within =
                admitted.len() - admitted.partition_point(|t| now.duration_since(*t) >= window);
            if within >= max as usize {
                // The oldest of the last `max` must leave the window first.
                let oldest = admitted[admitted.len() - max as usize];
                return Err(Refusal::Rate {
                    max,
                    per,
                    retry_after: window.saturating_sub(now.duration_since(oldest)),
                });
            }
        }
        admitted.push_back(now);
        Ok(Some(now))
    }

    fn give_back(&self, at: Option<Instant>) {
        let Some(at) = at else { return };
        let mut admitted = self.admitted.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(index) = admitted.iter().rposition(|t| *t == at) {
            admitted.remove(index);
        }
    }

    /// Calls waiting for a slot now.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.waiting.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gate(
        concurrent: Option<u32>,
        per_minute: Option<u32>,
        per_hour: Option<u32>,
    ) -> Arc<QuotaGate> {
        QuotaGate::new(Quotas {
            concurrent,
            per_minute,
            per_hour,
        })
        .expect("limits something")
    }

    #[test]
    fn no_limits_need_no_gate() {
        assert!(QuotaGate::new(Quotas::default()).is_none());
    }

    #[test]
    fn a_rate_refuses_the_call_after_its_limit_until_the_oldest_leaves_the_window() {
        let gate = gate(None, Some(3), None);
        let start = Instant::now();
        for s in [0, 10, 20] {
            assert!(gate.take_rate(start + Duration::from_secs(s)).is_ok());
        }
        let refused = gate.take_rate(start + Duration::from_secs(25)).unwrap_err();
        assert_eq!(
            refused,
            Refusal::Rate {
                max: 3,
                per: "minute",
                retry_after: Duration::from_secs(35)
            }
        );
        assert!(
            refused
                .to_string()
                .ends_with("3 calls per minute; retry in 35 s")
        );
        // The first call has left the window: one more is let through, and no second.
        assert!(gate.take_rate(start + Duration::from_secs(60)).is_ok());
        assert!(gate.take_rate(start + Duration::from_secs(61)).is_err());
    }

    #[test]
    fn an_hourly_rate_counts_calls_the_minute_has_forgotten() {
        let gate = gate(None, Some(2), Some(3));
        let start = Instant::now();
        for s in [0, 1, 120] {
            assert!(gate.take_rate(start + Duration::from_secs(s)).is_ok());
        }
        let refused = gate
            .take_rate(start + Duration::from_secs(240))
            .unwrap_err();
        assert_eq!(
            refused,
            Refusal::Rate {
                max: 3,
                per: "hour",
                retry_after: Duration::from_secs(3600 - 240)
            }
        );
    }

    #[test]
    fn a_call_given_back_does_not_count() {
        let gate = gate(None, Some(1), None);
        let now = Instant::now();
        let at = gate.take_rate(now).unwrap();
        gate.give_back(at);
        assert!(gate.take_rate(now).is_ok());
    }

    #[test]
    fn retry_times_round_up() {
        assert_eq!(seconds(Duration::from_millis(1001)), "2 s");
        assert_eq!(seconds(Duration::from_millis(420)), "0.5 s");
        assert_eq!(seconds(Duration::ZERO), "0.1 s");
    }

    #[tokio::test]
    async fn calls_beyond_concurrency_wait_in_turn() {
        let gate = gate(Some(1), None, None);
        let first = gate.admit(Duration::from_secs(5)).await.unwrap();
        assert!(!first.waited);
        let (order, mut finished) = tokio::sync::mpsc::unbounded_channel();
        for n in 0..3 {
            let (waiter, order) = (gate.clone(), order.clone());
            tokio::spawn(async move {
                let admitted = waiter.admit(Duration::from_secs(5)).await.unwrap();
                order.send((n, admitted.waited)).unwrap();
            });
            // Each waiter is queued before the next is started.
            let deadline = Instant::now() + Duration::from_secs(5);
            while gate.waiting() != n + 1 {
                assert!(Instant::now() < deadline, "waiter {n} never queued");
                tokio::task::yield_now().await;
            }
        }
        drop(first);
        for n in 0..3 {
            assert_eq!(finished.recv().await, Some((n, true)));
        }
        assert_eq!(gate.waiting(), 0);
    }

    #[tokio::test]
    async fn a_wait_ends_at_the_deadline_and_gives_its_rate_back() {
        let gate = gate(Some(1), Some(2), None);
        let _held = gate.admit(Duration::from_secs(5)).await.unwrap();
        let refused = gate.admit(Duration::from_millis(30)).await.err();
        assert_eq!(
            refused,
            Some(Refusal::NoSlot {
                slots: 1,
                waited: Duration::from_millis(30)
            })
        );
        assert_eq!(gate.waiting(), 0);
        // Only the held call counts: one more is within the rate of 2.
        assert!(gate.take_rate(Instant::now()).is_ok());
    }

    #[tokio::test]
    async fn a_full_queue_refuses_at_once() {
        let gate = gate(Some(1), None, None);
        let _held = gate.admit(Duration::from_secs(5)).await.unwrap();
        let waiters: Vec<_> = (0..MAX_WAITING)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move { gate.admit(Duration::from_secs(30)).await.is_ok() })
            })
            .collect();
        let deadline = Instant::now() + Duration::from_secs(5);
        while gate.waiting() < MAX_WAITING {
            assert!(Instant::now() < deadline, "the queue never filled");
            tokio::task::yield_now().await;
        }
        let refused = gate.admit(Duration::from_secs(30)).await.err();
        assert_eq!(refused, Some(Refusal::QueueFull { slots: 1 }));
        waiters.iter().for_each(tokio::task::JoinHandle::abort);
    }
}
