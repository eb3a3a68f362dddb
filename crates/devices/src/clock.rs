//! The machine's virtual clock (QEMU's QEMU_CLOCK_VIRTUAL): time that
//! passes only while the guest runs.  It stands still before the guest
//! first starts (`-S`) and whenever the VM is stopped, so a watchdog does
//! not bite a paused guest and `-rtc clock=vm` loses the paused time.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// Shared by the machine, which starts and stops it, and the devices
/// that read it.
#[derive(Debug, Clone, Default)]
pub struct VirtualClock(Arc<Mutex<Elapsed>>);

#[derive(Debug, Default)]
struct Elapsed {
    /// Time run up to the last stop.
    before: Duration,
    /// When it last started, while it runs.
    since: Option<Instant>,
}

impl VirtualClock {
    /// A clock at zero, stopped.
    pub fn new() -> VirtualClock {
        VirtualClock::default()
    }

    fn state(&self) -> MutexGuard<'_, Elapsed> {
        crate::lock(&self.0)
    }

    /// The time the guest has run.
    pub fn now(&self) -> Duration {
        let state = self.state();
        state.before + state.since.map_or(Duration::ZERO, |since| since.elapsed())
    }

    pub fn is_running(&self) -> bool {
        self.state().since.is_some()
    }

    pub fn start(&self) {
        let mut state = self.state();
        if state.since.is_none() {
            state.since = Some(Instant::now());
        }
    }

    pub fn stop(&self) {
        let mut state = self.state();
        if let Some(since) = state.since.take() {
            state.before += since.elapsed();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_passes_only_while_it_runs() {
        let clock = VirtualClock::new();
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), Duration::ZERO);
        clock.start();
        std::thread::sleep(Duration::from_millis(20));
        clock.stop();
        let ran = clock.now();
        assert!(ran >= Duration::from_millis(20), "{ran:?}");
        std::thread::sleep(Duration::from_millis(20));
        assert_eq!(clock.now(), ran);
        assert!(!clock.is_running());
        clock.start();
        clock.start();
        assert!(clock.is_running() && clock.now() >= ran);
    }
}
