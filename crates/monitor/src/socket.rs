//! The sockets a monitor serves: listeners it binds or inherits, and the
//! connected streams it accepts, makes or inherits.  Errors are QEMU's
//! sentences.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::os::fd::{AsRawFd, FromRawFd, RawFd};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};

use mio::event::Source;
use mio::net::{TcpListener, TcpStream, UnixListener, UnixStream};
use mio::{Interest, Registry, Token};

/// Where a monitor's socket is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SocketAddress {
    Unix(PathBuf),
    Tcp {
        host: String,
        port: String,
    },
    /// A socket the process inherited, listening or connected.
    Fd(RawFd),
}

impl fmt::Display for SocketAddress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SocketAddress::Unix(path) => write!(f, "unix:{}", path.display()),
            SocketAddress::Tcp { host, port } => write!(f, "tcp:{host}:{port}"),
            SocketAddress::Fd(fd) => write!(f, "fd:{fd}"),
        }
    }
}

/// The C library's text for an error, without Rust's " (os error N)".
pub fn os_error(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// A connected stream socket, Unix or TCP.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects out, blocking until connected (client mode at start-up, as
    /// QEMU does it).
    pub fn connect(address: &SocketAddress) -> Result<Stream, String> {
        match address {
            SocketAddress::Unix(path) => {
                let stream = std::os::unix::net::UnixStream::connect(path)
                    .and_then(|stream| stream.set_nonblocking(true).map(|()| stream))
                    .map_err(|error| connect_failed(&path.display().to_string(), &error))?;
                Ok(Stream::Unix(UnixStream::from_std(stream)))
            }
            SocketAddress::Tcp { host, port } => {
                let stream = std::net::TcpStream::connect(resolve(host, port)?.as_slice())
                    .and_then(|stream| stream.set_nonblocking(true).map(|()| stream))
                    .map_err(|error| connect_failed(&format!("{host}:{port}"), &error))?;
                Ok(Stream::tcp(TcpStream::from_std(stream)))
            }
            SocketAddress::Fd(fd) => Err(format!("File descriptor '{fd}' cannot be connected")),
        }
    }

    /// Starts connecting without blocking, to a Unix path or to `target`
    /// (reconnects on the main loop).  A TCP connection may still be under
    /// way: see [`Stream::established`].
    pub fn start_connect(
        address: &SocketAddress,
        target: Option<SocketAddr>,
    ) -> Result<Stream, String> {
        match (address, target) {
            (SocketAddress::Unix(path), _) => UnixStream::connect(path)
                .map(Stream::Unix)
                .map_err(|error| connect_failed(&path.display().to_string(), &error)),
            (SocketAddress::Tcp { host, port }, Some(target)) => TcpStream::connect(target)
                .map(Stream::tcp)
                .map_err(|error| connect_failed(&format!("{host}:{port}"), &error)),
            _ => Err(format!("{address} cannot be connected")),
        }
    }

    /// Whether a connection started by [`Stream::start_connect`] is up:
    /// `Ok(false)` while it is still under way.
    pub fn established(&self) -> io::Result<bool> {
        let Stream::Tcp(stream) = self else {
            return Ok(true);
        };
        if let Some(error) = stream.take_error()? {
            return Err(error);
        }
        match stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(error) if error.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(error) => Err(error),
        }
    }

    /// Small messages want no Nagle delay (so `nodelay` is always on).
    fn tcp(stream: TcpStream) -> Stream {
        if let Err(error) = stream.set_nodelay(true) {
            log::debug!("cannot set TCP_NODELAY: {error}");
        }
        Stream::Tcp(stream)
    }

    fn inner(&mut self) -> &mut dyn Source {
        match self {
            Stream::Unix(stream) => stream,
            Stream::Tcp(stream) => stream,
        }
    }
}

fn connect_failed(target: &str, error: &io::Error) -> String {
    format!("Failed to connect to '{target}': {}", os_error(error))
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(stream) => stream.read(buf),
            Stream::Tcp(stream) => stream.read(buf),
        }
    }
}

impl Write for Stream {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Unix(stream) => stream.write(buf),
            Stream::Tcp(stream) => stream.write(buf),
        }
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Unix(stream) => stream.write_vectored(bufs),
            Stream::Tcp(stream) => stream.write_vectored(bufs),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A listening socket.  The path of a Unix one is removed on drop (also for
/// an inherited one, as QEMU does).
#[derive(Debug)]
pub enum Listener {
    Unix(UnixListener, Option<PathBuf>),
    Tcp(TcpListener),
}

impl Listener {
    /// Binds and listens on a Unix path or TCP address.  A stale socket file
    /// is replaced; a socket another process still listens on is an error.
    pub fn bind(address: &SocketAddress) -> Result<Listener, String> {
        match address {
            SocketAddress::Unix(path) => {
                remove_stale_socket(path)?;
                let listener = std::os::unix::net::UnixListener::bind(path)
                    .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                    .map_err(|error| {
                        format!(
                            "Failed to bind socket to {}: {}",
                            path.display(),
                            os_error(&error)
                        )
                    })?;
                Ok(Listener::Unix(
                    UnixListener::from_std(listener),
                    Some(path.clone()),
                ))
            }
            SocketAddress::Tcp { host, port } => {
                let mut last_error = None;
                for target in resolve(host, port)? {
                    match std::net::TcpListener::bind(target)
                        .and_then(|listener| listener.set_nonblocking(true).map(|()| listener))
                    {
                        Ok(listener) => return Ok(Listener::Tcp(TcpListener::from_std(listener))),
                        Err(error) => last_error = Some(error),
                    }
                }
                Err(match last_error {
                    Some(error) if error.kind() == io::ErrorKind::AddrInUse => {
                        format!("Failed to find an available port: {}", os_error(&error))
                    }
                    Some(error) => format!("Failed to bind socket: {}", os_error(&error)),
                    None => format!("address resolution failed for {host}:{port}"),
                })
            }
            SocketAddress::Fd(fd) => Err(format!("File descriptor '{fd}' cannot be bound")),
        }
    }

    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix(listener, _) => Ok(Stream::Unix(listener.accept()?.0)),
            Listener::Tcp(listener) => Ok(Stream::tcp(listener.accept()?.0)),
        }
    }

    pub fn raw_fd(&self) -> RawFd {
        match self {
            Listener::Unix(listener, _) => listener.as_raw_fd(),
            Listener::Tcp(listener) => listener.as_raw_fd(),
        }
    }

    fn inner(&mut self) -> &mut dyn Source {
        match self {
            Listener::Unix(listener, _) => listener,
            Listener::Tcp(listener) => listener,
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix(_, Some(path)) = self {
            if let Err(error) = std::fs::remove_file(&*path) {
                log::debug!("cannot remove {}: {error}", path.display());
            }
        }
    }
}

/// An inherited socket, by what it turned out to be.
#[derive(Debug)]
pub enum Inherited {
    Listener(Listener),
    Stream(Stream),
}

impl Inherited {
    /// Takes ownership of socket `fd`, which must be a Unix or TCP stream
    /// socket.  The caller takes each inherited descriptor once, before kvmon
    /// opens any socket of its own.  A socket on 0-2 is moved off the
    /// standard streams, which `-daemonize` points at /dev/null.
    pub fn take(fd: RawFd) -> Result<Inherited, String> {
        let not_a_socket = || format!("File descriptor '{fd}' is not a socket");
        // SAFETY: an all-zero libc::stat is a valid value.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes only into `stat`; a bad fd yields EBADF.
        let status = unsafe { libc::fstat(fd, &mut stat) };
        if status != 0 || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK {
            return Err(not_a_socket());
        }
        let query = |result: io::Result<libc::c_int>| {
            result.map_err(|error| format!("File descriptor '{fd}': {}", os_error(&error)))
        };
        if query(socket_option(fd, libc::SO_TYPE))? != libc::SOCK_STREAM {
            return Err(format!("File descriptor '{fd}' is not a stream socket"));
        }
        let listening = query(socket_option(fd, libc::SO_ACCEPTCONN))? != 0;
        let family = query(socket_family(fd))?;
        let fd = if fd <= 2 {
            query(move_above_stdio(fd))?
        } else {
            fd
        };
        query(set_nonblocking(fd).map(|()| 0))?;
        // SAFETY (for the from_raw_fd calls below): fd is an open stream
        // socket of the family checked, claimed once by the caller before
        // kvmon opened sockets of its own, so nothing else owns it.
        let inherited = match (family, listening) {
            (libc::AF_UNIX, true) => {
                // SAFETY: see above.
                let listener = unsafe { UnixListener::from_raw_fd(fd) };
                // As QEMU does, the path the socket is bound to goes at exit.
                let path = listener
                    .local_addr()
                    .ok()
                    .and_then(|address| address.as_pathname().map(Path::to_path_buf));
                Inherited::Listener(Listener::Unix(listener, path))
            }
            (libc::AF_UNIX, false) => {
                // SAFETY: see above.
                Inherited::Stream(Stream::Unix(unsafe { UnixStream::from_raw_fd(fd) }))
            }
            (libc::AF_INET | libc::AF_INET6, true) => {
                // SAFETY: see above.
                Inherited::Listener(Listener::Tcp(unsafe { TcpListener::from_raw_fd(fd) }))
            }
            (libc::AF_INET | libc::AF_INET6, false) => {
                // SAFETY: see above.
                Inherited::Stream(Stream::tcp(unsafe { TcpStream::from_raw_fd(fd) }))
            }
            _ => return Err(not_a_socket()),
        };
        Ok(inherited)
    }
}

/// A copy of `fd` numbered 3 or above; the original stays as it is.
fn move_above_stdio(fd: RawFd) -> io::Result<RawFd> {
    // SAFETY: F_DUPFD_CLOEXEC creates a new descriptor and touches no memory.
    let copy = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
    if copy < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(copy)
}

fn socket_option(fd: RawFd, option: libc::c_int) -> io::Result<libc::c_int> {
    let mut value: libc::c_int = 0;
    let mut len = std::mem::size_of::<libc::c_int>() as libc::socklen_t;
    // SAFETY: value and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockopt(
            fd,
            libc::SOL_SOCKET,
            option,
            (&mut value as *mut libc::c_int).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(value)
}

fn socket_family(fd: RawFd) -> io::Result<libc::c_int> {
    // SAFETY: an all-zero sockaddr_storage is a valid value.
    let mut address: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    // SAFETY: address and len are valid for writes of the sizes given.
    let rc = unsafe {
        libc::getsockname(
            fd,
            (&mut address as *mut libc::sockaddr_storage).cast(),
            &mut len,
        )
    };
    if rc != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(libc::c_int::from(address.ss_family))
}

fn set_nonblocking(fd: RawFd) -> io::Result<()> {
    // SAFETY: F_GETFL / F_SETFL on an fd have no memory effects.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Resolves a TCP host and port.  An empty host means every address: IPv6
/// (which takes IPv4 too, on Linux's default) and, failing that, IPv4.
pub fn resolve(host: &str, port: &str) -> Result<Vec<SocketAddr>, String> {
    let failed = |why: &str| format!("address resolution failed for {host}:{port}: {why}");
    let number: u16 = port
        .parse()
        .map_err(|_| failed("Servname not supported for ai_socktype"))?;
    if host.is_empty() {
        return Ok(vec![
            SocketAddr::from(([0u16; 8], number)),
            SocketAddr::from(([0u8; 4], number)),
        ]);
    }
    let targets = (host, number).to_socket_addrs().map_err(|error| {
        let text = os_error(&error);
        failed(
            text.strip_prefix("failed to lookup address information: ")
                .unwrap_or(&text),
        )
    })?;
    Ok(targets.collect())
}

/// Clears the way for binding `path`: nothing there, or a socket nobody
/// listens on any more (which is removed).  Unlike QEMU, kvmon neither
/// takes over a live socket nor deletes a file that is not a socket.
fn remove_stale_socket(path: &Path) -> Result<(), String> {
    let unlink_failed = |why: &str| format!("Failed to unlink socket {}: {why}", path.display());
    let metadata = match std::fs::symlink_metadata(path) {
        Ok(metadata) => metadata,
        Err(error) if error.kind() == io::ErrorKind::NotFound => return Ok(()),
        Err(error) => return Err(unlink_failed(&os_error(&error))),
    };
    if metadata.is_dir() {
        return Err(unlink_failed("Is a directory"));
    }
    if !metadata.file_type().is_socket() {
        return Err(unlink_failed("it is not a socket"));
    }
    match std::os::unix::net::UnixStream::connect(path) {
        Ok(_) => Err(format!(
            "Failed to bind socket to {}: another process is listening on it",
            path.display()
        )),
        Err(error) if error.kind() == io::ErrorKind::ConnectionRefused => {
            log::info!("replacing stale socket {}", path.display());
            std::fs::remove_file(path).map_err(|error| unlink_failed(&os_error(&error)))
        }
        Err(error) => Err(unlink_failed(&os_error(&error))),
    }
}

/// Both socket kinds are mio sources through their `inner` socket.
macro_rules! source_via_inner {
    ($($type:ty),*) => {$(
        impl Source for $type {
            fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
                self.inner().register(registry, token, interests)
            }
            fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
                self.inner().reregister(registry, token, interests)
            }
            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                self.inner().deregister(registry)
            }
        }
    )*};
}

source_via_inner!(Stream, Listener);

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_path(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("kvmon-socket-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    #[test]
    fn stale_socket_is_replaced_and_live_one_refused() {
        let path = temp_path("stale.sock");
        let address = SocketAddress::Unix(path.clone());
        // A socket file whose listener is gone.
        drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
        assert!(path.exists());
        let live = Listener::bind(&address).unwrap();
        let second = Listener::bind(&address).unwrap_err();
        assert!(
            second.ends_with("another process is listening on it"),
            "{second}"
        );
        drop(live);
        assert!(
            !path.exists(),
            "the socket file is removed with the listener"
        );
    }

    #[test]
    fn regular_file_is_not_replaced() {
        let path = temp_path("regular");
        std::fs::write(&path, b"data").unwrap();
        let error = Listener::bind(&SocketAddress::Unix(path.clone())).unwrap_err();
        assert!(error.starts_with("Failed to unlink socket"), "{error}");
        assert_eq!(std::fs::read(&path).unwrap(), b"data");
    }

    #[test]
    fn inherited_sockets_are_recognised() {
        use std::os::fd::IntoRawFd;
        let (a, _b) = std::os::unix::net::UnixStream::pair().unwrap();
        assert!(matches!(
            Inherited::take(a.into_raw_fd()).unwrap(),
            Inherited::Stream(_)
        ));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        assert!(matches!(
            Inherited::take(listener.into_raw_fd()).unwrap(),
            Inherited::Listener(Listener::Tcp(_))
        ));
        let file = std::fs::File::open("/dev/null").unwrap();
        let fd = file.into_raw_fd();
        assert_eq!(
            Inherited::take(fd).unwrap_err(),
            format!("File descriptor '{fd}' is not a socket")
        );
    }

    #[test]
    fn an_empty_host_means_every_address() {
        let targets = resolve("", "4444").unwrap();
        assert_eq!(
            targets,
            [
                SocketAddr::from(([0u16; 8], 4444)),
                SocketAddr::from(([0u8; 4], 4444))
            ]
        );
        assert!(resolve("127.0.0.1", "notaport")
            .unwrap_err()
            .ends_with("Servname not supported for ai_socktype"));
    }
}
