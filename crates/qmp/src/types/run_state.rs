//! The VM's run state, as QEMU names it.

crate::qapi_enum! {
    /// An enumeration of VM run states.
    pub enum RunState {
        /// QEMU is running on a debugger
        Debug = "debug",
        /// guest is paused waiting for an incoming migration
        Inmigrate = "inmigrate",
        /// An internal error that prevents further guest execution has occurred
        InternalError = "internal-error",
        /// the last IOP has failed and the device is configured to pause on I/O errors
        IoError = "io-error",
        /// guest has been paused via the 'stop' command
        Paused = "paused",
        /// guest is paused following a successful 'migrate'
        Postmigrate = "postmigrate",
        /// QEMU was started with -S and guest has not started
        Prelaunch = "prelaunch",
        /// guest is paused to finish the migration process
        FinishMigrate = "finish-migrate",
        /// guest is paused to restore VM state
        RestoreVm = "restore-vm",
        /// guest is actively running
        Running = "running",
        /// guest is paused to save the VM state
        SaveVm = "save-vm",
        /// guest is shut down (and -no-shutdown is in use)
        Shutdown = "shutdown",
        /// guest is suspended (ACPI S3)
        Suspended = "suspended",
        /// the watchdog action is configured to pause and has been triggered
        Watchdog = "watchdog",
        /// guest has been panicked as a result of guest OS panic
        GuestPanicked = "guest-panicked",
        /// guest is paused to save/restore VM state under colo checkpoint
        Colo = "colo",
    }
}

crate::qapi_enum! {
    /// An enumeration of reasons for a shutdown.
    pub enum ShutdownCause {
        /// No shutdown request pending
        None = "none",
        /// An error prevents further use of guest
        HostError = "host-error",
        /// Reaction to the QMP command 'quit'
        HostQmpQuit = "host-qmp-quit",
        /// Reaction to the QMP command 'system_reset'
        HostQmpSystemReset = "host-qmp-system-reset",
        /// Reaction to a signal, such as SIGINT
        HostSignal = "host-signal",
        /// Reaction to a UI event, like window close
        HostUi = "host-ui",
        /// Guest shutdown/suspend request, via ACPI or other hardware-specific means
        GuestShutdown = "guest-shutdown",
        /// Guest reset request, and command line turns that into a shutdown
        GuestReset = "guest-reset",
        /// Guest panicked, and command line turns that into a shutdown
        GuestPanic = "guest-panic",
        /// Partial guest reset that does not trigger QMP events and ignores --no-reboot
        SubsystemReset = "subsystem-reset",
        /// A snapshot is being loaded by the record & replay subsystem
        SnapshotLoad = "snapshot-load",
    }
}

impl ShutdownCause {
    /// Whether the guest itself caused it: the `guest` member of SHUTDOWN and RESET.
    pub fn is_guest(self) -> bool {
        matches!(
            self,
            ShutdownCause::GuestShutdown | ShutdownCause::GuestReset | ShutdownCause::GuestPanic
        )
    }
}

crate::qapi_struct! {
    /// Information about VM run state
    pub struct StatusInfo {
        /// true if all VCPUs are runnable, false if not runnable
        running: bool,
        /// the virtual machine RunState
        status: RunState,
    }
}
