//! A monitor's socket over its life: bound, inherited or connected out at
//! start; accepting clients; and, connecting out with `reconnect`, trying
//! again without blocking the main loop.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::socket::{os_error, resolve, Inherited, Listener, SocketAddress, Stream};

/// One monitor as the command line describes it (`-qmp`, or `-chardev
/// socket` with `-mon mode=control`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MonitorSpec {
    /// The chardev id: `compat_monitorN` for `-qmp`, `id=` for `-chardev`.
    pub chardev: String,
    pub address: SocketAddress,
    /// Listen for clients (`server=on`) rather than connect out.
    pub server: bool,
    /// With `server`: wait at start until the first client connects.
    pub wait: bool,
    /// Connecting out: try again this long after the connection fails or ends.
    pub reconnect: Option<Duration>,
    /// `-mon pretty=on`.
    pub pretty: bool,
    /// The command-line option that asked for this monitor, for messages.
    pub origin: String,
}

impl MonitorSpec {
    /// The chardev as QEMU describes it when waiting for a client.
    fn describe(&self) -> String {
        let server = if self.server { ",server=on" } else { "" };
        format!("disconnected:{}{server}", self.address)
    }
}

/// How long to wait before accepting again after running out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);

#[derive(Debug)]
pub struct Endpoint {
    pub spec: MonitorSpec,
    pub listener: Option<Listener>,
    /// Connecting out with `reconnect`: when to try again.
    reconnect_at: Option<Instant>,
    /// Where a TCP reconnect goes, resolved once at start.
    target: Option<SocketAddr>,
    /// Accepting failed for lack of resources: when to try again.
    accept_retry_at: Option<Instant>,
}

impl Endpoint {
    /// Opens the monitor's socket; `inherited` is its descriptor, if the
    /// command line named one.  Returns the endpoint and the first client,
    /// if there is one already (connected out, passed in, or waited for).
    /// `say` prints what the user should hear.
    pub fn open(
        spec: MonitorSpec,
        inherited: Option<Inherited>,
        say: &mut dyn FnMut(String),
    ) -> Result<(Endpoint, Option<Stream>), String> {
        let mut endpoint = Endpoint {
            spec,
            listener: None,
            reconnect_at: None,
            target: None,
            accept_retry_at: None,
        };
        let mut client = None;
        let spec = endpoint.spec.clone();
        match (inherited, spec.server) {
            // A listening socket is served whatever `server=` says.
            (Some(Inherited::Listener(listener)), _) => endpoint.listener = Some(listener),
            (Some(Inherited::Stream(stream)), false) => client = Some(stream),
            (Some(Inherited::Stream(_)), true) => {
                return Err("Failed to listen on fd socket: Invalid argument".to_string())
            }
            (None, true) => endpoint.listener = Some(Listener::bind(&spec.address)?),
            (None, false) if spec.reconnect.is_some() => {
                if let SocketAddress::Tcp { host, port } = &spec.address {
                    endpoint.target = resolve(host, port)?.first().copied();
                }
                match Stream::start_connect(&spec.address, endpoint.target) {
                    Ok(stream) => client = Some(stream),
                    Err(error) => {
                        say(format!(
                            "Unable to connect character device {}: {error}",
                            spec.chardev
                        ));
                        endpoint.schedule_reconnect();
                    }
                }
            }
            (None, false) => client = Some(Stream::connect(&spec.address)?),
        }
        if let (Some(listener), true) = (&endpoint.listener, spec.wait) {
            say(format!(
                "{}: info: QEMU waiting for connection on: {}",
                spec.origin,
                spec.describe()
            ));
            client = Some(wait_for_client(listener).map_err(|error| os_error(&error))?);
        }
        Ok((endpoint, client))
    }

    /// A client waiting to be accepted, if any.  Running out of descriptors
    /// is logged once and retried a little later.
    pub fn accept(&mut self) -> Option<Stream> {
        if self.accept_retry_at.is_some_and(|at| Instant::now() < at) {
            return None;
        }
        let listener = self.listener.as_ref()?;
        loop {
            match listener.accept() {
                Ok(stream) => {
                    self.accept_retry_at = None;
                    return Some(stream);
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return None,
                // The client went away before it was accepted, or a signal came.
                Err(error)
                    if matches!(
                        error.kind(),
                        io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted
                    ) || error.raw_os_error() == Some(libc::EPROTO) => {}
                Err(error) => {
                    if self.accept_retry_at.is_none() {
                        log::warn!(
                            "cannot accept a QMP client on {}: {}",
                            self.spec.address,
                            os_error(&error)
                        );
                    }
                    self.accept_retry_at = Instant::now().checked_add(ACCEPT_RETRY);
                    return None;
                }
            }
        }
    }

    /// Whether accepting was put off and may be tried again now: readiness
    /// will not say so, since the clients waiting were already reported.
    pub fn accept_due(&self) -> bool {
        self.accept_retry_at.is_some_and(|at| at <= Instant::now())
    }

    /// After a connection out failed or ended: try again later, if asked to.
    pub fn schedule_reconnect(&mut self) {
        if self.listener.is_none() {
            // A delay too long to add to now means never.
            self.reconnect_at = self
                .spec
                .reconnect
                .and_then(|delay| Instant::now().checked_add(delay));
        }
    }

    /// Starts connecting out again, if that is due.
    pub fn reconnect(&mut self) -> Option<Stream> {
        if self.reconnect_at.is_none_or(|at| Instant::now() < at) {
            return None;
        }
        self.reconnect_at = None;
        match Stream::start_connect(&self.spec.address, self.target) {
            Ok(stream) => Some(stream),
            Err(error) => {
                log::debug!("{}: {error}", self.spec.chardev);
                self.schedule_reconnect();
                None
            }
        }
    }

    /// The next time [`Endpoint::accept`] or [`Endpoint::reconnect`] has work.
    pub fn deadline(&self) -> Option<Instant> {
        match (self.reconnect_at, self.accept_retry_at) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// Blocks until a client connects to `listener` (`server=on,wait=on`).
fn wait_for_client(listener: &Listener) -> io::Result<Stream> {
    loop {
        let mut poll_fd = libc::pollfd {
            fd: listener.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes only the one pollfd we pass.
        if unsafe { libc::poll(&mut poll_fd, 1, -1) } < 0 {
            let error = io::Error::last_os_error();
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(error);
            }
            continue;
        }
        match listener.accept() {
            Ok(stream) => return Ok(stream),
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => continue,
            Err(error) => return Err(error),
        }
    }
}
