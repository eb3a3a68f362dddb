//! Device timers.  A device with a timer owns a timerfd and arms it from
//! whichever thread changes its schedule; the machine's timer thread
//! watches every device's timerfd and calls the device when it fires.

use std::os::fd::{AsRawFd, RawFd};
use std::time::Duration;

use vmm_sys_util::timerfd::TimerFd;

/// A device the timer thread serves.
pub trait Timed: Send {
    /// The timerfd to watch (it lives as long as the device).
    fn timer_fd(&self) -> RawFd;

    /// Its timer fired.
    fn expired(&mut self);

    /// The virtual clock runs again after a stop: re-arm what it stopped.
    fn clock_started(&mut self) {}
}

/// A one-shot timer on the host's monotonic clock.
#[derive(Debug)]
pub struct DeviceTimer(TimerFd);

impl DeviceTimer {
    pub fn new() -> std::io::Result<DeviceTimer> {
        let timer = TimerFd::new().map_err(std::io::Error::from)?;
        // Non-blocking, so taking an expiry that a re-arm cancelled does
        // not wait for the next one.
        // SAFETY: F_SETFL on the timerfd this function owns; no memory is
        // passed.
        if unsafe { libc::fcntl(timer.as_raw_fd(), libc::F_SETFL, libc::O_NONBLOCK) } < 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(DeviceTimer(timer))
    }

    /// Fires once, `after` from now (at once for zero).
    pub fn arm(&mut self, after: Duration) {
        // A zero duration would disarm the timerfd.
        let after = after.max(Duration::from_nanos(1));
        if let Err(error) = self.0.reset(after, None) {
            log::error!("cannot arm a device timer: {error}");
        }
    }

    pub fn disarm(&mut self) {
        if let Err(error) = self.0.clear() {
            log::error!("cannot disarm a device timer: {error}");
        }
    }

    /// Takes the expiry the timer thread saw, so the fd stops being
    /// readable (nothing to take when it was re-armed since it fired).
    pub fn acknowledge(&mut self) {
        let _ = self.0.wait();
    }

    pub fn fd(&self) -> RawFd {
        self.0.as_raw_fd()
    }
}
