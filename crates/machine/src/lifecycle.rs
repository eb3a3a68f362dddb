//! How a machine starts, stops, resets and ends, as QEMU's main loop does
//! it: `vm_stop`/`vm_start` with the vCPUs paused before STOP is sent,
//! reset requests (RESET, or a shutdown under reboot=shutdown), shutdown
//! requests (SHUTDOWN, then exit, or a stop in the shutdown state under
//! shutdown=pause), and the actions `-no-reboot`, `-no-shutdown` and
//! `set-action` choose.

use events::{Publisher, ResetEvent, ShutdownEvent};
use qmp::commands::{PanicAction, RebootAction, SetAction, ShutdownAction, WatchdogAction};
use qmp::types::{RunState, ShutdownCause};

use crate::run_state::RunStates;

/// The vCPUs as the lifecycle drives them.
pub trait Execution: std::fmt::Debug {
    /// Returns once no vCPU runs guest code.
    fn pause(&mut self);
    fn resume(&mut self);
    /// Returns the machine to its boot state; called with the vCPUs paused.
    fn reset(&mut self);
}

/// A machine without vCPUs.
#[derive(Debug)]
pub struct NoVcpus;

impl Execution for NoVcpus {
    fn pause(&mut self) {}
    fn resume(&mut self) {}
    fn reset(&mut self) {}
}

/// What happens on guest events, as `-action`/`set-action` set them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Actions {
    pub reboot: RebootAction,
    pub shutdown: ShutdownAction,
    pub panic: PanicAction,
    pub watchdog: WatchdogAction,
}

impl Default for Actions {
    fn default() -> Actions {
        Actions {
            reboot: RebootAction::Reset,
            shutdown: ShutdownAction::Poweroff,
            panic: PanicAction::Shutdown,
            watchdog: WatchdogAction::Reset,
        }
    }
}

impl Actions {
    pub fn apply(&mut self, set: &SetAction) {
        self.reboot = set.reboot.unwrap_or(self.reboot);
        self.shutdown = set.shutdown.unwrap_or(self.shutdown);
        self.panic = set.panic.unwrap_or(self.panic);
        self.watchdog = set.watchdog.unwrap_or(self.watchdog);
    }
}

/// The run states plus what happens when the VM resets or shuts down.
#[derive(Debug)]
pub struct Lifecycle {
    pub states: RunStates,
    pub actions: Actions,
    exit_status: Option<i32>,
    events: Publisher,
}

impl Lifecycle {
    /// `start_paused` is `-S`.
    pub fn new(start_paused: bool, actions: Actions, events: Publisher) -> Self {
        let initial = if start_paused {
            RunState::Prelaunch
        } else {
            RunState::Running
        };
        Lifecycle {
            states: RunStates::new(initial, events.clone()),
            actions,
            exit_status: None,
            events,
        }
    }

    /// QEMU's `vm_stop`: a live VM's vCPUs are paused, then it moves to
    /// `to` and STOP is sent.  Elsewhere nothing happens.
    pub fn stop(&mut self, to: RunState, vcpus: &mut dyn Execution) {
        if self.states.is_live() {
            vcpus.pause();
            self.states.stop(to);
        }
    }

    /// QEMU's `vm_start`: RESUME, then the vCPUs run.
    pub fn start(&mut self, vcpus: &mut dyn Execution) {
        if self.states.start() {
            vcpus.resume();
        }
    }

    /// A reset request, handled as QEMU's main loop does: under
    /// reboot=shutdown it is a shutdown; otherwise the machine resets with
    /// its vCPUs paused, RESET is sent, and the vCPUs run again if the VM
    /// is running — else the VM waits in prelaunch for `cont`.
    pub fn reset(&mut self, cause: ShutdownCause, vcpus: &mut dyn Execution) {
        if self.actions.reboot == RebootAction::Shutdown && cause != ShutdownCause::SubsystemReset {
            self.shutdown(cause, vcpus);
            return;
        }
        log::info!("reset: {cause}");
        vcpus.pause();
        vcpus.reset();
        if cause != ShutdownCause::SubsystemReset {
            self.events.publish(ResetEvent::new(cause));
        }
        if self.states.is_running() {
            vcpus.resume();
        } else if !matches!(
            self.states.current(),
            RunState::Inmigrate | RunState::FinishMigrate
        ) {
            self.states.set(RunState::Prelaunch);
        }
    }

    /// Sends SHUTDOWN; then kvmon exits, or under shutdown=pause the VM
    /// stops in the shutdown state.  `quit` and signals always exit, as in
    /// QEMU, which sets shutdown=poweroff for them.
    pub fn shutdown(&mut self, cause: ShutdownCause, vcpus: &mut dyn Execution) {
        log::info!("shutdown: {cause}");
        let forced = matches!(
            cause,
            ShutdownCause::HostQmpQuit | ShutdownCause::HostSignal
        );
        if forced {
            self.actions.shutdown = ShutdownAction::Poweroff;
        }
        self.events.publish(ShutdownEvent::new(cause));
        if self.actions.shutdown == ShutdownAction::Pause {
            self.stop(RunState::Shutdown, vcpus);
        } else if cause == ShutdownCause::GuestPanic
            && self.actions.panic == PanicAction::ExitFailure
        {
            self.exit(1);
        } else {
            self.exit(0);
        }
    }

    /// kvmon exits with `status`, without further events.
    pub fn exit(&mut self, status: i32) {
        self.exit_status.get_or_insert(status);
    }

    /// Set once kvmon should exit, with the status to exit with.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_status
    }
}
