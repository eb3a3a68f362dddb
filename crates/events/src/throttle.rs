//! QEMU's event rate limits (monitor/monitor.c): events a guest can trigger
//! at will go out at most once a second per key.  The first goes out at
//! once; later ones within the second replace a single pending event, which
//! goes out when the second ends, keeping the time it happened.

use std::collections::hash_map::{Entry, HashMap};
use std::time::{Duration, Instant};

use qmp::Value;

use crate::Stamped;

/// The length of a throttling window.
pub const RATE: Duration = Duration::from_secs(1);

/// Which events share a window: the event name and, for some events, a
/// member of its data.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottleKey {
    name: &'static str,
    instance: Option<String>,
}

/// Something that may be rate-limited.
pub trait Throttled {
    /// `None` when it is never throttled.
    fn throttle_key(&self) -> Option<ThrottleKey>;
}

impl Throttled for Stamped {
    fn throttle_key(&self) -> Option<ThrottleKey> {
        throttle_key(self.event.name(), || self.event.data())
    }
}

/// QEMU's table: which events are limited, and by which member of their
/// data one window is told from another.  `data` is computed only for
/// events that need it.
fn throttle_key(name: &'static str, data: impl FnOnce() -> Option<Value>) -> Option<ThrottleKey> {
    let instance = match name {
        "RTC_CHANGE"
        | "WATCHDOG"
        | "BALLOON_CHANGE"
        | "QUORUM_FAILURE"
        | "HV_BALLOON_STATUS_REPORT" => {
            return Some(ThrottleKey {
                name,
                instance: None,
            })
        }
        "QUORUM_REPORT_BAD" => "node-name",
        "VSERPORT_CHANGE" => "id",
        "MEMORY_DEVICE_SIZE_CHANGE" => "qom-path",
        "BLOCK_IO_ERROR" => "device",
        _ => return None,
    };
    let data = data()?;
    // An I/O error that stops the VM is always reported.
    if name == "BLOCK_IO_ERROR" && data.get("action").is_some_and(|action| action == "stop") {
        return None;
    }
    let instance = data
        .get(instance)
        .and_then(Value::as_str)
        .map(str::to_string);
    Some(ThrottleKey { name, instance })
}

/// The open windows, each with the event waiting for its end.
#[derive(Debug)]
pub struct Throttle<T = Stamped> {
    windows: HashMap<ThrottleKey, Window<T>>,
}

#[derive(Debug)]
struct Window<T> {
    ends: Instant,
    pending: Option<T>,
}

impl<T> Default for Throttle<T> {
    fn default() -> Self {
        Throttle {
            windows: HashMap::new(),
        }
    }
}

impl<T: Throttled> Throttle<T> {
    /// Returns the event if it goes out now; otherwise keeps it for later.
    pub fn offer(&mut self, event: T, now: Instant) -> Option<T> {
        let Some(key) = event.throttle_key() else {
            return Some(event);
        };
        match self.windows.entry(key) {
            Entry::Occupied(mut window) => {
                window.get_mut().pending = Some(event);
                None
            }
            Entry::Vacant(slot) => {
                slot.insert(Window {
                    ends: now + RATE,
                    pending: None,
                });
                Some(event)
            }
        }
    }

    /// When the earliest window ends, if any is open.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.windows.values().map(|window| window.ends).min()
    }

    /// Ends the windows due by `now`: their pending events go out and open a
    /// new window; windows with nothing pending close.
    pub fn expire(&mut self, now: Instant) -> Vec<T> {
        let mut due = Vec::new();
        self.windows.retain(|_, window| {
            if window.ends > now {
                return true;
            }
            match window.pending.take() {
                Some(event) => {
                    due.push((window.ends, event));
                    window.ends = now + RATE;
                    true
                }
                None => false,
            }
        });
        due.sort_by_key(|(ends, _)| *ends);
        due.into_iter().map(|(_, event)| event).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fake event: (name, instance, sequence number).
    #[derive(Debug, PartialEq)]
    struct Fake(&'static str, Option<&'static str>, u32);

    impl Throttled for Fake {
        fn throttle_key(&self) -> Option<ThrottleKey> {
            (self.0 != "STOP").then(|| ThrottleKey {
                name: self.0,
                instance: self.1.map(str::to_string),
            })
        }
    }

    #[test]
    fn first_goes_out_then_only_the_last_of_the_window() {
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        assert_eq!(
            throttle.offer(Fake("RTC_CHANGE", None, 1), t0),
            Some(Fake("RTC_CHANGE", None, 1))
        );
        for n in 2..=10 {
            assert_eq!(throttle.offer(Fake("RTC_CHANGE", None, n), t0), None);
        }
        assert_eq!(throttle.next_deadline(), Some(t0 + RATE));
        assert!(throttle.expire(t0 + RATE / 2).is_empty());
        assert_eq!(
            throttle.expire(t0 + RATE),
            vec![Fake("RTC_CHANGE", None, 10)]
        );
        // The window reopened when the pending event went out; it closes
        // empty a second later, and the next event goes out at once.
        assert_eq!(throttle.next_deadline(), Some(t0 + 2 * RATE));
        assert!(throttle.expire(t0 + 2 * RATE).is_empty());
        assert_eq!(throttle.next_deadline(), None);
        assert_eq!(
            throttle.offer(Fake("RTC_CHANGE", None, 11), t0 + 2 * RATE),
            Some(Fake("RTC_CHANGE", None, 11))
        );
    }

    #[test]
    fn keys_are_independent_and_unthrottled_events_pass() {
        let mut throttle = Throttle::default();
        let t0 = Instant::now();
        assert!(throttle
            .offer(Fake("VSERPORT_CHANGE", Some("a"), 1), t0)
            .is_some());
        assert!(throttle
            .offer(Fake("VSERPORT_CHANGE", Some("b"), 2), t0)
            .is_some());
        assert!(throttle
            .offer(Fake("VSERPORT_CHANGE", Some("a"), 3), t0)
            .is_none());
        for n in 0..5 {
            assert!(throttle.offer(Fake("STOP", None, n), t0).is_some());
        }
    }

    #[test]
    fn table_matches_qemu() {
        use serde_json::json;
        let key = |name: &'static str, data: serde_json::Value| throttle_key(name, || Some(data));
        let keyed = |name, instance: Option<&str>| {
            Some(ThrottleKey {
                name,
                instance: instance.map(str::to_string),
            })
        };
        for name in [
            "RTC_CHANGE",
            "WATCHDOG",
            "BALLOON_CHANGE",
            "QUORUM_FAILURE",
            "HV_BALLOON_STATUS_REPORT",
        ] {
            assert_eq!(key(name, json!({"id": "x"})), keyed(name, None), "{name}");
        }
        assert_eq!(
            key("VSERPORT_CHANGE", json!({"id": "c0", "open": true})),
            keyed("VSERPORT_CHANGE", Some("c0"))
        );
        assert_eq!(
            key("QUORUM_REPORT_BAD", json!({"node-name": "n1"})),
            keyed("QUORUM_REPORT_BAD", Some("n1"))
        );
        assert_eq!(
            key("MEMORY_DEVICE_SIZE_CHANGE", json!({"qom-path": "/m/d"})),
            keyed("MEMORY_DEVICE_SIZE_CHANGE", Some("/m/d"))
        );
        assert_eq!(
            key(
                "BLOCK_IO_ERROR",
                json!({"device": "d0", "action": "report"})
            ),
            keyed("BLOCK_IO_ERROR", Some("d0"))
        );
        assert_eq!(
            key("BLOCK_IO_ERROR", json!({"device": "d0", "action": "stop"})),
            None
        );
        for name in [
            "STOP",
            "RESUME",
            "SHUTDOWN",
            "RESET",
            "POWERDOWN",
            "NIC_RX_FILTER_CHANGED",
        ] {
            assert_eq!(key(name, json!({})), None, "{name}");
        }
    }

    #[test]
    fn run_state_events_pass_unthrottled() {
        use crate::{Event, ShutdownEvent, StopEvent, Timestamp};
        use qmp::types::ShutdownCause;
        let stamped = |event: Event| Stamped {
            event,
            time: Timestamp::now(),
        };
        assert_eq!(stamped(StopEvent {}.into()).throttle_key(), None);
        assert_eq!(
            stamped(ShutdownEvent::new(ShutdownCause::GuestShutdown).into()).throttle_key(),
            None
        );
    }
}
