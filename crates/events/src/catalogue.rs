//! Every event kvmon can send, declared once each.

use qmp::commands::{GuestPanicAction, GuestPanicInformation, WatchdogAction};
use qmp::schema::{EventDecl, SchemaType};
use qmp::types::{BlockErrorAction, IoOperationType, ShutdownCause};
use qmp::Value;

qmp::qapi_event! {
    /// Emitted when the virtual machine has shut down, indicating that qemu
    /// is about to exit.  If the command-line option "-no-shutdown" has been
    /// specified, qemu will not exit, and a STOP event will eventually follow
    /// the SHUTDOWN event.
    "SHUTDOWN" => pub struct ShutdownEvent {
        /// If true, the shutdown was triggered by a guest request (such as a
        /// guest-initiated ACPI shutdown request or other hardware-specific
        /// action) rather than a host request (such as sending qemu a SIGINT).
        guest: bool,
        /// The ShutdownCause which resulted in the SHUTDOWN.
        reason: ShutdownCause,
    }
}

qmp::qapi_event! {
    /// Emitted when the virtual machine is powered down through the power
    /// control system, such as via ACPI.
    "POWERDOWN" => pub struct PowerdownEvent {}
}

qmp::qapi_event! {
    /// Emitted when the virtual machine is reset
    "RESET" => pub struct ResetEvent {
        /// If true, the reset was triggered by a guest request (such as a
        /// guest-initiated ACPI reboot request or other hardware-specific
        /// action) rather than a host request (such as the QMP command
        /// system_reset).
        guest: bool,
        /// The ShutdownCause of the RESET.
        reason: ShutdownCause,
    }
}

qmp::qapi_event! {
    /// Emitted when the virtual machine is stopped
    "STOP" => pub struct StopEvent {}
}

qmp::qapi_event! {
    /// Emitted when the virtual machine resumes execution
    "RESUME" => pub struct ResumeEvent {}
}

qmp::qapi_event! {
    /// Emitted when a disk I/O error occurs
    "BLOCK_IO_ERROR" => pub struct BlockIoErrorEvent {
        /// path to the device object in the QOM tree
        qom_path = "qom-path": String,
        /// device name.  This is always present for compatibility reasons,
        /// but it can be empty ("") if the image does not have a device name
        /// associated.
        device: String,
        /// node name.  Note that errors may be reported for the root node
        /// that is directly attached to a guest device rather than for the
        /// node where the error occurred.  The node name is not present if
        /// the drive is empty.
        node_name = "node-name": Option<String>,
        /// I/O operation
        operation: IoOperationType,
        /// action that has been taken
        action: BlockErrorAction,
        /// true if I/O error was caused due to a no-space condition.  This
        /// key is only present if query-block's io-status is present.
        nospace: Option<bool>,
        /// human readable string describing the error cause.  (This field is
        /// a debugging aid for humans, it should not be parsed by
        /// applications)
        reason: String,
    }
}

qmp::qapi_event! {
    /// Emitted when the guest changes the RTC time.
    "RTC_CHANGE" => pub struct RtcChangeEvent {
        /// offset in seconds between base RTC clock (as specified by -rtc
        /// base), and new RTC clock value
        offset: i64,
        /// path to the RTC object in the QOM tree
        qom_path = "qom-path": String,
    }
}

qmp::qapi_event! {
    /// Emitted once when a NIC's receive filter changes; not again until
    /// a client queries that NIC's filter (query-rx-filter).
    "NIC_RX_FILTER_CHANGED" => pub struct NicRxFilterChangedEvent {
        /// net client name
        name: Option<String>,
        /// device path
        path: String,
    }
}

qmp::qapi_event! {
    /// Emitted when the guest changes the actual BALLOON level.  This value
    /// is equivalent to the @actual field return by the 'query-balloon'
    /// command.  The event is rate-limited.
    "BALLOON_CHANGE" => pub struct BalloonChangeEvent {
        /// the logical size of the VM in bytes.  Formula used:
        /// logical_vm_size = vm_ram_size - balloon_size
        actual: i64,
    }
}

qmp::qapi_event! {
    /// Emitted when the watchdog device's timer is expired
    "WATCHDOG" => pub struct WatchdogEvent {
        /// action that has been taken
        action: WatchdogAction,
    }
}

qmp::qapi_event! {
    /// Emitted when guest OS panic is detected
    "GUEST_PANICKED" => pub struct GuestPanickedEvent {
        /// action that has been taken, currently always "pause"
        action: GuestPanicAction,
        /// information about a panic
        info: Option<GuestPanicInformation>,
    }
}

qmp::qapi_event! {
    /// Emitted when guest OS crash loaded is detected
    "GUEST_CRASHLOADED" => pub struct GuestCrashloadedEvent {
        /// action that has been taken, currently always "run"
        action: GuestPanicAction,
        /// information about a panic
        info: Option<GuestPanicInformation>,
    }
}

qmp::qapi_event! {
    /// Emitted when guest submits a shutdown request via pvpanic interface
    "GUEST_PVSHUTDOWN" => pub struct GuestPvshutdownEvent {}
}

/// Declares the [`Event`] enum over the event data types.
macro_rules! event_set {
    ($($variant:ident($data:ty),)*) => {
        /// An event, with its data.
        #[derive(Debug, Clone, PartialEq)]
        pub enum Event {
            $( $variant($data), )*
        }

        impl Event {
            /// The event's name on the wire.
            pub fn name(&self) -> &'static str {
                match self {
                    $( Event::$variant(_) => <$data as qmp::Event>::NAME, )*
                }
            }

            /// The `data` member; `None` for events that declare no data.
            pub fn data(&self) -> Option<Value> {
                match self {
                    $( Event::$variant(data) => {
                        has_data::<$data>().then(|| data.to_value())
                    } )*
                }
            }

            /// Every event's declaration, for introspection and docs.
            pub fn decls() -> Vec<EventDecl> {
                vec![$( <$data as qmp::Event>::decl(), )*]
            }
        }

        $(
            impl From<$data> for Event {
                fn from(data: $data) -> Event {
                    Event::$variant(data)
                }
            }
        )*
    };
}

event_set! {
    Shutdown(ShutdownEvent),
    Powerdown(PowerdownEvent),
    Reset(ResetEvent),
    Stop(StopEvent),
    Resume(ResumeEvent),
    BlockIoError(BlockIoErrorEvent),
    RtcChange(RtcChangeEvent),
    BalloonChange(BalloonChangeEvent),
    NicRxFilterChanged(NicRxFilterChangedEvent),
    Watchdog(WatchdogEvent),
    GuestPanicked(GuestPanickedEvent),
    GuestCrashloaded(GuestCrashloadedEvent),
    GuestPvshutdown(GuestPvshutdownEvent),
}

/// QEMU sends `data` exactly for events whose schema declares members.
fn has_data<T: SchemaType>() -> bool {
    !T::type_info().is_empty_object()
}

impl ShutdownEvent {
    pub fn new(reason: ShutdownCause) -> Self {
        ShutdownEvent {
            guest: reason.is_guest(),
            reason,
        }
    }
}

impl ResetEvent {
    pub fn new(reason: ShutdownCause) -> Self {
        ResetEvent {
            guest: reason.is_guest(),
            reason,
        }
    }
}
