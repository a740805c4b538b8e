//! Which connector changes deserve a desktop notification: a connector that went down and
//! stayed down for the settle time, and one that came back after such an alert and stayed up as
//! long. A connector that flaps says nothing until it settles; one switched off says nothing.
//! Connectors that need a sign-in are told together, in one alert, however many there are (a
//! laptop waking after the tokens expired must not raise a storm).

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use crate::engine::EngineEvent;
use crate::health::Health;

/// How long a change must hold before it is told.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(10);

/// `SWITCHBOARD_ALERT_SETTLE_MS`, or the default.
pub fn settle_from_env() -> Duration {
    std::env::var("SWITCHBOARD_ALERT_SETTLE_MS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map_or(DEFAULT_SETTLE, Duration::from_millis)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Alert {
    Down {
        id: String,
        reason: Option<String>,
    },
    /// These connectors need a sign-in (told once, together).
    SignInNeeded {
        ids: Vec<String>,
    },
    Recovered {
        id: String,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Up,
    Down,
}

#[derive(Debug)]
struct Latest {
    side: Side,
    since: Instant,
    reason: Option<String>,
    /// Down because it needs a sign-in.
    sign_in: bool,
}

/// Debounces [`EngineEvent`]s into [`Alert`]s. Feed it with [`Alerts::observe`]; collect with
/// [`Alerts::due`] at [`Alerts::next_due`].
#[derive(Debug)]
pub struct Alerts {
    settle: Duration,
    latest: HashMap<String, Latest>,
    /// Connectors whose going down was told, so their recovery is told too.
    told_down: HashSet<String>,
}

impl Alerts {
    pub fn new(settle: Duration) -> Self {
        Self {
            settle,
            latest: HashMap::new(),
            told_down: HashSet::new(),
        }
    }

    pub fn observe(&mut self, event: &EngineEvent, now: Instant) {
        let (id, to, reason) = match event {
            EngineEvent::StateChanged { id, to, reason, .. } => (id, *to, reason),
            EngineEvent::Removed { id } => {
                self.forget(id);
                return;
            }
            EngineEvent::ToolsChanged { .. } => return,
        };
        let side = match to {
            Health::Healthy | Health::Degraded => Side::Up,
            Health::Down | Health::Unauthorized | Health::NeedsSignIn => Side::Down,
            // Retrying says nothing new about which side it is on.
            Health::Connecting => return,
            Health::Disabled => {
                self.forget(id);
                return;
            }
        };
        match self.latest.get_mut(id) {
            Some(latest) if latest.side == side => {
                latest.reason.clone_from(reason);
                latest.sign_in = to == Health::NeedsSignIn;
            }
            _ => {
                self.latest.insert(
                    id.clone(),
                    Latest {
                        side,
                        since: now,
                        reason: reason.clone(),
                        sign_in: to == Health::NeedsSignIn,
                    },
                );
            }
        }
    }

    fn forget(&mut self, id: &str) {
        self.latest.remove(id);
        self.told_down.remove(id);
    }

    /// The alerts whose change has held for the settle time by `now`.
    pub fn due(&mut self, now: Instant) -> Vec<Alert> {
        let mut alerts = Vec::new();
        let mut sign_ins = Vec::new();
        for (id, latest) in &self.latest {
            if now.duration_since(latest.since) < self.settle {
                continue;
            }
            match latest.side {
                Side::Down if latest.sign_in && self.told_down.insert(id.clone()) => {
                    sign_ins.push(id.clone());
                }
                Side::Down if self.told_down.insert(id.clone()) => alerts.push(Alert::Down {
                    id: id.clone(),
                    reason: latest.reason.clone(),
                }),
                Side::Up if self.told_down.remove(id) => {
                    alerts.push(Alert::Recovered { id: id.clone() })
                }
                _ => {}
            }
        }
        if !sign_ins.is_empty() {
            sign_ins.sort();
            alerts.push(Alert::SignInNeeded { ids: sign_ins });
        }
        alerts.sort_by(|a, b| format!("{a:?}").cmp(&format!("{b:?}")));
        alerts
    }

    /// When the next alert could become due, if any change is waiting to settle.
    pub fn next_due(&self) -> Option<Instant> {
        self.latest
            .iter()
            .filter(|(id, latest)| match latest.side {
                Side::Down => !self.told_down.contains(*id),
                Side::Up => self.told_down.contains(*id),
            })
            .map(|(_, latest)| latest.since + self.settle)
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(id: &str, to: Health) -> EngineEvent {
        EngineEvent::StateChanged {
            id: id.into(),
            from: Health::Connecting,
            to,
            reason: (to == Health::Down).then(|| "connection refused".into()),
        }
    }

    const SETTLE: Duration = Duration::from_secs(10);

    #[test]
    fn a_lasting_outage_is_told_once_and_its_recovery_once() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut alerts = Alerts::new(SETTLE);
        alerts.observe(&change("crm", Health::Healthy), at(0));
        assert_eq!(alerts.due(at(20)), vec![], "up from the start is not news");
        alerts.observe(&change("crm", Health::Down), at(21));
        // Retries in between: connecting, down again.
        alerts.observe(&change("crm", Health::Connecting), at(25));
        alerts.observe(&change("crm", Health::Down), at(26));
        assert_eq!(alerts.due(at(30)), vec![], "not yet settled");
        assert_eq!(
            alerts.next_due(),
            Some(at(31)),
            "retries do not restart the wait"
        );
        assert_eq!(
            alerts.due(at(31)),
            vec![Alert::Down {
                id: "crm".into(),
                reason: Some("connection refused".into())
            }]
        );
        assert_eq!(alerts.due(at(60)), vec![], "told once");
        alerts.observe(&change("crm", Health::Healthy), at(61));
        assert_eq!(
            alerts.due(at(71)),
            vec![Alert::Recovered { id: "crm".into() }]
        );
        assert_eq!(alerts.next_due(), None);
    }

    #[test]
    fn connectors_needing_a_sign_in_are_told_once_together() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut alerts = Alerts::new(SETTLE);
        for id in ["wiki", "crm", "docs"] {
            alerts.observe(&change(id, Health::Healthy), at(0));
        }
        // The laptop wakes: two need a sign-in, one is down.
        alerts.observe(&change("wiki", Health::NeedsSignIn), at(20));
        alerts.observe(&change("crm", Health::NeedsSignIn), at(21));
        alerts.observe(&change("docs", Health::Down), at(21));
        assert_eq!(
            alerts.due(at(40)),
            vec![
                Alert::Down {
                    id: "docs".into(),
                    reason: Some("connection refused".into())
                },
                Alert::SignInNeeded {
                    ids: vec!["crm".into(), "wiki".into()]
                },
            ]
        );
        assert_eq!(alerts.due(at(60)), vec![], "told once");
        alerts.observe(&change("wiki", Health::Healthy), at(61));
        assert_eq!(
            alerts.due(at(80)),
            vec![Alert::Recovered { id: "wiki".into() }]
        );
    }

    #[test]
    fn flapping_says_nothing_until_it_settles() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut alerts = Alerts::new(SETTLE);
        for s in 0..30 {
            let to = if s % 2 == 0 {
                Health::Down
            } else {
                Health::Healthy
            };
            alerts.observe(&change("wiki", to), at(s));
            assert_eq!(alerts.due(at(s)), vec![], "flap at {s} s");
        }
        assert_eq!(
            alerts.due(at(39)),
            vec![],
            "it ended up, and was never told down"
        );
    }

    #[test]
    fn switching_off_or_removing_is_not_an_outage() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        let mut alerts = Alerts::new(SETTLE);
        alerts.observe(&change("a", Health::Down), at(0));
        alerts.observe(&change("a", Health::Disabled), at(1));
        alerts.observe(&change("b", Health::Down), at(0));
        alerts.observe(&EngineEvent::Removed { id: "b".into() }, at(1));
        assert_eq!(alerts.due(at(60)), vec![]);
    }
}
