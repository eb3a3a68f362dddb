//! The QMP server: every monitor's sockets and connections on one mio
//! registry, each request dispatched in order, and events fanned out to
//! every negotiated client before the return of the command that caused them.

use std::io;
use std::os::fd::AsRawFd;
use std::rc::Rc;
use std::time::{Duration, Instant};

use events::{EventBus, Stamped, Throttle};
use mio::event::Event;
use mio::{Interest, Registry, Token};
use qmp::commands::MachineCommands;
use qmp::wire;

use crate::connection::{Connection, Item, ReadResult};
use crate::dispatch::{CommandTable, Context, ServerInfo};
use crate::socket::{Inherited, Listener, SocketAddress, Stream};

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

#[derive(Debug)]
struct Monitor {
    spec: MonitorSpec,
    listener: Option<Listener>,
    /// Connecting out: when to try again.
    reconnect_at: Option<Instant>,
    /// Accepting failed for lack of file descriptors; try again later.
    accept_retry: bool,
}

/// How long to wait before retrying an accept that ran out of descriptors.
const ACCEPT_RETRY: Duration = Duration::from_millis(100);
/// How long output may take to drain when kvmon exits.
const EXIT_FLUSH: Duration = Duration::from_secs(1);
/// How long clients get to hang up first when kvmon exits.  QEMU closes its
/// sockets late in its exit, so clients such as qemu.qmp read the last
/// reply before they see the end of the connection; this keeps that order.
const EXIT_GRACE: Duration = Duration::from_millis(20);

#[derive(Debug)]
pub struct Server {
    registry: Registry,
    token_base: usize,
    monitors: Vec<Monitor>,
    connections: Vec<Option<Connection>>,
    free: Vec<usize>,
    /// Connections with work left after their turn.
    revisit: Vec<usize>,
    table: CommandTable,
    info: ServerInfo,
    bus: EventBus,
    throttle: Throttle,
    scratch: Vec<u8>,
    items: Vec<Item>,
}

impl Server {
    /// Opens every monitor's socket, waiting for a first client where asked,
    /// and registers them with `registry` using tokens from `token_base` up.
    /// `say` prints what start-up has to tell the user.
    pub fn start(
        specs: Vec<MonitorSpec>,
        table: CommandTable,
        bus: EventBus,
        registry: &Registry,
        token_base: usize,
        say: &mut dyn FnMut(String),
    ) -> Result<Server, StartError> {
        let info = ServerInfo {
            version: crate::control::version(),
            chardevs: specs.iter().map(|spec| spec.chardev.clone()).collect(),
        };
        let mut server = Server {
            registry: registry.try_clone().map_err(|error| {
                StartError::new(None, format!("cannot set up the event loop: {error}"))
            })?,
            token_base,
            monitors: Vec::new(),
            connections: Vec::new(),
            free: Vec::new(),
            revisit: Vec::new(),
            table,
            info,
            bus,
            throttle: Throttle::default(),
            scratch: vec![0; 64 << 10],
            items: Vec::new(),
        };
        let mut first_clients = Vec::new();
        for (index, spec) in specs.into_iter().enumerate() {
            let fail = |message: String| StartError::new(Some(&spec), message);
            let mut monitor = Monitor {
                listener: None,
                reconnect_at: None,
                accept_retry: false,
                spec: spec.clone(),
            };
            match &spec.address {
                SocketAddress::Fd(fd) => match Inherited::take(*fd).map_err(fail)? {
                    Inherited::Listener(listener) => monitor.listener = Some(listener),
                    Inherited::Stream(stream) => first_clients.push((index, stream)),
                },
                address if spec.server => {
                    monitor.listener = Some(Listener::bind(address).map_err(fail)?);
                }
                address => match Stream::connect(address) {
                    Ok(stream) => first_clients.push((index, stream)),
                    Err(error) if spec.reconnect.is_some() => {
                        say(format!(
                            "Unable to connect character device {}: {error}",
                            spec.chardev
                        ));
                        monitor.reconnect_at = spec.reconnect.map(|delay| Instant::now() + delay);
                    }
                    Err(error) => return Err(fail(error)),
                },
            }
            if spec.server && spec.wait {
                if let Some(listener) = &monitor.listener {
                    say(format!(
                        "{}: info: QEMU waiting for connection on: {}",
                        spec.origin,
                        spec.describe()
                    ));
                    let client = wait_for_client(listener)
                        .map_err(|error| fail(crate::socket::os_error(&error)))?;
                    first_clients.push((index, client));
                }
            }
            if let Some(listener) = &mut monitor.listener {
                let token = Token(token_base + index);
                registry
                    .register(listener, token, Interest::READABLE)
                    .map_err(|error| fail(crate::socket::os_error(&error)))?;
            }
            server.monitors.push(monitor);
        }
        for (monitor, stream) in first_clients {
            server.add_connection(monitor, stream);
        }
        Ok(server)
    }

    /// Handles readiness of one of the server's tokens.
    pub fn ready(&mut self, event: &Event, machine: &mut (dyn MachineCommands + 'static)) {
        let Some(index) = event.token().0.checked_sub(self.token_base) else {
            return;
        };
        if index < self.monitors.len() {
            self.accept(index);
            return;
        }
        let index = index - self.monitors.len();
        if event.is_read_closed() || event.is_error() {
            if let Some(Some(connection)) = self.connections.get_mut(index) {
                connection.peer_closed = true;
            }
        }
        self.serve(index, machine);
    }

    /// How long the main loop may sleep before [`Server::tick`] has work.
    pub fn timeout(&self) -> Option<Duration> {
        if !self.revisit.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        let retry = self
            .monitors
            .iter()
            .any(|monitor| monitor.accept_retry)
            .then(|| now + ACCEPT_RETRY);
        [self.throttle.next_deadline(), retry]
            .into_iter()
            .chain(self.monitors.iter().map(|monitor| monitor.reconnect_at))
            .flatten()
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Work not tied to readiness: events, throttled events coming due,
    /// connections with input left, reconnects and accept retries.
    pub fn tick(&mut self, machine: &mut (dyn MachineCommands + 'static)) {
        self.deliver_events(None);
        for index in std::mem::take(&mut self.revisit) {
            self.serve(index, machine);
        }
        let now = Instant::now();
        for index in 0..self.monitors.len() {
            if self.monitors[index].accept_retry {
                self.monitors[index].accept_retry = false;
                self.accept(index);
            }
            if self.monitors[index]
                .reconnect_at
                .is_some_and(|at| at <= now)
            {
                self.reconnect(index);
            }
        }
    }

    /// Sends every pending event to every negotiated client.
    pub fn deliver_events(&mut self, mut current: Option<&mut Connection>) {
        let mut fresh = self.bus.drain().peekable();
        if fresh.peek().is_none() && self.throttle.next_deadline().is_none() {
            return;
        }
        let now = Instant::now();
        let mut due = Vec::new();
        for stamped in fresh {
            due.extend(self.throttle.offer(stamped, now));
        }
        due.extend(self.throttle.expire(now));
        for stamped in due {
            self.broadcast(&stamped, current.as_deref_mut());
        }
    }

    /// Writes what can be written, lets clients hang up, and closes every
    /// connection; sockets kvmon bound are removed.  Used when kvmon exits.
    pub fn finish(&mut self) {
        self.deliver_events(None);
        let started = Instant::now();
        loop {
            let mut pending = false;
            for connection in self.connections.iter_mut().flatten() {
                pending |= matches!(connection.flush(), Ok(false));
            }
            if !pending || started.elapsed() >= EXIT_FLUSH {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        let grace = Instant::now() + EXIT_GRACE;
        while Instant::now() < grace {
            let mut open = false;
            for connection in self.connections.iter_mut().flatten() {
                open |= !connection.hung_up(&mut self.scratch);
            }
            if !open {
                break;
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        self.connections.clear();
        self.monitors.clear();
    }

    fn broadcast(&mut self, stamped: &Stamped, current: Option<&mut Connection>) {
        let message = wire::event(
            stamped.event.name(),
            stamped.event.data(),
            stamped.time.seconds,
            stamped.time.microseconds,
        );
        let compact: Rc<[u8]> = wire::frame(&message, false).into();
        let mut pretty: Option<Rc<[u8]>> = None;
        let mut send = |connection: &mut Connection| {
            if !connection.session.negotiated {
                return true;
            }
            let bytes = if connection.pretty {
                pretty.get_or_insert_with(|| wire::frame(&message, true).into())
            } else {
                &compact
            };
            connection.send_event(bytes).is_ok()
        };
        if let Some(connection) = current {
            if !send(connection) {
                connection.doomed = true;
            }
        }
        let mut overflowed = Vec::new();
        for (index, slot) in self.connections.iter_mut().enumerate() {
            if let Some(connection) = slot {
                if !send(connection) {
                    overflowed.push(index);
                }
            }
        }
        for index in overflowed {
            self.drop_connection(index, "it is not reading its output");
        }
        for slot in self.connections.iter_mut().flatten() {
            if let Err(error) = slot.flush() {
                log::debug!("QMP client write failed: {error}");
                slot.doomed = true;
            }
        }
    }

    fn accept(&mut self, monitor: usize) {
        loop {
            let Some(listener) = &self.monitors[monitor].listener else {
                return;
            };
            match listener.accept() {
                Ok(stream) => self.add_connection(monitor, stream),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
                Err(error) => {
                    log::warn!(
                        "cannot accept a QMP client on {}: {error}",
                        self.monitors[monitor].spec.address
                    );
                    self.monitors[monitor].accept_retry = true;
                    return;
                }
            }
        }
    }

    fn reconnect(&mut self, monitor: usize) {
        let spec = &self.monitors[monitor].spec;
        match Stream::connect(&spec.address) {
            Ok(stream) => {
                self.monitors[monitor].reconnect_at = None;
                self.add_connection(monitor, stream);
            }
            Err(error) => {
                log::debug!("cannot connect to {}: {error}", spec.address);
                self.monitors[monitor].reconnect_at =
                    spec.reconnect.map(|delay| Instant::now() + delay);
            }
        }
    }

    fn add_connection(&mut self, monitor: usize, stream: Stream) {
        let pretty = self.monitors[monitor].spec.pretty;
        let mut connection = Connection::new(stream, monitor, pretty);
        let index = self.free.pop().unwrap_or_else(|| {
            self.connections.push(None);
            self.connections.len() - 1
        });
        let token = Token(self.token_base + self.monitors.len() + index);
        if let Err(error) = self.registry.register(
            &mut connection.stream,
            token,
            Interest::READABLE | Interest::WRITABLE,
        ) {
            log::warn!("cannot watch a QMP client: {error}");
            self.free.push(index);
            return;
        }
        log::debug!(
            "QMP client {index} connected on {}",
            self.monitors[monitor].spec.chardev
        );
        connection.reply(&wire::greeting(&self.info.version));
        if connection.flush().is_ok() {
            self.connections[index] = Some(connection);
            // Input may already be waiting (an inherited connected socket).
            self.revisit.push(index);
        } else {
            self.forget(index, connection);
        }
    }

    /// Gives connection `index` its turn: read, parse, run, write.
    fn serve(&mut self, index: usize, machine: &mut (dyn MachineCommands + 'static)) {
        let Some(mut connection) = self.connections.get_mut(index).and_then(Option::take) else {
            return;
        };
        connection.budget = crate::connection::READ_BUDGET;
        match self.serve_connection(&mut connection, machine) {
            Ok(true) => {
                let more_input = connection.budget == 0 && !connection.eof;
                let runnable = !connection.inband.is_empty() && !connection.stalled();
                if (more_input || runnable) && machine.exit_status().is_none() {
                    self.revisit.push(index);
                }
                self.connections[index] = Some(connection);
            }
            Ok(false) => self.forget(index, connection),
            Err(error) => {
                log::debug!("QMP client {index}: {error}");
                self.forget(index, connection);
            }
        }
    }

    /// Returns whether the connection stays open.
    fn serve_connection(
        &mut self,
        connection: &mut Connection,
        machine: &mut (dyn MachineCommands + 'static),
    ) -> io::Result<bool> {
        loop {
            if !self.run_inband(connection, machine) {
                return Ok(false);
            }
            if machine.exit_status().is_some() || !connection.may_read() {
                break;
            }
            let mut items = std::mem::take(&mut self.items);
            let result = connection.read(&mut self.scratch, &mut items);
            for item in items.drain(..) {
                let oob =
                    connection.session.oob && matches!(&item, Ok(value) if wire::is_oob(value));
                if oob {
                    if !self.execute(connection, item, machine) {
                        return Ok(false);
                    }
                } else {
                    connection.inband.push_back(item);
                    if !self.run_inband(connection, machine) {
                        return Ok(false);
                    }
                }
            }
            self.items = items;
            match result? {
                ReadResult::Data => {}
                ReadResult::Drained | ReadResult::WouldBlock | ReadResult::Eof => break,
            }
        }
        connection.flush()?;
        let done = connection.eof && connection.inband.is_empty() && connection.outbox.is_empty();
        Ok(!connection.doomed && !done)
    }

    /// Runs queued in-band requests while the client keeps up with its
    /// output.  Returns false when the connection must close.
    fn run_inband(
        &mut self,
        connection: &mut Connection,
        machine: &mut (dyn MachineCommands + 'static),
    ) -> bool {
        while !connection.stalled() && machine.exit_status().is_none() {
            let Some(item) = connection.inband.pop_front() else {
                break;
            };
            if !self.execute(connection, item, machine) {
                return false;
            }
        }
        true
    }

    /// Answers one request.  Returns false when the connection must close.
    fn execute(
        &mut self,
        connection: &mut Connection,
        item: Item,
        machine: &mut (dyn MachineCommands + 'static),
    ) -> bool {
        // Events from before the command go out before its answer.
        self.deliver_events(Some(connection));
        let mut yanked = Vec::new();
        let (id, result) = match item {
            Err(error) => (None, Err(error)),
            Ok(value) => {
                let incoming = wire::check_request(value, connection.session.oob);
                let result = incoming.request.and_then(|request| {
                    let mut context = Context {
                        machine: &mut *machine,
                        session: &mut connection.session,
                        server: &self.info,
                        table: &self.table,
                        yanked: &mut yanked,
                    };
                    self.table.dispatch(&mut context, &request)
                });
                (incoming.id, result)
            }
        };
        // So do the events the command caused.
        self.deliver_events(Some(connection));
        if !yanked.is_empty() {
            self.yank(&yanked, connection);
        }
        if connection.doomed {
            return false;
        }
        connection.reply(&wire::response(result, id));
        true
    }

    /// Closes every connection of the named chardevs.
    fn yank(&mut self, chardevs: &[String], current: &mut Connection) {
        let yanked = |monitor: &Monitor| chardevs.contains(&monitor.spec.chardev);
        if yanked(&self.monitors[current.monitor]) {
            current.doomed = true;
        }
        for index in 0..self.connections.len() {
            let hit = self.connections[index]
                .as_ref()
                .is_some_and(|connection| yanked(&self.monitors[connection.monitor]));
            if hit {
                self.drop_connection(index, "it was yanked");
            }
        }
    }

    fn drop_connection(&mut self, index: usize, why: &str) {
        if let Some(connection) = self.connections[index].take() {
            log::warn!("closing QMP client {index}: {why}");
            self.forget(index, connection);
        }
    }

    /// Closes a connection that is out of its slot, and lets a client-mode
    /// monitor connect again.
    fn forget(&mut self, index: usize, mut connection: Connection) {
        if let Err(error) = self.registry.deregister(&mut connection.stream) {
            log::debug!("deregistering QMP client {index}: {error}");
        }
        let monitor = &mut self.monitors[connection.monitor];
        if !monitor.spec.server && monitor.listener.is_none() {
            monitor.reconnect_at = monitor.spec.reconnect.map(|delay| Instant::now() + delay);
        }
        log::debug!("QMP client {index} disconnected");
        self.revisit.retain(|&other| other != index);
        self.free.push(index);
    }
}

/// Why the server could not start: QEMU's sentence, after the option that
/// asked for the failing monitor.
#[derive(Debug)]
pub struct StartError {
    pub origin: Option<String>,
    pub message: String,
}

impl StartError {
    fn new(spec: Option<&MonitorSpec>, message: String) -> Self {
        StartError {
            origin: spec.map(|spec| spec.origin.clone()),
            message,
        }
    }
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.origin {
            Some(origin) => write!(f, "{origin}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

/// Blocks until a client connects to `listener` (`server=on,wait=on`).
fn wait_for_client(listener: &Listener) -> io::Result<Stream> {
    let fd = match listener {
        Listener::Unix { listener, .. } => listener.as_raw_fd(),
        Listener::Tcp(listener) => listener.as_raw_fd(),
    };
    loop {
        let mut poll_fd = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: poll reads and writes only the one pollfd we pass.
        let ready = unsafe { libc::poll(&mut poll_fd, 1, -1) };
        if ready < 0 {
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
