//! kvmon's one main loop: QMP sockets, the event bus and signals on one
//! mio poll, until the machine finishes.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::EventBus;
use machine::{Machine, MachineConfig, NoneMachine};
use mio::{Events, Interest, Poll, Token, Waker};
use monitor::{command_table, MonitorSpec, Server};
use qmp::types::ShutdownCause;

use crate::cli::CliError;
use crate::daemon::Daemon;
use crate::signals::Signals;

const EVENTS: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The server's tokens start here.
const SERVER: usize = 16;

/// After QMP traffic the loop polls without sleeping for this long: a client
/// usually follows one command with another, and on a virtual machine
/// waking a sleeping thread on another CPU costs tens of microseconds.
/// Idle VMs and other activity never spin.
const QMP_SPIN: Duration = Duration::from_micros(100);

/// Builds the machine and the monitors, tells the parent (with
/// `-daemonize`) that start-up is done, and runs until the machine finishes.
/// Returns the exit status.
pub fn run(
    machine_config: MachineConfig,
    monitors: Vec<MonitorSpec>,
    daemon: Option<Daemon>,
    say: &mut dyn FnMut(String),
) -> Result<i32, CliError> {
    let setup = |what: &str, error: io::Error| CliError::bare(format!("cannot {what}: {error}"));
    let mut poll = Poll::new().map_err(|e| setup("create the event loop", e))?;
    let waker =
        Waker::new(poll.registry(), EVENTS).map_err(|e| setup("create the event loop", e))?;
    let bus = EventBus::new(Arc::new(waker));
    let mut machine: Box<dyn Machine> = Box::new(NoneMachine::new(machine_config, bus.publisher()));
    let mut server = Server::start(monitors, command_table(), bus, poll.registry(), SERVER, say)
        .map_err(|error| match &error.origin {
            Some(origin) => CliError::at(origin, error.message),
            None => CliError::bare(error.message),
        })?;
    // Only now: while start-up waits for a first client, a signal still
    // ends kvmon at once, as it ends QEMU.
    let mut signals = Signals::new().map_err(|e| setup("handle signals", e))?;
    poll.registry()
        .register(&mut signals, SIGNALS, Interest::READABLE)
        .map_err(|e| setup("handle signals", e))?;
    if let Some(daemon) = daemon {
        daemon.ready().map_err(CliError::bare)?;
    }

    let mut events = Events::with_capacity(256);
    let mut spin_until: Option<Instant> = None;
    loop {
        let spinning = spin_until.is_some_and(|until| Instant::now() < until);
        let timeout = if spinning {
            Some(Duration::ZERO)
        } else {
            server.timeout()
        };
        if let Err(error) = poll.poll(&mut events, timeout) {
            if error.kind() != io::ErrorKind::Interrupted {
                return Err(CliError::bare(format!("the event loop failed: {error}")));
            }
        }
        if events.is_empty() && spinning {
            // Let a client on this CPU run.
            std::thread::yield_now();
        }
        for event in &events {
            match event.token() {
                EVENTS => {}
                SIGNALS => {
                    for received in signals.pending() {
                        // Like QEMU, one shutdown however many signals came.
                        if machine.exit_status().is_none() {
                            say(terminating(received.signal, received.sender));
                            machine.shutdown(ShutdownCause::HostSignal);
                        }
                    }
                }
                _ => {
                    server.ready(event, &mut *machine);
                    spin_until = Some(Instant::now() + QMP_SPIN);
                }
            }
        }
        server.tick(&mut *machine);
        if let Some(status) = machine.exit_status() {
            server.finish();
            return Ok(status);
        }
    }
}

/// QEMU's line for a terminating signal, naming the sender when known.
fn terminating(signal: i32, pid: libc::pid_t) -> String {
    if pid == 0 {
        return format!("terminating on signal {signal}");
    }
    let command = std::fs::read(format!("/proc/{pid}/cmdline"))
        .ok()
        .and_then(|cmdline| String::from_utf8(cmdline.split(|&b| b == 0).next()?.to_vec()).ok())
        .filter(|command| !command.is_empty())
        .unwrap_or_else(|| "<unknown process>".to_string());
    format!("terminating on signal {signal} from pid {pid} ({command})")
}
