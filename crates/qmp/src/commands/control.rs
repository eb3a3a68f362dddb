//! Commands of the monitor itself: negotiation, version and introspection.

use super::introspection::SchemaInfo;
use crate::types::VersionInfo;

crate::qapi_enum! {
    /// Enumeration of capabilities to be advertised during initial client connection, used for agreeing on particular QMP extension behaviors.
    pub enum QMPCapability {
        /// QMP ability to support out-of-band requests.
        Oob = "oob",
    }
}

crate::qapi_command! {
    /// Enable QMP capabilities.  Before this command runs, it is the only
    /// command a client may execute, and no events are sent.
    "qmp_capabilities" => pub struct QmpCapabilities {
        /// An optional list of QMPCapability values to enable.  The client
        /// must not enable any capability that is not mentioned in the QMP
        /// greeting message.  If the field is not provided, it means no QMP
        /// capabilities will be enabled.
        enable: Option<Vec<QMPCapability>>,
    } -> ()
}

crate::qapi_command! {
    /// Returns the current version of the server: the QEMU version whose QMP
    /// interface kvmon implements, and kvmon's own version in `package`.
    "query-version" => pub struct QueryVersion {} -> VersionInfo
}

crate::qapi_struct! {
    /// Information about a QMP command
    pub struct CommandInfo {
        /// The command name
        name: String,
    }
}

crate::qapi_command! {
    /// Return a list of supported QMP commands by this server
    "query-commands" => pub struct QueryCommands {} -> Vec<CommandInfo>
}

crate::qapi_command! {
    /// Command query-qmp-schema exposes the QMP wire ABI as an array of
    /// SchemaInfo.  This lets clients figure out what commands and events
    /// are available, and their argument and return types.  Type names
    /// other than built-in ones are masked as numbers.
    "query-qmp-schema" => pub struct QueryQmpSchema {} -> Vec<SchemaInfo>
}
