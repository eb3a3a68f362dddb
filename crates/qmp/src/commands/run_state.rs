//! Commands that query and change the VM's run state.

use crate::types::StatusInfo;

crate::qapi_command! {
    /// Query the run status of the VM
    "query-status" => pub struct QueryStatus {} -> StatusInfo
}

crate::qapi_command! {
    /// Stop guest VM execution.  The STOP event is sent before the return
    /// when the guest was running; in any other state the command does nothing.
    "stop" => pub struct Stop {} -> ()
}

crate::qapi_command! {
    /// Resume guest VM execution.  The RESUME event is sent before the return
    /// when the guest was not running.
    "cont" => pub struct Cont {} -> ()
}

crate::qapi_command! {
    /// This command will cause the server to exit gracefully: the SHUTDOWN
    /// event (reason host-qmp-quit) is sent, then the return, then every
    /// connection is closed and the process exits with status 0.
    "quit" => pub struct Quit {} -> ()
}
