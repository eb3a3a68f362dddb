//! Where the guest's clock comes from: `-rtc base=` (where it starts) and
//! `-rtc clock=` (what it follows: the host's wall clock, the host's
//! monotonic clock, or the virtual clock that stops with the VM).

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::VirtualClock;

/// `-rtc clock=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtcClock {
    /// The host's wall clock, following its steps.
    #[default]
    Host,
    /// The host's monotonic clock: runs while the VM is stopped, ignores
    /// steps of the wall clock.
    Realtime,
    /// The virtual clock: stands still while the VM is stopped.
    Vm,
}

/// `-rtc base=`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RtcBase {
    #[default]
    Utc,
    /// The host's local time, this many seconds east of UTC.
    LocalTime { utc_offset: i64 },
    /// This time (seconds since the epoch) when the machine is built.
    At(i64),
}

/// What `-rtc` asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RtcConfig {
    pub base: RtcBase,
    pub clock: RtcClock,
}

pub const NANOS_PER_SECOND: i128 = 1_000_000_000;

/// The host's wall clock, in nanoseconds since the epoch.
pub fn wall_nanos() -> i128 {
    match SystemTime::now().duration_since(UNIX_EPOCH) {
        Ok(since) => since.as_nanos() as i128,
        Err(before) => -(before.duration().as_nanos() as i128),
    }
}

/// The clock `-rtc clock=` chose, in nanoseconds since the epoch: the
/// wall clock itself, or the wall time at start plus the time the
/// monotonic or virtual clock has counted since.
#[derive(Debug)]
pub struct TimeSource {
    clock: RtcClock,
    start_wall: i128,
    start: Instant,
    start_virtual: Duration,
    virtual_clock: VirtualClock,
}

impl TimeSource {
    pub fn new(clock: RtcClock, virtual_clock: VirtualClock) -> TimeSource {
        TimeSource {
            clock,
            start_wall: wall_nanos(),
            start: Instant::now(),
            start_virtual: virtual_clock.now(),
            virtual_clock,
        }
    }

    pub fn now(&self) -> i128 {
        match self.clock {
            RtcClock::Host => wall_nanos(),
            RtcClock::Realtime => self.start_wall + self.start.elapsed().as_nanos() as i128,
            RtcClock::Vm => {
                let ran = self.virtual_clock.now().saturating_sub(self.start_virtual);
                self.start_wall + ran.as_nanos() as i128
            }
        }
    }

    /// How long until the clock reads `at`; `None` while it stands still.
    pub fn until(&self, at: i128) -> Option<Duration> {
        if self.clock == RtcClock::Vm && !self.virtual_clock.is_running() {
            return None;
        }
        let nanos = (at - self.now()).clamp(0, u64::MAX as i128) as u64;
        Some(Duration::from_nanos(nanos))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vm_clock_stands_still_while_the_vm_is_stopped() {
        let virtual_clock = VirtualClock::new();
        let source = TimeSource::new(RtcClock::Vm, virtual_clock.clone());
        let frozen = source.now();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(source.now(), frozen);
        assert_eq!(source.until(frozen + 1), None);
        virtual_clock.start();
        std::thread::sleep(Duration::from_millis(20));
        assert!(source.now() >= frozen + 20_000_000);
        assert!(source.until(frozen).is_some());
    }

    #[test]
    fn host_and_realtime_clocks_run_from_the_wall_time() {
        for clock in [RtcClock::Host, RtcClock::Realtime] {
            let source = TimeSource::new(clock, VirtualClock::new());
            let difference = source.now() - wall_nanos();
            assert!(difference.abs() < 50_000_000, "{clock:?}: {difference}");
            assert!(source.until(source.now() + 1_000_000).is_some());
        }
    }
}
