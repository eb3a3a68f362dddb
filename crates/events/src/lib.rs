//! kvmon's internal event bus.
//!
//! Devices, vCPU threads and the machine publish typed [`Event`]s from any
//! thread; each is stamped with the wall-clock time at the moment of
//! publishing and wakes the main loop.  The monitor drains the bus, applies
//! QEMU's rate limits ([`Throttle`]) and sends each event to every client.

mod bus;
mod catalogue;
mod throttle;

pub use bus::{EventBus, Publisher, Stamped, Timestamp};
pub use catalogue::{
    BalloonChangeEvent, BlockIoErrorEvent, Event, GuestCrashloadedEvent, GuestPanickedEvent,
    GuestPvshutdownEvent, NicRxFilterChangedEvent, PowerdownEvent, ResetEvent, ResumeEvent,
    RtcChangeEvent, ShutdownEvent, StopEvent, WatchdogEvent,
};
pub use throttle::{Throttle, ThrottleKey, Throttled};
