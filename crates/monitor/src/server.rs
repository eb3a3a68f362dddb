//! The QMP server: every monitor's sockets and connections on one mio
//! registry, each request dispatched in order, and events fanned out to
//! every negotiated client before the return of the command that caused them.

use std::collections::HashSet;
use std::io;
use std::rc::Rc;
use std::time::{Duration, Instant};

use events::{EventBus, Stamped, Throttle};
use mio::event::Event;
use mio::{Interest, Registry, Token};
use qmp::commands::MachineCommands;
use qmp::wire;

use crate::connection::{Connection, Item, ReadResult, READ_BUDGET};
use crate::dispatch::{CommandTable, Context, ServerInfo};
use crate::endpoint::{Endpoint, MonitorSpec};
use crate::socket::{Inherited, SocketAddress, Stream};

/// How long output may take to drain when kvmon exits.
const EXIT_FLUSH: Duration = Duration::from_secs(1);
/// How long clients get to hang up first when kvmon exits.  QEMU closes its
/// sockets late in its exit, so clients such as qemu.qmp read the last
/// reply before they see the end of the connection; this keeps that order.
const EXIT_GRACE: Duration = Duration::from_millis(20);

type Machine = dyn MachineCommands + 'static;

#[derive(Debug)]
pub struct Server {
    registry: Registry,
    token_base: usize,
    endpoints: Vec<Endpoint>,
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
        let mut server = Server {
            registry: registry.try_clone().map_err(|error| {
                StartError::new(None, format!("cannot set up the event loop: {error}"))
            })?,
            token_base,
            endpoints: Vec::new(),
            connections: Vec::new(),
            free: Vec::new(),
            revisit: Vec::new(),
            info: ServerInfo {
                version: crate::control::version(),
                chardevs: specs.iter().map(|spec| spec.chardev.clone()).collect(),
            },
            table,
            bus,
            throttle: Throttle::default(),
            scratch: vec![0; 64 << 10],
            items: Vec::new(),
        };
        // Inherited sockets are claimed first, each once, before kvmon opens
        // any socket whose number they could share.
        let mut claimed = HashSet::new();
        let mut inherited = Vec::new();
        for spec in &specs {
            inherited.push(match spec.address {
                SocketAddress::Fd(fd) if !claimed.insert(fd) => {
                    return Err(StartError::new(
                        Some(spec),
                        format!("File descriptor '{fd}' is used by another monitor"),
                    ))
                }
                SocketAddress::Fd(fd) => Some(
                    Inherited::take(fd).map_err(|message| StartError::new(Some(spec), message))?,
                ),
                _ => None,
            });
        }
        let mut first_clients = Vec::new();
        for (index, (spec, inherited)) in specs.into_iter().zip(inherited).enumerate() {
            let origin = spec.origin.clone();
            let (mut endpoint, client) =
                Endpoint::open(spec, inherited, say).map_err(|message| StartError {
                    origin: Some(origin.clone()),
                    message,
                })?;
            if let Some(listener) = &mut endpoint.listener {
                registry
                    .register(listener, Token(token_base + index), Interest::READABLE)
                    .map_err(|error| StartError {
                        origin: Some(origin),
                        message: crate::socket::os_error(&error),
                    })?;
            }
            first_clients.extend(client.map(|stream| (index, stream)));
            server.endpoints.push(endpoint);
        }
        for (endpoint, stream) in first_clients {
            server.add_connection(endpoint, stream);
        }
        Ok(server)
    }

    /// Handles readiness of one of the server's tokens.
    pub fn ready(&mut self, event: &Event, machine: &mut Machine) {
        let Some(index) = event.token().0.checked_sub(self.token_base) else {
            return;
        };
        if index < self.endpoints.len() {
            self.accept(index);
        } else {
            self.serve(index - self.endpoints.len(), machine);
        }
    }

    /// How long the main loop may sleep before [`Server::tick`] has work.
    pub fn timeout(&self) -> Option<Duration> {
        if !self.revisit.is_empty() {
            return Some(Duration::ZERO);
        }
        let now = Instant::now();
        self.endpoints
            .iter()
            .map(Endpoint::deadline)
            .chain([self.throttle.next_deadline()])
            .flatten()
            .min()
            .map(|deadline| deadline.saturating_duration_since(now))
    }

    /// Work not tied to readiness: events, throttled events coming due,
    /// connections with input left, accept retries and reconnects.
    pub fn tick(&mut self, machine: &mut Machine) {
        self.deliver_events(None);
        for index in std::mem::take(&mut self.revisit) {
            self.serve(index, machine);
        }
        for index in 0..self.endpoints.len() {
            if self.endpoints[index].accept_due() {
                self.accept(index);
            }
            if let Some(stream) = self.endpoints[index].reconnect() {
                self.add_connection(index, stream);
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
        self.endpoints.clear();
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
        // Queues the event; false when the client is too far behind.
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
            connection.doomed |= !send(connection);
        }
        let mut dead = Vec::new();
        for (index, slot) in self.connections.iter_mut().enumerate() {
            let Some(connection) = slot else {
                continue;
            };
            if !send(connection) {
                dead.push((index, "it is not reading its output".to_string()));
            } else if let Err(error) = connection.flush() {
                dead.push((index, format!("writing failed: {error}")));
            }
        }
        for (index, why) in dead {
            self.drop_connection(index, &why);
        }
    }

    fn accept(&mut self, endpoint: usize) {
        while let Some(stream) = self.endpoints[endpoint].accept() {
            self.add_connection(endpoint, stream);
        }
    }

    fn add_connection(&mut self, endpoint: usize, stream: Stream) {
        let pretty = self.endpoints[endpoint].spec.pretty;
        let mut connection = Connection::new(stream, endpoint, pretty);
        let index = self.free.pop().unwrap_or_else(|| {
            self.connections.push(None);
            self.connections.len() - 1
        });
        let token = Token(self.token_base + self.endpoints.len() + index);
        let interests = Interest::READABLE | Interest::WRITABLE;
        if let Err(error) = self
            .registry
            .register(&mut connection.stream, token, interests)
        {
            log::warn!("cannot watch a QMP client: {error}");
            self.free.push(index);
            self.endpoints[endpoint].schedule_reconnect();
            return;
        }
        log::debug!(
            "QMP client {index} on {}",
            self.endpoints[endpoint].spec.chardev
        );
        // A connection out may still be under way: its first readiness says.
        connection.connecting = true;
        self.connections[index] = Some(connection);
        self.revisit.push(index);
    }

    /// Gives connection `index` its turn: read, parse, run, write.
    fn serve(&mut self, index: usize, machine: &mut Machine) {
        let Some(mut connection) = self.connections.get_mut(index).and_then(Option::take) else {
            return;
        };
        connection.budget = READ_BUDGET;
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
        machine: &mut Machine,
    ) -> io::Result<bool> {
        if connection.doomed {
            return Ok(false);
        }
        if connection.connecting {
            if !connection.stream.established()? {
                return Ok(true);
            }
            connection.connecting = false;
            connection.reply(&wire::greeting(&self.info.version));
        }
        loop {
            if !self.run_inband(connection, machine) {
                return Ok(false);
            }
            if machine.exit_status().is_some() {
                break;
            }
            if !connection.may_read() {
                connection.held_back |= connection.queue_full();
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
            if result? != ReadResult::Data {
                break;
            }
        }
        connection.flush()?;
        let done = connection.eof && connection.inband.is_empty() && connection.outbox.is_empty();
        Ok(!connection.doomed && !done)
    }

    /// Runs queued in-band requests while the client keeps up with its
    /// output.  Stops early when reading was held back and there is room
    /// again, so that the next read can find out-of-band requests before the
    /// queue runs dry.  Returns false when the connection must close.
    fn run_inband(&mut self, connection: &mut Connection, machine: &mut Machine) -> bool {
        while !connection.stalled() && machine.exit_status().is_none() {
            if connection.held_back && !connection.queue_full() {
                connection.held_back = false;
                break;
            }
            let Some(item) = connection.next_inband() else {
                break;
            };
            if !self.execute(connection, item, machine) {
                return false;
            }
        }
        true
    }

    /// Answers one request.  Returns false when the connection must close.
    fn execute(&mut self, connection: &mut Connection, item: Item, machine: &mut Machine) -> bool {
        // Events from before the command go out before its answer.
        self.deliver_events(Some(connection));
        if connection.doomed {
            return false;
        }
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
        let yanked = |endpoint: &Endpoint| chardevs.contains(&endpoint.spec.chardev);
        if yanked(&self.endpoints[current.monitor]) {
            current.doomed = true;
        }
        for index in 0..self.connections.len() {
            let hit = self.connections[index]
                .as_ref()
                .is_some_and(|connection| yanked(&self.endpoints[connection.monitor]));
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

    /// Closes a connection that is out of its slot, and lets a monitor that
    /// connects out connect again.
    fn forget(&mut self, index: usize, mut connection: Connection) {
        if let Err(error) = self.registry.deregister(&mut connection.stream) {
            log::debug!("deregistering QMP client {index}: {error}");
        }
        self.endpoints[connection.monitor].schedule_reconnect();
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
