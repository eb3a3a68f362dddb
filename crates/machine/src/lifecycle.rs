//! How a machine ends: shutdown requests, `-no-shutdown`, and the exit status.

use events::{Publisher, ShutdownEvent};
use qmp::types::{RunState, ShutdownCause};

use crate::run_state::RunStates;

/// The run states plus what happens when the VM shuts down.
#[derive(Debug)]
pub struct Lifecycle {
    pub states: RunStates,
    /// `-no-shutdown`: a guest shutdown stops the VM instead of exiting.
    no_shutdown: bool,
    exit_status: Option<i32>,
    events: Publisher,
}

impl Lifecycle {
    /// `start_paused` is `-S`.
    pub fn new(start_paused: bool, no_shutdown: bool, events: Publisher) -> Self {
        let initial = if start_paused {
            RunState::Prelaunch
        } else {
            RunState::Running
        };
        Lifecycle {
            states: RunStates::new(initial, events.clone()),
            no_shutdown,
            exit_status: None,
            events,
        }
    }

    /// Sends SHUTDOWN; then kvmon exits, or with `-no-shutdown` the VM stops
    /// in the shutdown state.  `quit` and signals always exit, as in QEMU.
    pub fn shutdown(&mut self, cause: ShutdownCause) {
        log::info!("shutdown: {cause}");
        self.events.publish(ShutdownEvent::new(cause));
        let forced = matches!(
            cause,
            ShutdownCause::HostQmpQuit | ShutdownCause::HostSignal
        );
        if self.no_shutdown && !forced {
            self.states.stop(RunState::Shutdown);
        } else {
            self.exit_status = Some(0);
        }
    }

    /// Set once kvmon should exit, with the status to exit with.
    pub fn exit_status(&self) -> Option<i32> {
        self.exit_status
    }
}
