//! The sockets a monitor serves: listeners it binds or inherits, and the
//! connected streams it accepts, makes or inherits.

use std::fmt;
use std::io::{self, IoSlice, Read, Write};
use std::net::ToSocketAddrs;
use std::os::fd::{FromRawFd, RawFd};
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

/// A connected stream socket, Unix or TCP.
#[derive(Debug)]
pub enum Stream {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Stream {
    /// Connects out (client mode), blocking until connected.  Errors are
    /// QEMU's sentences.
    pub fn connect(address: &SocketAddress) -> Result<Stream, String> {
        let failed = |target: &str, error: io::Error| {
            format!("Failed to connect to '{target}': {}", os_error(&error))
        };
        match address {
            SocketAddress::Unix(path) => {
                let target = path.display().to_string();
                let stream = std::os::unix::net::UnixStream::connect(path)
                    .and_then(|stream| stream.set_nonblocking(true).map(|()| stream))
                    .map_err(|error| failed(&target, error))?;
                Ok(Stream::Unix(UnixStream::from_std(stream)))
            }
            SocketAddress::Tcp { host, port } => {
                let target = format!("{host}:{port}");
                let stream = std::net::TcpStream::connect(tcp_target(host, port)?.as_slice())
                    .and_then(|stream| stream.set_nonblocking(true).map(|()| stream))
                    .map_err(|error| failed(&target, error))?;
                // Small messages want no Nagle delay; failing to say so is harmless.
                let _ = stream.set_nodelay(true);
                Ok(Stream::Tcp(TcpStream::from_std(stream)))
            }
            SocketAddress::Fd(fd) => match Inherited::take(*fd)? {
                Inherited::Stream(stream) => Ok(stream),
                Inherited::Listener(_) => Err(format!(
                    "File descriptor '{fd}' is a listening socket: use server=on"
                )),
            },
        }
    }
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

/// A listening socket.  A Unix socket path kvmon bound is removed on drop.
#[derive(Debug)]
pub enum Listener {
    Unix {
        listener: UnixListener,
        bound_path: Option<PathBuf>,
    },
    Tcp(TcpListener),
}

impl Listener {
    /// Binds and listens on a Unix path or TCP address, or takes over an
    /// inherited listening socket.  A stale socket file is replaced; a
    /// socket another process still listens on is an error.  Errors are
    /// QEMU's sentences.
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
                Ok(Listener::Unix {
                    listener: UnixListener::from_std(listener),
                    bound_path: Some(path.clone()),
                })
            }
            SocketAddress::Tcp { host, port } => {
                let mut last_error = None;
                for target in tcp_target(host, port)? {
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
            SocketAddress::Fd(fd) => match Inherited::take(*fd)? {
                Inherited::Listener(listener) => Ok(listener),
                Inherited::Stream(_) => {
                    Err("Failed to listen on fd socket: Invalid argument".to_string())
                }
            },
        }
    }

    pub fn accept(&self) -> io::Result<Stream> {
        match self {
            Listener::Unix { listener, .. } => Ok(Stream::Unix(listener.accept()?.0)),
            Listener::Tcp(listener) => {
                let (stream, _) = listener.accept()?;
                stream.set_nodelay(true)?;
                Ok(Stream::Tcp(stream))
            }
        }
    }
}

impl Drop for Listener {
    fn drop(&mut self) {
        if let Listener::Unix {
            bound_path: Some(path),
            ..
        } = self
        {
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
    /// Takes ownership of socket `fd`, which must be a Unix or TCP stream socket.
    pub fn take(fd: RawFd) -> Result<Inherited, String> {
        let not_a_socket = || format!("File descriptor '{fd}' is not a socket");
        // SAFETY: an all-zero libc::stat is a valid value.
        let mut stat: libc::stat = unsafe { std::mem::zeroed() };
        // SAFETY: fstat writes only into `stat`; a bad fd yields EBADF.
        if unsafe { libc::fstat(fd, &mut stat) } != 0
            || stat.st_mode & libc::S_IFMT != libc::S_IFSOCK
        {
            return Err(not_a_socket());
        }
        let query = |result: io::Result<libc::c_int>| {
            result.map_err(|error| format!("File descriptor '{fd}': {}", os_error(&error)))
        };
        let listening = query(socket_option(fd, libc::SO_ACCEPTCONN))? != 0;
        let family = query(socket_family(fd))?;
        if query(socket_option(fd, libc::SO_TYPE))? != libc::SOCK_STREAM {
            return Err(format!("File descriptor '{fd}' is not a stream socket"));
        }
        query(set_nonblocking(fd).map(|()| 0))?;
        // SAFETY (for the from_raw_fd calls below): fd is an open stream
        // socket of the family checked, and from here on owned only by us.
        let inherited = match (family, listening) {
            (libc::AF_UNIX, true) => {
                // SAFETY: see above.
                let listener = unsafe { UnixListener::from_raw_fd(fd) };
                // As QEMU does, the path the socket is bound to goes at exit.
                let bound_path = listener
                    .local_addr()
                    .ok()
                    .and_then(|address| address.as_pathname().map(Path::to_path_buf));
                Inherited::Listener(Listener::Unix {
                    listener,
                    bound_path,
                })
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
                Inherited::Stream(Stream::Tcp(unsafe { TcpStream::from_raw_fd(fd) }))
            }
            _ => return Err(not_a_socket()),
        };
        Ok(inherited)
    }
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

/// The C library's text for an error, without Rust's " (os error N)".
pub fn os_error(error: &io::Error) -> String {
    let text = error.to_string();
    match text.find(" (os error ") {
        Some(end) => text[..end].to_string(),
        None => text,
    }
}

/// Resolves a TCP host and port; an empty host means every interface.
fn tcp_target(host: &str, port: &str) -> Result<Vec<std::net::SocketAddr>, String> {
    let failed = |why: &str| format!("address resolution failed for {host}:{port}: {why}");
    let number: u16 = port
        .parse()
        .map_err(|_| failed("Servname not supported for ai_socktype"))?;
    let name = if host.is_empty() { "::" } else { host };
    let targets = (name, number).to_socket_addrs().map_err(|error| {
        let text = os_error(&error);
        let text = text
            .strip_prefix("failed to lookup address information: ")
            .unwrap_or(&text);
        failed(text)
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

macro_rules! delegate_source {
    ($type:ident { $($variant:ident),* }) => {
        impl Source for $type {
            fn register(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
                match self { $( $type::$variant { 0: inner, .. } => inner.register(registry, token, interests), )* }
            }
            fn reregister(&mut self, registry: &Registry, token: Token, interests: Interest) -> io::Result<()> {
                match self { $( $type::$variant { 0: inner, .. } => inner.reregister(registry, token, interests), )* }
            }
            fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
                match self { $( $type::$variant { 0: inner, .. } => inner.deregister(registry), )* }
            }
        }
    };
}

delegate_source!(Stream { Unix, Tcp });

impl Source for Listener {
    fn register(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Unix { listener, .. } => listener.register(registry, token, interests),
            Listener::Tcp(listener) => listener.register(registry, token, interests),
        }
    }
    fn reregister(
        &mut self,
        registry: &Registry,
        token: Token,
        interests: Interest,
    ) -> io::Result<()> {
        match self {
            Listener::Unix { listener, .. } => listener.reregister(registry, token, interests),
            Listener::Tcp(listener) => listener.reregister(registry, token, interests),
        }
    }
    fn deregister(&mut self, registry: &Registry) -> io::Result<()> {
        match self {
            Listener::Unix { listener, .. } => listener.deregister(registry),
            Listener::Tcp(listener) => listener.deregister(registry),
        }
    }
}

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
}
