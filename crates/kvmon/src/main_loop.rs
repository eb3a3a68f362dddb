//! kvmon's one main loop: QMP sockets, the event bus, the machine's
//! requests, the serial console and signals on one mio poll, until the
//! machine finishes.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use events::EventBus;
use machine::MachineConfig;
use mio::{Events, Interest, Poll, Token, Waker};
use monitor::{command_table, MonitorSpec, Server};
use qmp::commands::MachineCommands;
use qmp::types::ShutdownCause;

use crate::cli::{CliError, GuestConfig};
use crate::console::Console;
use crate::daemon::Daemon;
use crate::machine::Machine;
use crate::signals::Signals;

/// The event bus and the machine's requests share the loop's one waker.
const EVENTS: Token = Token(0);
const SIGNALS: Token = Token(1);
/// The console's tokens start here (three of them).
const CONSOLE: usize = 2;
/// The server's tokens start here.
const SERVER: usize = 16;

/// After QMP traffic the loop polls without sleeping for this long: a client
/// usually follows one command with another, and on a virtual machine
/// waking a sleeping thread on another CPU costs tens of microseconds.
/// Idle VMs and other activity never spin.
const QMP_SPIN: Duration = Duration::from_micros(100);

/// How soon the loop looks again when the guest's serial FIFO was full.
const CONSOLE_RETRY: Duration = Duration::from_millis(10);

/// Builds the machine and the monitors, tells the parent (with
/// `-daemonize`) that start-up is done, starts the guest, and runs until the
/// machine finishes.  Returns the exit status.
pub fn run(
    machine_config: MachineConfig,
    guest: Option<GuestConfig>,
    monitors: Vec<MonitorSpec>,
    daemon: Option<Daemon>,
    program: &str,
    say: &mut dyn FnMut(String),
) -> Result<i32, CliError> {
    let setup = |what: &str, error: io::Error| CliError::bare(format!("cannot {what}: {error}"));
    let mut poll = Poll::new().map_err(|e| setup("create the event loop", e))?;
    let waker =
        Waker::new(poll.registry(), EVENTS).map_err(|e| setup("create the event loop", e))?;
    let waker = Arc::new(waker);
    let bus = EventBus::new(waker.clone());
    let mut machine = match guest {
        Some(guest) => Machine::build(
            machine_config,
            guest,
            bus.publisher(),
            waker,
            program.to_string(),
        )?,
        None => Machine::none(machine_config, bus.publisher()),
    };
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
    let mut console = None;
    if let Some(daemon) = daemon {
        // The parent's exit status says whether the guest could be built.
        launch(&mut machine, true, poll.registry(), &mut console)?;
        daemon.ready().map_err(CliError::bare)?;
    }

    let mut events = Events::with_capacity(256);
    let mut spin_until: Option<Instant> = None;
    loop {
        let spinning = spin_until.is_some_and(|until| Instant::now() < until);
        // (A console exists only once the machine is built.)
        let feeding = match &mut console {
            Some(console) => machine
                .vm()
                .is_some_and(|vm| console.feed(vm, poll.registry())),
            None => false,
        };
        let timeout = if spinning {
            Some(Duration::ZERO)
        } else if feeding {
            // The guest has input to take; look again soon.
            Some(
                server
                    .timeout()
                    .map_or(CONSOLE_RETRY, |t| t.min(CONSOLE_RETRY)),
            )
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
                            // A build may wait for a console client forever.
                            if machine.building() {
                                return Ok(0);
                            }
                            machine.shutdown(ShutdownCause::HostSignal);
                        }
                    }
                }
                token if console.as_ref().is_some_and(|c| c.owns(token)) => {
                    if let Some(console) = &mut console {
                        if let Some(vm) = machine.vm() {
                            console.ready(token, poll.registry(), vm);
                        }
                    }
                }
                _ => {
                    server.ready(event, &mut machine);
                    spin_until = Some(Instant::now() + QMP_SPIN);
                }
            }
        }
        launch(&mut machine, false, poll.registry(), &mut console)?;
        machine.process_requests();
        server.tick(&mut machine);
        if let Some(status) = machine.exit_status() {
            machine.finish();
            server.finish();
            return Ok(status);
        }
    }
}

/// Once the machine is built: its console (into `console`) on the loop,
/// then the guest started.
fn launch(
    machine: &mut Machine,
    wait: bool,
    registry: &mio::Registry,
    console: &mut Option<Console>,
) -> Result<(), CliError> {
    if !machine.settle(wait)? {
        return Ok(());
    }
    *console = machine.take_console();
    if let Some(console) = console {
        console
            .register(registry, CONSOLE)
            .map_err(|e| CliError::bare(format!("cannot serve the serial console: {e}")))?;
    }
    machine.launch();
    Ok(())
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
