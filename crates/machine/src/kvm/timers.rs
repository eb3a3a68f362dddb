//! The timer thread: it waits on every timed device's timerfd and calls
//! the device whose timer fired.  Devices arm their own timers from
//! whichever thread changes their schedule, so nothing else talks to it.
//! (A thread of its own rather than the main loop: an RTC ticking at
//! 8 kHz then never waits behind a QMP command, and the main loop knows
//! no devices.)

use std::os::fd::RawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use devices::{lock, Timed};
use mio::unix::SourceFd;
use mio::{Events, Interest, Poll, Token, Waker};

/// The waker's token; the devices' tokens are their indices.
const STOP: Token = Token(usize::MAX);

type Device = Arc<Mutex<dyn Timed>>;

pub struct Timers {
    devices: Vec<Device>,
    stop: Option<(Arc<AtomicBool>, Arc<Waker>, JoinHandle<()>)>,
}

impl std::fmt::Debug for Timers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Timers")
            .field("devices", &self.devices.len())
            .finish()
    }
}

impl Timers {
    /// Starts the thread, when there is a device to serve.
    pub fn start(devices: Vec<Device>) -> Result<Timers, String> {
        if devices.is_empty() {
            return Ok(Timers {
                devices,
                stop: None,
            });
        }
        let fail = |e: std::io::Error| format!("cannot start the device timers: {e}");
        let poll = Poll::new().map_err(fail)?;
        let waker = Arc::new(Waker::new(poll.registry(), STOP).map_err(fail)?);
        let fds: Vec<RawFd> = devices.iter().map(|d| lock(d).timer_fd()).collect();
        for (index, fd) in fds.iter().enumerate() {
            poll.registry()
                .register(&mut SourceFd(fd), Token(index), Interest::READABLE)
                .map_err(fail)?;
        }
        let stopping = Arc::new(AtomicBool::new(false));
        let served = devices.clone();
        let flag = stopping.clone();
        let thread = std::thread::Builder::new()
            .name("timers".into())
            .spawn(move || serve(poll, &served, &flag))
            .map_err(fail)?;
        Ok(Timers {
            devices,
            stop: Some((stopping, waker, thread)),
        })
    }

    /// The virtual clock runs again: each device re-arms what it stopped.
    pub fn clock_started(&self) {
        for device in &self.devices {
            lock(device).clock_started();
        }
    }

    /// Ends the thread.
    pub fn finish(&mut self) {
        if let Some((stopping, waker, thread)) = self.stop.take() {
            stopping.store(true, Ordering::SeqCst);
            if let Err(error) = waker.wake() {
                log::error!("cannot stop the device timers: {error}");
                return;
            }
            let _ = thread.join();
        }
    }
}

impl Drop for Timers {
    fn drop(&mut self) {
        self.finish();
    }
}

fn serve(mut poll: Poll, devices: &[Device], stopping: &AtomicBool) {
    let mut events = Events::with_capacity(16);
    loop {
        if let Err(error) = poll.poll(&mut events, None) {
            if error.kind() != std::io::ErrorKind::Interrupted {
                log::error!("the device timers stopped: {error}");
                return;
            }
        }
        if stopping.load(Ordering::SeqCst) {
            return;
        }
        for event in &events {
            if let Some(device) = devices.get(event.token().0) {
                lock(device).expired();
            }
        }
    }
}
