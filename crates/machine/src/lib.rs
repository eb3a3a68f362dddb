//! kvmon's virtual machine: its run-state machine and lifecycle, and the
//! machines that answer the monitor's machine commands.  So far the only
//! machine is `none` (run state only, no vCPUs); the KVM machine implements
//! the same [`Machine`] interface.

mod identity;
mod lifecycle;
mod none;
pub mod run_state;

pub use identity::Uuid;
pub use lifecycle::Lifecycle;
pub use none::NoneMachine;

use qmp::commands::MachineCommands;
use qmp::types::ShutdownCause;

/// What the command line asks of every machine.
#[derive(Debug, Clone, Default)]
pub struct MachineConfig {
    /// `-name`
    pub name: Option<String>,
    /// `-uuid`
    pub uuid: Option<Uuid>,
    /// `-S`: stay in prelaunch until `cont`.
    pub start_paused: bool,
    /// `-no-shutdown`: a guest shutdown stops the VM instead of exiting.
    pub no_shutdown: bool,
    /// KVM was asked for (`-accel kvm`, `-enable-kvm`, `accel=kvm`) and `/dev/kvm` opened.
    pub kvm_enabled: bool,
}

/// A machine as kvmon's main loop drives it: QMP commands plus its lifecycle.
pub trait Machine: MachineCommands {
    /// A shutdown requested from outside the guest, e.g. on SIGTERM.
    fn shutdown(&mut self, cause: ShutdownCause);
}
