//! The bridge to the human monitor.

crate::qapi_command! {
    /// Execute a command on the human monitor and return the output.
    /// kvmon understands a subset of QEMU's HMP commands and answers them
    /// with QEMU's text; `help` lists them.
    "human-monitor-command" => pub struct HumanMonitorCommand {
        /// the command to execute in the human monitor
        command_line = "command-line": String,
        /// The CPU to use for commands that require an implicit CPU
        cpu_index = "cpu-index": Option<i64>,
    } -> String
}
