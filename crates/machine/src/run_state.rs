//! The run-state machine: QEMU's states, its allowed transitions, and the
//! STOP / RESUME events that moving between them sends.

use events::{Publisher, ResumeEvent, StopEvent};
use qmp::types::RunState;
use qmp::QmpError;

/// Whether QEMU 10 allows moving from `from` to `to` (system/runstate.c,
/// including 9.0's transitions for stopping a suspended VM).
pub fn transition_allowed(from: RunState, to: RunState) -> bool {
    use RunState::*;
    if from == to {
        return true;
    }
    match from {
        Prelaunch => matches!(to, Inmigrate | Running | FinishMigrate),
        Debug => matches!(to, Running | FinishMigrate | Prelaunch | Suspended),
        Inmigrate => matches!(
            to,
            InternalError
                | IoError
                | Paused
                | Running
                | Shutdown
                | Suspended
                | Watchdog
                | GuestPanicked
                | FinishMigrate
                | Prelaunch
                | Postmigrate
                | Colo
        ),
        InternalError => matches!(to, Paused | FinishMigrate | Prelaunch),
        IoError => matches!(to, Running | FinishMigrate | Prelaunch),
        Paused => matches!(
            to,
            Running
                | FinishMigrate
                | Postmigrate
                | Prelaunch
                | Colo
                | SaveVm
                | RestoreVm
                | Suspended
        ),
        Postmigrate => matches!(to, Running | FinishMigrate | Prelaunch),
        FinishMigrate => matches!(
            to,
            Running
                | Paused
                | Postmigrate
                | Prelaunch
                | Colo
                | InternalError
                | IoError
                | Shutdown
                | Suspended
                | Watchdog
                | GuestPanicked
        ),
        RestoreVm => matches!(to, Running | Prelaunch),
        Colo => matches!(to, Running | Prelaunch | Shutdown),
        Running => matches!(
            to,
            Debug
                | InternalError
                | IoError
                | Paused
                | FinishMigrate
                | RestoreVm
                | SaveVm
                | Shutdown
                | Watchdog
                | GuestPanicked
                | Colo
                | Suspended
        ),
        SaveVm => matches!(to, Running),
        Shutdown => matches!(to, Paused | FinishMigrate | Prelaunch | Colo),
        Suspended => matches!(
            to,
            Running | FinishMigrate | Prelaunch | Colo | SaveVm | RestoreVm | Paused | Shutdown
        ),
        Watchdog => matches!(to, Running | FinishMigrate | Prelaunch | Colo),
        GuestPanicked => matches!(to, Running | FinishMigrate | Prelaunch),
    }
}

/// The VM's current run state; every change goes through here.
#[derive(Debug)]
pub struct RunStates {
    current: RunState,
    /// The VM was suspended when it was stopped, so `cont` returns it there.
    was_suspended: bool,
    events: Publisher,
}

impl RunStates {
    /// A VM that starts in `initial` (prelaunch with -S, else running).
    pub fn new(initial: RunState, events: Publisher) -> Self {
        RunStates {
            current: initial,
            was_suspended: false,
            events,
        }
    }

    pub fn current(&self) -> RunState {
        self.current
    }

    pub fn is_running(&self) -> bool {
        self.current == RunState::Running
    }

    /// Running or suspended: the states `stop` leaves, as QEMU's `runstate_is_live`.
    pub fn is_live(&self) -> bool {
        matches!(self.current, RunState::Running | RunState::Suspended)
    }

    /// Internal error or shutdown: only a reset gets the VM going again.
    pub fn needs_reset(&self) -> bool {
        matches!(self.current, RunState::InternalError | RunState::Shutdown)
    }

    /// Moves to `to` without events.  A move QEMU forbids is refused and logged
    /// (QEMU aborts; kvmon keeps running).
    pub fn set(&mut self, to: RunState) -> bool {
        if !transition_allowed(self.current, to) {
            log::error!("invalid runstate transition: '{}' -> '{to}'", self.current);
            return false;
        }
        self.current = to;
        true
    }

    /// QEMU's `vm_stop`: a live VM moves to `to` and STOP is sent; in any
    /// other state nothing happens.  Returns whether the VM stopped, so the
    /// caller can pause the vCPUs.
    pub fn stop(&mut self, to: RunState) -> bool {
        if !self.is_live() {
            return false;
        }
        let was_suspended = self.current == RunState::Suspended;
        if !self.set(to) {
            return false;
        }
        self.was_suspended = was_suspended;
        self.events.publish(StopEvent {});
        true
    }

    /// QEMU's `vm_start`: a stopped VM sends RESUME and runs again (or
    /// returns to suspended).  Returns whether the vCPUs should resume.
    pub fn start(&mut self) -> bool {
        if self.is_live() {
            return false;
        }
        let to = if self.was_suspended {
            RunState::Suspended
        } else {
            RunState::Running
        };
        if !transition_allowed(self.current, to) {
            log::error!("invalid runstate transition: '{}' -> '{to}'", self.current);
            return false;
        }
        self.events.publish(ResumeEvent {});
        self.current = to;
        self.was_suspended = false;
        to == RunState::Running
    }

    /// The checks of QMP `cont` before it starts the VM.
    pub fn check_cont(&self) -> Result<(), QmpError> {
        if self.needs_reset() {
            return Err(QmpError::generic(
                "Resetting the Virtual Machine is required",
            ));
        }
        if self.current == RunState::FinishMigrate {
            return Err(QmpError::generic("Migration is not finalized yet"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use events::{EventBus, Stamped};
    use mio::{Poll, Token, Waker};
    use std::sync::Arc;

    fn bus() -> (EventBus, Poll) {
        let poll = Poll::new().unwrap();
        let waker = Arc::new(Waker::new(poll.registry(), Token(0)).unwrap());
        (EventBus::new(waker), poll)
    }

    fn names(bus: &EventBus) -> Vec<&'static str> {
        bus.drain().map(|s: Stamped| s.event.name()).collect()
    }

    #[test]
    fn stop_and_start_send_events_only_on_change() {
        let (bus, _poll) = bus();
        let mut states = RunStates::new(RunState::Prelaunch, bus.publisher());
        assert!(
            !states.stop(RunState::Paused),
            "stop in prelaunch does nothing"
        );
        assert_eq!(states.current(), RunState::Prelaunch);
        assert!(states.start());
        assert_eq!(states.current(), RunState::Running);
        assert!(!states.start(), "cont while running does nothing");
        assert!(states.stop(RunState::Paused));
        assert!(!states.stop(RunState::Paused));
        assert_eq!(names(&bus), ["RESUME", "STOP"]);
    }

    #[test]
    fn suspended_vm_returns_to_suspended() {
        let (bus, _poll) = bus();
        let mut states = RunStates::new(RunState::Running, bus.publisher());
        assert!(states.set(RunState::Suspended));
        assert!(states.stop(RunState::Paused));
        assert!(!states.start(), "vCPUs stay stopped in suspended");
        assert_eq!(states.current(), RunState::Suspended);
    }

    #[test]
    fn forbidden_transitions_are_refused() {
        let (bus, _poll) = bus();
        let mut states = RunStates::new(RunState::Prelaunch, bus.publisher());
        assert!(!states.set(RunState::Paused));
        assert_eq!(states.current(), RunState::Prelaunch);
        assert!(states.set(RunState::Running));
        assert!(states.set(RunState::Shutdown));
        assert_eq!(
            states.check_cont().unwrap_err().desc,
            "Resetting the Virtual Machine is required"
        );
        assert!(!states.set(RunState::Running));
    }

    #[test]
    fn every_state_can_return_to_prelaunch_or_is_a_transient() {
        // QEMU's table lets every state except running and save-vm restart
        // through prelaunch (a reset with -S); running stops first.
        for &state in RunState::ALL {
            let reachable = transition_allowed(state, RunState::Prelaunch);
            let transient = matches!(state, RunState::Running | RunState::SaveVm);
            assert!(reachable || transient, "{state}");
        }
    }
}
