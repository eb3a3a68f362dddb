//! Commands that reset and power the machine, and the actions taken when
//! the guest resets, shuts down, panics or its watchdog fires.

crate::qapi_command! {
    /// Performs a hard reset of a guest.  The RESET event (reason
    /// host-qmp-system-reset) is sent before the return; with `-no-reboot`
    /// (set-action reboot=shutdown) the VM shuts down instead.
    "system_reset" => pub struct SystemReset {} -> ()
}

crate::qapi_command! {
    /// Requests that a guest perform a powerdown operation: the POWERDOWN
    /// event is sent and the guest is sent an ACPI power-button press.  The
    /// guest may ignore it; when it powers off, SHUTDOWN follows.
    "system_powerdown" => pub struct SystemPowerdown {} -> ()
}

crate::qapi_enum! {
    /// Possible QEMU actions when a VM initiates a reboot
    pub enum RebootAction {
        /// Reset the VM
        Reset = "reset",
        /// Shutdown the VM and exit, according to the shutdown action
        Shutdown = "shutdown",
    }
}

crate::qapi_enum! {
    /// Possible QEMU actions when a VM initiates a shutdown
    pub enum ShutdownAction {
        /// Shutdown the VM and exit
        Poweroff = "poweroff",
        /// pause the VM
        Pause = "pause",
    }
}

crate::qapi_enum! {
    /// Possible QEMU actions when the guest panics
    pub enum PanicAction {
        /// Pause the VM
        Pause = "pause",
        /// Shutdown the VM and exit, according to the shutdown action
        Shutdown = "shutdown",
        /// Shutdown the VM and exit with nonzero status
        ExitFailure = "exit-failure",
        /// Continue VM execution
        None = "none",
    }
}

crate::qapi_enum! {
    /// An enumeration of the actions taken when the watchdog device's timer
    /// is expired
    pub enum WatchdogAction {
        /// system resets
        Reset = "reset",
        /// system shutdown, note that it is similar to @powerdown, which
        /// tries to set to system status and notify guest
        Shutdown = "shutdown",
        /// system poweroff, the emulator program exits
        Poweroff = "poweroff",
        /// system pauses, similar to @stop
        Pause = "pause",
        /// system enters debug state
        Debug = "debug",
        /// nothing is done
        None = "none",
        /// a non-maskable interrupt is injected into the first vCPU (all
        /// VCPUS on x86)
        InjectNmi = "inject-nmi",
    }
}

crate::qapi_command! {
    /// Set the actions that will be taken by the emulator in response to
    /// guest events.  The panic and watchdog actions apply to the devices
    /// that report those events.
    "set-action" => pub struct SetAction {
        /// Perform the given action when the guest reboots
        reboot: Option<RebootAction>,
        /// Perform the given action when the guest shuts down
        shutdown: Option<ShutdownAction>,
        /// Perform the given action when the guest panics
        panic: Option<PanicAction>,
        /// Perform the given action when a watchdog expires
        watchdog: Option<WatchdogAction>,
    } -> ()
}
