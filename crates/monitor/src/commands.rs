//! The commands kvmon answers, in the order of QEMU's schema.

use events::Event;
use qmp::commands::{
    Balloon, BlockResize, Cont, HumanMonitorCommand, InjectNmi, MigratePause, QmpCapabilities,
    QomGet, QomSet, QueryBalloon, QueryBlock, QueryBlockstats, QueryCommands, QueryCpusFast,
    QueryKvm, QueryName, QueryQmpSchema, QueryRxFilter, QueryStatus, QueryTarget, QueryUuid,
    QueryVersion, QueryYank, Quit, SetAction, SetLink, Stop, SystemPowerdown, SystemReset,
    WatchdogSetAction, Yank,
};

use crate::control;
use crate::dispatch::{CommandTable, TableBuilder};
use crate::hmp;

pub fn command_table() -> CommandTable {
    TableBuilder::default()
        .machine::<QueryStatus>()
        .machine::<WatchdogSetAction>()
        .machine::<SetAction>()
        .machine::<QueryBlock>()
        .machine::<QueryBlockstats>()
        .machine::<BlockResize>()
        .machine::<SetLink>()
        .machine::<QueryRxFilter>()
        .monitor::<MigratePause>(control::migrate_pause)
        .monitor::<QmpCapabilities>(control::qmp_capabilities)
        .monitor::<QueryVersion>(control::query_version)
        .monitor::<QueryCommands>(control::query_commands)
        .machine::<Quit>()
        .monitor::<QueryQmpSchema>(control::query_qmp_schema)
        .machine::<QomGet>()
        .machine::<QomSet>()
        .machine::<QueryCpusFast>()
        .machine::<QueryTarget>()
        .machine::<QueryUuid>()
        .machine::<SystemReset>()
        .machine::<SystemPowerdown>()
        .machine::<InjectNmi>()
        .machine::<QueryKvm>()
        .machine::<Balloon>()
        .machine::<QueryBalloon>()
        .monitor::<Yank>(control::yank)
        .monitor::<QueryYank>(control::query_yank)
        .machine::<QueryName>()
        .machine::<Stop>()
        .machine::<Cont>()
        .monitor::<HumanMonitorCommand>(hmp::human_monitor_command)
        .build(&Event::decls())
}
