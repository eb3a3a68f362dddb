//! The serial console's chardev: where COM1's output goes (a sink the vCPU
//! threads write to) and where its input comes from (a source on the main
//! loop) — standard input and output, a file, nothing, or one client at a
//! time of a listening socket.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mio::unix::SourceFd;
use mio::{Interest, Registry, Token};
use monitor::socket::{Listener, Stream};

use machine::Vm;

use crate::cli::{CliError, SerialSpec};

/// How long a write waits for a socket client that does not read before
/// the output is dropped (a guest must not hang on its console).
const CLIENT_WRITE_WAIT: Duration = Duration::from_millis(200);
/// Input kept for the guest beyond its FIFO; past this kvmon stops reading
/// the chardev until the guest takes some.
const PENDING_LIMIT: usize = 64 << 10;

/// The main loop's side of the console.
#[derive(Debug)]
pub struct Console {
    source: Source,
    /// Input the serial FIFO had no room for yet.
    pending: Vec<u8>,
    /// The token range given by the main loop: input, listener, client.
    first_token: usize,
}

#[derive(Debug)]
enum Source {
    None,
    Stdin {
        registered: bool,
    },
    Socket {
        listener: Listener,
        client: Option<Stream>,
        /// The sink's view of the client.
        shared: Arc<Mutex<Option<File>>>,
    },
}

/// A sink the vCPU threads write COM1's output to.
pub type Sink = Box<dyn Write + Send>;

impl Console {
    /// Opens the chardev; returns the console and COM1's sink (`None`
    /// when there is no serial port).  A server socket with `wait=on`
    /// waits here for its first client, as QEMU does.
    pub fn open(
        spec: &SerialSpec,
        say: &mut dyn FnMut(String),
    ) -> Result<(Console, Option<Sink>), CliError> {
        let console = |source| Console {
            source,
            pending: Vec::new(),
            first_token: 0,
        };
        match spec {
            SerialSpec::None => Ok((console(Source::None), None)),
            SerialSpec::Null => Ok((console(Source::None), Some(Box::new(io::sink())))),
            SerialSpec::Stdio => {
                let out = io::stdout().as_fd().try_clone_to_owned().map_err(|e| {
                    CliError::bare(format!(
                        "cannot use standard output for the serial port: {e}"
                    ))
                })?;
                Ok((
                    console(Source::Stdin { registered: false }),
                    Some(Box::new(File::from(out))),
                ))
            }
            SerialSpec::File(path) => {
                let file = File::create(path).map_err(|e| {
                    CliError::bare(format!(
                        "Could not open '{}': {}",
                        path.display(),
                        monitor::os_error(&e)
                    ))
                })?;
                Ok((console(Source::None), Some(Box::new(file))))
            }
            SerialSpec::Socket(chardev) => {
                let listener = Listener::bind(&chardev.address)
                    .map_err(|e| CliError::at(&chardev.origin, e))?;
                let shared = Arc::new(Mutex::new(None));
                let mut console = console(Source::Socket {
                    listener,
                    client: None,
                    shared: shared.clone(),
                });
                if chardev.wait {
                    say(format!(
                        "QEMU waiting for connection on: disconnected:{},server=on",
                        chardev.address
                    ));
                    console.wait_for_client();
                }
                Ok((
                    console,
                    Some(Box::new(SocketSink {
                        client: shared,
                        stalled: false,
                    })),
                ))
            }
            SerialSpec::Chardev { location, .. } => {
                Err(CliError::at(location, "the chardev was not resolved"))
            }
        }
    }

    /// Puts the console's sources on the main loop, on tokens from `first`.
    pub fn register(&mut self, registry: &Registry, first: usize) -> io::Result<()> {
        self.first_token = first;
        match &mut self.source {
            Source::None => Ok(()),
            Source::Stdin { registered } => {
                // A file or /dev/null cannot be polled: it gives no input.
                let stdin = io::stdin().as_raw_fd();
                *registered = registry
                    .register(&mut SourceFd(&stdin), Token(first), Interest::READABLE)
                    .is_ok();
                Ok(())
            }
            Source::Socket {
                listener, client, ..
            } => {
                registry.register(listener, Token(first + 1), Interest::READABLE)?;
                if let Some(client) = client {
                    registry.register(client, Token(first + 2), Interest::READABLE)?;
                }
                Ok(())
            }
        }
    }

    /// Whether `token` is one of the console's.
    pub fn owns(&self, token: Token) -> bool {
        (self.first_token..self.first_token + 3).contains(&token.0)
    }

    /// Blocks until a client connects (start-up with `wait=on`).
    fn wait_for_client(&mut self) {
        let Source::Socket { listener, .. } = &self.source else {
            return;
        };
        let mut poll = libc::pollfd {
            fd: listener.raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd, waited on without a timeout.
        unsafe { libc::poll(&mut poll, 1, -1) };
        self.accept(None);
    }

    /// Takes a waiting client if there is none (one at a time, as QEMU).
    fn accept(&mut self, registry: Option<&Registry>) {
        let Source::Socket {
            listener,
            client,
            shared,
        } = &mut self.source
        else {
            return;
        };
        if client.is_some() {
            return;
        }
        let Ok(mut stream) = listener.accept() else {
            return;
        };
        let writer = stream_fd(&stream).map(File::from);
        if let Some(registry) = registry {
            if let Err(error) =
                registry.register(&mut stream, Token(self.first_token + 2), Interest::READABLE)
            {
                log::warn!("cannot serve the serial console's client: {error}");
                return;
            }
        }
        if let Ok(mut shared) = shared.lock() {
            *shared = writer.ok();
        }
        *client = Some(stream);
    }

    /// Handles readiness on one of the console's tokens.
    pub fn ready(&mut self, token: Token, registry: &Registry, vm: &mut Vm) {
        match token.0 - self.first_token {
            0 => self.read_stdin(),
            1 => self.accept(Some(registry)),
            _ => self.read_client(registry),
        }
        self.feed(vm, registry);
    }

    /// Gives the guest what it has room for, reading more once there is
    /// room again; true while input waits.
    pub fn feed(&mut self, vm: &mut Vm, registry: &Registry) -> bool {
        if !self.pending.is_empty() {
            let was_full = self.room() == 0;
            let taken = vm.console_input(&self.pending);
            self.pending.drain(..taken);
            if was_full && self.room() > 0 {
                // Reading stopped at the limit, and no readiness comes for
                // what still waits in the chardev.
                self.read_stdin();
                self.read_client(registry);
            }
        }
        !self.pending.is_empty()
    }

    /// How much more input kvmon takes from the chardev now.
    fn room(&self) -> usize {
        PENDING_LIMIT.saturating_sub(self.pending.len())
    }

    fn read_stdin(&mut self) {
        let Source::Stdin { registered: true } = self.source else {
            return;
        };
        // Read what is there without blocking: stdin is shared with the
        // terminal, so kvmon does not make it non-blocking.
        let mut available: libc::c_int = 0;
        // SAFETY: FIONREAD writes one int.
        unsafe { libc::ioctl(0, libc::FIONREAD, &mut available) };
        let wanted = usize::try_from(available).unwrap_or(0).min(self.room());
        if wanted == 0 {
            return;
        }
        let mut buffer = vec![0u8; wanted];
        // SAFETY: reads at most `wanted` bytes into a buffer of that size;
        // unbuffered, so nothing read is held back from the guest.
        let read = unsafe { libc::read(0, buffer.as_mut_ptr().cast(), wanted) };
        match usize::try_from(read) {
            Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
            Err(_) => log::warn!(
                "cannot read standard input for the serial port: {}",
                io::Error::last_os_error()
            ),
        }
    }

    fn read_client(&mut self, registry: &Registry) {
        let Source::Socket {
            client: Some(stream),
            shared,
            ..
        } = &mut self.source
        else {
            return;
        };
        let mut buffer = [0u8; 4096];
        let closed = loop {
            let room = PENDING_LIMIT.saturating_sub(self.pending.len());
            if room == 0 {
                break false;
            }
            match stream.read(&mut buffer[..room.min(4096)]) {
                Ok(0) => break true,
                Ok(n) => self.pending.extend_from_slice(&buffer[..n]),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => break false,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => break true,
            }
        };
        if closed {
            let _ = registry.deregister(stream);
            if let Ok(mut shared) = shared.lock() {
                *shared = None;
            }
            if let Source::Socket { client, .. } = &mut self.source {
                *client = None;
            }
            // A client that waited meanwhile is next.
            self.accept(Some(registry));
        }
    }
}

/// A second descriptor for the client, for the vCPU threads' writes.
fn stream_fd(stream: &Stream) -> io::Result<OwnedFd> {
    match stream {
        Stream::Unix(stream) => stream.as_fd().try_clone_to_owned(),
        Stream::Tcp(stream) => stream.as_fd().try_clone_to_owned(),
    }
}

/// COM1's output to the socket's client, if one is connected.  A client
/// that stops reading gets CLIENT_WRITE_WAIT once; after that its output is
/// dropped until it reads again, so that the guest is not slowed down.
struct SocketSink {
    client: Arc<Mutex<Option<File>>>,
    stalled: bool,
}

/// Waits up to `timeout` for `fd` to take output; false on a timeout.
fn writable(fd: std::os::fd::RawFd, timeout: Duration) -> bool {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLOUT,
            revents: 0,
        };
        // SAFETY: one valid pollfd, with a timeout.
        match unsafe { libc::poll(&mut poll, 1, left.as_millis() as i32) } {
            1.. => return true,
            0 => return false,
            // Interrupted (a vCPU kick): wait on.
            _ => {}
        }
    }
}

impl Write for SocketSink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let Ok(mut client) = self.client.lock() else {
            return Ok(data.len());
        };
        let Some(file) = client.as_mut() else {
            self.stalled = false;
            return Ok(data.len());
        };
        let mut rest = data;
        while !rest.is_empty() {
            match file.write(rest) {
                Ok(n) => {
                    rest = &rest[n..];
                    self.stalled = false;
                }
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    let wait = if self.stalled {
                        Duration::ZERO
                    } else {
                        CLIENT_WRITE_WAIT
                    };
                    if !writable(file.as_raw_fd(), wait) {
                        if !self.stalled {
                            log::warn!(
                                "the serial console's client is not reading; \
                                 its output is dropped until it does"
                            );
                        }
                        self.stalled = true;
                        break;
                    }
                }
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                // The client left; the main loop notices and forgets it.
                Err(_) => break,
            }
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}
