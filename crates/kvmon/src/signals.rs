//! SIGTERM, SIGINT and SIGHUP as events on the main loop, through a
//! signalfd, with the sender's pid for QEMU's "terminating on signal" line.

use std::io;
use std::mem::{size_of, zeroed};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};

use mio::event::Source;
use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};

/// The signals that shut kvmon down cleanly.
const SHUTDOWN_SIGNALS: [libc::c_int; 3] = [libc::SIGTERM, libc::SIGINT, libc::SIGHUP];

#[derive(Debug)]
pub struct Signals {
    fd: OwnedFd,
}

/// A signal received: its number and who sent it (0 for the kernel or a terminal).
#[derive(Debug, Clone, Copy)]
pub struct Received {
    pub signal: i32,
    pub sender: libc::pid_t,
}

/// The shutdown signals as a set.
fn shutdown_set() -> libc::sigset_t {
    // SAFETY: an all-zero sigset_t is valid storage for sigemptyset.
    let mut set: libc::sigset_t = unsafe { zeroed() };
    // SAFETY: the set is ours; these calls only write to it.
    unsafe {
        libc::sigemptyset(&mut set);
        for signal in SHUTDOWN_SIGNALS {
            libc::sigaddset(&mut set, signal);
        }
    }
    set
}

/// Keeps the shutdown signals off the calling thread (and threads it
/// starts), so that they reach the main loop's signalfd.
pub fn block_in_this_thread() -> io::Result<()> {
    let set = shutdown_set();
    // SAFETY: changes only the calling thread's signal mask.
    if unsafe { libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut()) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

impl Signals {
    /// Blocks the shutdown signals (threads started later inherit that) and
    /// opens a signalfd that receives them instead.
    pub fn new() -> io::Result<Signals> {
        block_in_this_thread()?;
        let set = shutdown_set();
        // SAFETY: signalfd reads the set and returns a new descriptor.
        let fd = unsafe { libc::signalfd(-1, &set, libc::SFD_NONBLOCK | libc::SFD_CLOEXEC) };
        if fd < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: signalfd returned a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        Ok(Signals { fd })
    }

    /// The signals received since the last call.
    pub fn pending(&self) -> Vec<Received> {
        let mut received = Vec::new();
        loop {
            // SAFETY: an all-zero signalfd_siginfo is a valid value.
            let mut info: libc::signalfd_siginfo = unsafe { zeroed() };
            let size = size_of::<libc::signalfd_siginfo>();
            // SAFETY: reads at most `size` bytes into `info`.
            let read = unsafe {
                libc::read(
                    self.fd.as_raw_fd(),
                    (&mut info as *mut libc::signalfd_siginfo).cast(),
                    size,
                )
            };
            if read != size as isize {
                return received;
            }
            received.push(Received {
                signal: info.ssi_signo as i32,
                sender: info.ssi_pid as libc::pid_t,
            });
        }
    }
}

impl Source for Signals {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).register(registry, token, interests)
    }

    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).reregister(registry, token, interests)
    }

    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        SourceFd(&self.fd.as_raw_fd()).deregister(registry)
    }
}
