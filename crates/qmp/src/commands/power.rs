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
    /// Set watchdog action.  The same as `set-action` with only `watchdog`.
    "watchdog-set-action" => pub struct WatchdogSetAction {
        /// the action taken when the watchdog expires
        action: WatchdogAction,
    } -> ()
}

crate::qapi_enum! {
    /// An enumeration of the actions taken when guest OS panic is detected
    pub enum GuestPanicAction {
        /// system pauses
        Pause = "pause",
        /// system powers off
        Poweroff = "poweroff",
        /// system continues to run
        Run = "run",
    }
}

crate::qapi_enum! {
    /// An enumeration of the guest panic information types
    pub enum GuestPanicInformationType {
        /// hyper-v guest panic information type
        HyperV = "hyper-v",
        /// s390 guest panic information type
        S390 = "s390",
    }
}

crate::qapi_struct! {
    /// Hyper-V specific guest panic information (HV crash MSRs)
    pub struct GuestPanicInformationHyperV {
        /// for Windows, STOP code for the guest crash.  For Linux, an error
        /// code.
        arg1: u64,
        /// for Windows, first argument of the STOP.  For Linux, the guest
        /// OS ID, which has the kernel version in bits 16-47 and 0x8100 in
        /// bits 48-63.
        arg2: u64,
        /// for Windows, second argument of the STOP.  For Linux, the
        /// program counter of the guest.
        arg3: u64,
        /// for Windows, third argument of the STOP.  For Linux, the RAX
        /// register (x86) or the stack pointer (aarch64) of the guest.
        arg4: u64,
        /// for Windows, fourth argument of the STOP.  For x86 Linux, the
        /// stack pointer of the guest.
        arg5: u64,
    }
}

crate::qapi_enum! {
    /// Reason why the CPU is in a crashed state.
    pub enum S390CrashReason {
        /// no crash reason was set
        Unknown = "unknown",
        /// the CPU has entered a disabled wait state
        DisabledWait = "disabled-wait",
        /// clock comparator or cpu timer interrupt with new PSW enabled for
        /// external interrupts
        ExtintLoop = "extint-loop",
        /// program interrupt with BAD new PSW
        PgmintLoop = "pgmint-loop",
        /// operation exception interrupt with invalid code at the program
        /// interrupt new PSW
        OpintLoop = "opint-loop",
    }
}

crate::qapi_struct! {
    /// S390 specific guest panic information (PSW)
    pub struct GuestPanicInformationS390 {
        /// core id of the CPU that crashed
        core: u32,
        /// control fields of guest PSW
        psw_mask = "psw-mask": u64,
        /// guest instruction address
        psw_addr = "psw-addr": u64,
        /// guest crash reason
        reason: S390CrashReason,
    }
}

crate::qapi_struct! {
    /// The members every guest panic information has besides its type:
    /// none.
    pub struct GuestPanicInformationBase {}
}

crate::qapi_union! {
    /// Information about a guest panic.  kvmon's pvpanic has none to give,
    /// as QEMU's has not; the type is declared for introspection.
    pub union GuestPanicInformation: GuestPanicInformationBase,
    tag kind = "type": GuestPanicInformationType => GuestPanicInformationVariant {
        HyperV(GuestPanicInformationHyperV),
        S390(GuestPanicInformationS390),
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
