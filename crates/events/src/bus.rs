//! The channel events travel on, from any thread to the main loop.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use mio::Waker;

use crate::Event;

/// Wall-clock time since the Unix epoch, as QMP's `timestamp` carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timestamp {
    pub seconds: i64,
    pub microseconds: i64,
}

impl Timestamp {
    pub fn now() -> Self {
        let since_epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Timestamp {
            seconds: since_epoch.as_secs() as i64,
            microseconds: i64::from(since_epoch.subsec_micros()),
        }
    }
}

/// An event with the time it happened.
#[derive(Debug, Clone, PartialEq)]
pub struct Stamped {
    pub event: Event,
    pub time: Timestamp,
}

/// The publishing end: cheap to clone, usable from any thread.
#[derive(Debug, Clone)]
pub struct Publisher {
    sender: Sender<Stamped>,
    waker: Arc<Waker>,
}

impl Publisher {
    /// Stamps the event with the current time and hands it to the main loop.
    pub fn publish(&self, event: impl Into<Event>) {
        let stamped = Stamped {
            event: event.into(),
            time: Timestamp::now(),
        };
        log::debug!("event {}", stamped.event.name());
        // Sending fails only when the main loop is gone, and then nobody is left to tell.
        if self.sender.send(stamped).is_ok() {
            if let Err(error) = self.waker.wake() {
                log::warn!("cannot wake the main loop for an event: {error}");
            }
        }
    }
}

/// The receiving end, owned by the main loop.
#[derive(Debug)]
pub struct EventBus {
    receiver: Receiver<Stamped>,
    publisher: Publisher,
}

impl EventBus {
    /// A bus whose publishers wake `waker`, the main loop's.
    pub fn new(waker: Arc<Waker>) -> Self {
        let (sender, receiver) = channel();
        EventBus {
            receiver,
            publisher: Publisher { sender, waker },
        }
    }

    pub fn publisher(&self) -> Publisher {
        self.publisher.clone()
    }

    /// The events published so far, oldest first, without waiting.
    pub fn drain(&self) -> impl Iterator<Item = Stamped> + '_ {
        self.receiver.try_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ShutdownEvent, StopEvent};
    use mio::{Events, Poll, Token};
    use qmp::types::ShutdownCause;
    use std::time::Duration;

    #[test]
    fn publishing_from_another_thread_wakes_the_loop_in_order() {
        let mut poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(7)).unwrap());
        let bus = EventBus::new(waker);
        let publisher = bus.publisher();
        let before = Timestamp::now();
        std::thread::spawn(move || {
            publisher.publish(StopEvent {});
            publisher.publish(ShutdownEvent::new(ShutdownCause::HostSignal));
        })
        .join()
        .unwrap();

        let mut events = Events::with_capacity(4);
        poll.poll(&mut events, Some(Duration::from_secs(5)))
            .unwrap();
        assert!(events.iter().any(|e| e.token() == Token(7)));

        let got: Vec<Stamped> = bus.drain().collect();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].event.name(), "STOP");
        assert_eq!(got[0].event.data(), None);
        assert_eq!(got[1].event.name(), "SHUTDOWN");
        assert_eq!(
            got[1].event.data(),
            Some(serde_json::json!({"guest": false, "reason": "host-signal"}))
        );
        assert!(got[0].time.seconds >= before.seconds);
    }
}
