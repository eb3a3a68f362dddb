//! The machine as the main loop holds it.  A KVM guest is built on a thread
//! of its own while the monitors start — registering guest memory with KVM
//! can take milliseconds — so a client's greeting does not wait for it; the
//! first machine command does, and the guest starts once it is built.

use std::sync::mpsc::{self, Receiver, TryRecvError};
use std::sync::Arc;

use events::Publisher;
use machine::{MachineConfig, Vm};
use mio::Waker;
use qmp::commands::{Handles, MachineCommands};
use qmp::schema::Command;
use qmp::types::ShutdownCause;
use qmp::QmpError;

use crate::cli::{CliError, GuestConfig};
use crate::console::Console;

type Built = Result<(Vm, Console), CliError>;

#[derive(Debug)]
enum State {
    /// The build thread sends its result here, then wakes the main loop.
    Building(Receiver<Built>),
    Ready(Vm),
    Failed(Option<CliError>),
}

#[derive(Debug)]
pub struct Machine {
    state: State,
    /// The console of a built guest, until the main loop takes it.
    console: Option<Console>,
    launched: bool,
}

impl Machine {
    /// `-machine none`: ready at once.
    pub fn none(config: MachineConfig, events: Publisher) -> Machine {
        Machine {
            state: State::Ready(Vm::none(config, events)),
            console: None,
            launched: false,
        }
    }

    /// Builds the guest on a thread, which wakes the main loop when done.
    pub fn build(
        config: MachineConfig,
        guest: GuestConfig,
        events: Publisher,
        waker: Arc<Waker>,
        program: String,
    ) -> Result<Machine, CliError> {
        let (sender, receiver) = mpsc::channel();
        std::thread::Builder::new()
            .name("build".into())
            .spawn(move || {
                // Wakes the loop last, after the result is sent, even if
                // the build panics (the loop then finds no result).
                let _wake = WakeOnDrop(waker.clone());
                if let Err(error) = crate::signals::block_in_this_thread() {
                    log::warn!("cannot keep signals off the build thread: {error}");
                }
                let mut say = |line: String| eprintln!("{program}: {line}");
                let built = crate::guest::build(&guest, waker, events.clone(), &mut say).map(
                    |(platform, console)| (Vm::new(config, Box::new(platform), events), console),
                );
                let _ = sender.send(built);
            })
            .map_err(|e| CliError::bare(format!("cannot start building the machine: {e}")))?;
        Ok(Machine {
            state: State::Building(receiver),
            console: None,
            launched: false,
        })
    }

    /// Collects a finished build (waiting for it with `wait`).  True once,
    /// when the machine has just become ready to launch.
    pub fn settle(&mut self, wait: bool) -> Result<bool, CliError> {
        if wait {
            self.collect();
        } else if let State::Building(receiver) = &self.state {
            match receiver.try_recv() {
                Ok(built) => self.collected(Ok(built)),
                Err(TryRecvError::Empty) => return Ok(false),
                Err(TryRecvError::Disconnected) => self.collected(Err(())),
            }
        }
        match &mut self.state {
            State::Failed(error) => Err(error
                .take()
                .unwrap_or_else(|| CliError::bare("the machine could not be built"))),
            State::Ready(_) if !self.launched => {
                self.launched = true;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Waits for the build, if one runs.
    fn collect(&mut self) {
        if let State::Building(receiver) = &self.state {
            let built = receiver.recv().map_err(|_| ());
            self.collected(built);
        }
    }

    /// Takes the build's result (`Err` when the build thread died).
    fn collected(&mut self, built: Result<Built, ()>) {
        self.state = match built {
            Ok(Ok((vm, console))) => {
                self.console = Some(console);
                State::Ready(vm)
            }
            Ok(Err(error)) => State::Failed(Some(error)),
            Err(()) => State::Failed(Some(CliError::bare("building the machine failed"))),
        };
    }

    /// Whether the machine is still being built.
    pub fn building(&self) -> bool {
        matches!(self.state, State::Building(_))
    }

    /// The machine, once built (waiting for the build).
    pub fn vm(&mut self) -> Option<&mut Vm> {
        self.collect();
        match &mut self.state {
            State::Ready(vm) => Some(vm),
            _ => None,
        }
    }

    /// The built guest's console, for the main loop to serve.
    pub fn take_console(&mut self) -> Option<Console> {
        self.console.take()
    }

    pub fn launch(&mut self) {
        if let Some(vm) = self.vm() {
            vm.launch();
        }
    }

    pub fn shutdown(&mut self, cause: ShutdownCause) {
        if let Some(vm) = self.vm() {
            vm.shutdown(cause);
        }
    }

    pub fn process_requests(&mut self) {
        if let State::Ready(vm) = &mut self.state {
            vm.process_requests();
        }
    }

    pub fn finish(&mut self) {
        if let Some(vm) = self.vm() {
            vm.finish();
        }
    }
}

struct WakeOnDrop(Arc<Waker>);

impl Drop for WakeOnDrop {
    fn drop(&mut self) {
        if let Err(error) = self.0.wake() {
            log::error!("cannot wake the main loop: {error}");
        }
    }
}

impl<C: Command> Handles<C> for Machine
where
    Vm: Handles<C>,
{
    fn handle(&mut self, command: C) -> Result<C::Returns, QmpError> {
        match self.vm() {
            Some(vm) => vm.handle(command),
            None => Err(QmpError::generic("The machine could not be started")),
        }
    }
}

impl MachineCommands for Machine {
    fn exit_status(&self) -> Option<i32> {
        match &self.state {
            State::Ready(vm) => vm.exit_status(),
            _ => None,
        }
    }
}
