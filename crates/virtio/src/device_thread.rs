//! A device's thread while the driver runs the device: started on
//! activation with an event that tells it to end, ended (and joined) on a
//! reset or when the device goes.

use std::io;
use std::os::fd::RawFd;
use std::thread::JoinHandle;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::device::ActivateError;

#[derive(Debug)]
pub(crate) struct DeviceThread {
    stop: EventFd,
    thread: JoinHandle<()>,
}

impl DeviceThread {
    /// Runs `body` on a thread named `name`; `body` gets the event that is
    /// signalled when it must return.
    pub fn spawn(
        name: String,
        body: impl FnOnce(EventFd) + Send + 'static,
    ) -> Result<DeviceThread, ActivateError> {
        let error = |what: &str, e: std::io::Error| ActivateError(format!("cannot {what}: {e}"));
        let stop = EventFd::new(EFD_NONBLOCK).map_err(|e| error("create an event", e))?;
        let theirs = stop.try_clone().map_err(|e| error("share an event", e))?;
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || body(theirs))
            .map_err(|e| error(&format!("start the thread {name}"), e))?;
        Ok(DeviceThread { stop, thread })
    }

    /// Tells the thread to end and waits for it.
    pub fn stop(self) {
        if let Err(error) = self.stop.write(1) {
            log::error!("cannot stop a device's thread: {error}");
            return;
        }
        let _ = self.thread.join();
    }
}

/// Waits until one of `wanted` (an fd and the poll events it waits for)
/// is ready; returns each one's events, in order.
pub(crate) fn wait_for(wanted: &[(RawFd, libc::c_short)]) -> io::Result<Vec<libc::c_short>> {
    let mut fds: Vec<libc::pollfd> = wanted
        .iter()
        .map(|&(fd, events)| libc::pollfd {
            fd,
            events,
            revents: 0,
        })
        .collect();
    loop {
        // SAFETY: `fds` is a live array of fds.len() pollfd entries.
        let ready = unsafe { libc::poll(fds.as_mut_ptr(), fds.len() as libc::nfds_t, -1) };
        if ready >= 0 {
            return Ok(fds.iter().map(|fd| fd.revents).collect());
        }
        let error = io::Error::last_os_error();
        if error.kind() != io::ErrorKind::Interrupted {
            return Err(error);
        }
    }
}
