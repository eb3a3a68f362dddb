//! kvmon's QMP commands, declared once each, and the interface through which
//! the monitor hands the machine's commands to the machine.

mod balloon;
mod block;
pub mod control;
mod cpus;
mod hmp;
pub mod introspection;
mod machine_info;
mod migration;
mod net;
mod power;
mod qom;
mod run_state;
mod yank;

pub use balloon::{Balloon, BalloonInfo, QueryBalloon};
pub use block::*;
pub use control::{
    CommandInfo, QMPCapability, QmpCapabilities, QueryCommands, QueryQmpSchema, QueryVersion,
};
pub use cpus::{
    CpuInfoFast, CpuInfoFastBase, CpuInfoFastVariant, CpuInstanceProperties, InjectNmi,
    QueryCpusFast,
};
pub use hmp::HumanMonitorCommand;
pub use machine_info::{
    KvmInfo, NameInfo, QueryKvm, QueryName, QueryTarget, QueryUuid, SysEmuTarget, TargetInfo,
    UuidInfo,
};
pub use migration::MigratePause;
pub use net::{QueryRxFilter, RxFilterInfo, RxState, SetLink};
pub use power::{
    GuestPanicAction, GuestPanicInformation, PanicAction, RebootAction, SetAction, ShutdownAction,
    SystemPowerdown, SystemReset, WatchdogAction, WatchdogSetAction,
};
pub use qom::{QomGet, QomSet};
pub use run_state::{Cont, QueryStatus, Quit, Stop};
pub use yank::{
    QueryYank, Yank, YankInstance, YankInstanceBase, YankInstanceChardev, YankInstanceType,
    YankInstanceVariant,
};

use crate::error::QmpError;
use crate::schema::Command;

/// Something that carries out command `C`.
pub trait Handles<C: Command> {
    fn handle(&mut self, command: C) -> Result<C::Returns, QmpError>;
}

/// The interface the monitor drives a machine through: the commands a
/// machine answers, dispatched to whatever machine kvmon runs (`-machine
/// none` or a KVM guest); the monitor answers the protocol's own commands.
pub trait MachineCommands:
    Handles<QueryStatus>
    + Handles<Stop>
    + Handles<Cont>
    + Handles<Quit>
    + Handles<QueryName>
    + Handles<QueryUuid>
    + Handles<QueryKvm>
    + Handles<QueryTarget>
    + Handles<SystemReset>
    + Handles<SystemPowerdown>
    + Handles<SetAction>
    + Handles<WatchdogSetAction>
    + Handles<InjectNmi>
    + Handles<QueryCpusFast>
    + Handles<QueryBlock>
    + Handles<QueryBlockstats>
    + Handles<BlockResize>
    + Handles<Balloon>
    + Handles<QueryBalloon>
    + Handles<QomGet>
    + Handles<QomSet>
    + Handles<SetLink>
    + Handles<QueryRxFilter>
{
    /// Set once the machine has finished (after `quit`, a signal, or a guest
    /// shutdown without `-no-shutdown`): no further command runs, and kvmon
    /// exits with this status.
    fn exit_status(&self) -> Option<i32>;
}
