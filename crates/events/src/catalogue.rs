//! Every event kvmon can send, declared once each.

use qmp::schema::{EventDecl, SchemaType};
use qmp::types::ShutdownCause;
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
