//! Receive moderation.  A NIC thread that hands every frame over the
//! moment it arrives makes a busy guest take an interrupt every few
//! frames: its driver empties the ring, asks to be interrupted again, and
//! the next frame does it.  Each interrupt costs exits, several of them
//! under nested virtualisation.  So once the thread has raised a receive
//! interrupt, it leaves the tap unread for as long as the guest takes on
//! average to answer one: what arrives meanwhile goes over in one batch,
//! which the driver, then at work on the interrupt, takes without another.
//! A guest that answers in microseconds holds frames back microseconds;
//! the first frame after a quiet spell goes at once.

use std::io;
use std::os::fd::RawFd;
use std::time::Duration;

use devices::DeviceTimer;

/// The longest pause: a guest slower than this to answer gets its frames
/// anyway, rather than a stream that stalls.
pub const MAX_PAUSE: Duration = Duration::from_millis(2);

#[derive(Debug)]
pub(super) struct ReceivePause {
    timer: DeviceTimer,
    on: bool,
}

impl ReceivePause {
    pub fn new() -> io::Result<ReceivePause> {
        Ok(ReceivePause {
            timer: DeviceTimer::new()?,
            on: false,
        })
    }

    /// Stops reading the tap for `length`, at most [`MAX_PAUSE`]; not at
    /// all for zero.
    pub fn begin(&mut self, length: Duration) {
        if length.is_zero() {
            return;
        }
        self.timer.arm(length.min(MAX_PAUSE));
        self.on = true;
    }

    pub fn is_on(&self) -> bool {
        self.on
    }

    /// What to wait on for the pause's end; -1 (which poll skips) when
    /// there is no pause.
    pub fn fd(&self) -> RawFd {
        if self.on {
            self.timer.fd()
        } else {
            -1
        }
    }

    /// The pause is over (its fd was readable).
    pub fn end(&mut self) {
        self.timer.acknowledge();
        self.on = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wait_for;
    use std::time::Instant;

    /// Pauses for `length` and waits for the end: how long it took.
    fn pause_for(pause: &mut ReceivePause, length: Duration) -> Duration {
        let started = Instant::now();
        pause.begin(length);
        assert!(pause.is_on());
        let events = wait_for(&[(pause.fd(), libc::POLLIN)]).unwrap();
        assert_ne!(events[0] & libc::POLLIN, 0);
        pause.end();
        assert!(!pause.is_on());
        started.elapsed()
    }

    #[test]
    fn a_pause_lasts_as_long_as_asked_but_never_longer_than_the_most() {
        let mut pause = ReceivePause::new().unwrap();
        pause.begin(Duration::ZERO);
        assert!(!pause.is_on(), "no pause for a guest not yet measured");
        assert_eq!(pause.fd(), -1);

        let took = pause_for(&mut pause, Duration::from_millis(1));
        assert!(took >= Duration::from_millis(1), "{took:?}");
        let took = pause_for(&mut pause, Duration::from_secs(10));
        assert!(took < Duration::from_secs(1), "{took:?}");
        assert_eq!(pause.fd(), -1);
    }
}
