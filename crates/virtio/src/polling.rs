//! Adaptive polling of an I/O thread's eventfds: before the thread goes to
//! sleep it checks them for a while without sleeping, because the guest's
//! next notify often comes sooner than a sleeping thread can be woken (a
//! scheduler round trip, and on a virtual host an IPI through the
//! hypervisor).  The guest's notify still exits to KVM; what polling saves
//! is the host thread's wake-up, and it costs CPU time.  The window
//! follows QEMU's iothread rule: it starts at 4 µs, doubles when an event
//! comes after it but within [`MAX_WINDOW`], and drops to nothing when an
//! event comes later than that, so an idle device costs one window, then
//! sleeps.  With one host CPU there is no polling: the thread would only
//! keep the vCPU that makes the next request from running.

use std::io;
use std::time::{Duration, Instant};

/// The longest a thread polls.  QEMU's iothreads stop at 32 µs; a guest
/// under nested virtualisation takes 100–200 µs between one request's
/// completion and its next notify (`cargo xtask bench blk` shows what the
/// polling buys in requests/s and what it costs in CPU per request).
pub const MAX_WINDOW: Duration = Duration::from_micros(256);
const FIRST_WINDOW: Duration = Duration::from_micros(4);

#[derive(Debug)]
pub struct AdaptivePoll {
    window: Duration,
    /// False on a host with one CPU.
    enabled: bool,
}

impl Default for AdaptivePoll {
    fn default() -> Self {
        AdaptivePoll {
            window: Duration::ZERO,
            enabled: std::thread::available_parallelism().is_ok_and(|cpus| cpus.get() > 1),
        }
    }
}

impl AdaptivePoll {
    /// Waits, as poll(2) with no timeout does, until one of `fds` is
    /// ready; polls for the current window before it sleeps.  Returns how
    /// many are ready.
    pub fn wait(&mut self, fds: &mut [libc::pollfd]) -> io::Result<usize> {
        let started = Instant::now();
        let ready = loop {
            let spinning = started.elapsed() < self.window;
            // SAFETY: `fds` is a slice of pollfd that lives across the call.
            let ready = unsafe {
                libc::poll(
                    fds.as_mut_ptr(),
                    fds.len() as libc::nfds_t,
                    if spinning { 0 } else { -1 },
                )
            };
            match ready {
                0 => std::hint::spin_loop(),
                ready if ready > 0 => break ready as usize,
                _ => return Err(io::Error::last_os_error()),
            }
        };
        self.adjust(started.elapsed());
        Ok(ready)
    }

    /// Checks `ready` again and again, without sleeping, for the current
    /// window; whether it came true.  For what no fd signals, such as a
    /// ring a driver fills while the device has asked it not to notify.
    /// When it did not, [`AdaptivePoll::missed_by`] tells how late it was.
    pub fn spin(&mut self, mut ready: impl FnMut() -> bool) -> bool {
        let started = Instant::now();
        loop {
            if ready() {
                return true;
            }
            if started.elapsed() >= self.window {
                return false;
            }
            std::hint::spin_loop();
        }
    }

    /// What a [`AdaptivePoll::spin`] waited for came `waited` after the
    /// spin began: the window follows the same rule as for fds.
    pub fn missed_by(&mut self, waited: Duration) {
        self.adjust(waited);
    }

    /// QEMU's rule: keep a window that caught the event; grow one that
    /// was too short, up to the maximum; drop it when the wait was longer
    /// than the maximum.
    fn adjust(&mut self, waited: Duration) {
        if waited <= self.window || !self.enabled {
            return;
        }
        self.window = if waited > MAX_WINDOW {
            Duration::ZERO
        } else if self.window.is_zero() {
            FIRST_WINDOW
        } else {
            (self.window * 2).min(MAX_WINDOW)
        };
    }

    #[cfg(test)]
    fn window(&self) -> Duration {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enabled() -> AdaptivePoll {
        AdaptivePoll {
            window: Duration::ZERO,
            enabled: true,
        }
    }

    #[test]
    fn the_window_grows_while_events_come_soon_and_drops_when_one_is_late() {
        let mut poll = enabled();
        poll.adjust(Duration::from_micros(100));
        assert_eq!(poll.window(), FIRST_WINDOW);
        for _ in 0..5 {
            poll.adjust(Duration::from_micros(100));
        }
        assert_eq!(poll.window(), Duration::from_micros(128));
        poll.adjust(Duration::from_micros(100));
        assert_eq!(poll.window(), Duration::from_micros(128), "it caught it");
        poll.adjust(Duration::from_micros(200));
        poll.adjust(Duration::from_micros(250));
        assert_eq!(poll.window(), MAX_WINDOW);
        poll.adjust(Duration::from_millis(5));
        assert_eq!(poll.window(), Duration::ZERO, "an idle spell");
    }

    #[test]
    fn it_returns_when_an_eventfd_is_signalled_before_or_during_the_wait() {
        use std::os::fd::AsRawFd;
        use vmm_sys_util::eventfd::EventFd;
        let event = EventFd::new(0).unwrap();
        let mut poll = enabled();
        let mut fds = [libc::pollfd {
            fd: event.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        }];
        event.write(1).unwrap();
        assert_eq!(poll.wait(&mut fds).unwrap(), 1);
        event.read().unwrap();
        let writer = event.try_clone().unwrap();
        let thread = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.write(1).unwrap();
        });
        fds[0].revents = 0;
        assert_eq!(poll.wait(&mut fds).unwrap(), 1);
        assert_ne!(fds[0].revents & libc::POLLIN, 0);
        thread.join().unwrap();
        assert_eq!(poll.window(), Duration::ZERO, "20 ms is no time to poll");
    }

    #[test]
    fn with_one_cpu_it_never_polls() {
        let mut poll = AdaptivePoll {
            window: Duration::ZERO,
            enabled: false,
        };
        poll.adjust(Duration::from_micros(10));
        assert_eq!(poll.window(), Duration::ZERO);
    }
}
