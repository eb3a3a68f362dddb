//! kvmon's virtual machine: its run-state machine and lifecycle, the
//! machine commands, and the platforms beneath — a KVM guest with vCPUs,
//! memory, direct boot, ACPI and platform devices, or `-machine none`.

mod balloon;
mod block;
mod identity;
pub mod kvm;
mod lifecycle;
mod net;
mod qom;
pub mod run_state;
mod vm;

pub use balloon::{BalloonConfig, BalloonDevice};
pub use block::BlockDevice;
pub use identity::Uuid;
pub use lifecycle::{Actions, Execution, NoVcpus};
pub use net::{NetDevice, Nic, NicConfig, TapSource};
pub use vm::{Platform, Request, Vm};

/// What the command line asks of every machine.
#[derive(Debug, Clone, Default)]
pub struct MachineConfig {
    /// `-name`
    pub name: Option<String>,
    /// `-uuid`
    pub uuid: Option<Uuid>,
    /// `-S`: stay in prelaunch until `cont`.
    pub start_paused: bool,
    /// `-no-reboot`, `-no-shutdown`, `-action`.
    pub actions: Actions,
    /// KVM was asked for (`-accel kvm`, `-enable-kvm`, `accel=kvm`) and `/dev/kvm` opened.
    pub kvm_enabled: bool,
}
