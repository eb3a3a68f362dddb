//! The commands the monitor answers itself: negotiation, version,
//! introspection, yank and the migration stubs.

use qmp::commands::control::QMPCapability;
use qmp::commands::introspection::SchemaInfo;
use qmp::commands::{
    CommandInfo, MigratePause, QmpCapabilities, QueryCommands, QueryQmpSchema, QueryVersion,
    QueryYank, Yank, YankInstance, YankInstanceBase, YankInstanceChardev, YankInstanceVariant,
};
use qmp::types::{VersionInfo, VersionTriple};
use qmp::{ErrorClass, QmpError};

use crate::dispatch::Context;

/// The QEMU release whose QMP interface kvmon implements.
const QEMU_VERSION: VersionTriple = VersionTriple {
    major: 10,
    minor: 0,
    micro: 0,
};

/// What the greeting and `query-version` report: QEMU's version number, and
/// kvmon's own name and version as the package.
pub fn version() -> VersionInfo {
    VersionInfo {
        qemu: QEMU_VERSION,
        package: format!("kvmon-{}", env!("CARGO_PKG_VERSION")),
    }
}

pub fn qmp_capabilities(
    context: &mut Context<'_>,
    command: QmpCapabilities,
) -> Result<(), QmpError> {
    if context.session.negotiated {
        return Err(QmpError::command_not_found(
            "Capabilities negotiation is already complete, command ignored",
        ));
    }
    let enable = command.enable.unwrap_or_default();
    context.session.oob = enable.contains(&QMPCapability::Oob);
    context.session.negotiated = true;
    Ok(())
}

pub fn query_version(context: &mut Context<'_>, _: QueryVersion) -> Result<VersionInfo, QmpError> {
    Ok(context.server.version.clone())
}

pub fn query_commands(
    context: &mut Context<'_>,
    _: QueryCommands,
) -> Result<Vec<CommandInfo>, QmpError> {
    Ok(context.table.command_list())
}

pub fn query_qmp_schema(
    context: &mut Context<'_>,
    _: QueryQmpSchema,
) -> Result<Vec<SchemaInfo>, QmpError> {
    Ok(context.table.schema().to_vec())
}

/// Drops every connection of the named chardevs.  All instances must
/// exist before any is yanked.
pub fn yank(context: &mut Context<'_>, command: Yank) -> Result<(), QmpError> {
    let mut ids = Vec::new();
    for instance in &command.instances {
        match &instance.kind {
            YankInstanceVariant::Chardev(chardev)
                if context.server.chardevs.contains(&chardev.id) =>
            {
                ids.push(chardev.id.clone());
            }
            _ => {
                return Err(QmpError::new(
                    ErrorClass::DeviceNotFound,
                    "Instance not found",
                ))
            }
        }
    }
    context.yanked.extend(ids);
    Ok(())
}

pub fn query_yank(context: &mut Context<'_>, _: QueryYank) -> Result<Vec<YankInstance>, QmpError> {
    Ok(context
        .server
        .chardevs
        .iter()
        .map(|id| YankInstance {
            base: YankInstanceBase {},
            kind: YankInstanceVariant::Chardev(YankInstanceChardev { id: id.clone() }),
        })
        .collect())
}

pub fn migrate_pause(_: &mut Context<'_>, _: MigratePause) -> Result<(), QmpError> {
    Err(QmpError::generic(
        "migrate-pause is currently only supported during postcopy-active or postcopy-recover state",
    ))
}
