//! kvmon's platform devices and the buses they sit on.  A device answers
//! reads and writes at offsets into its range ([`BusDevice`]), raises its
//! interrupt through an irqfd ([`IrqLine`]), keeps time with a timerfd the
//! machine watches ([`Timed`]), asks the machine to reset, power off or act
//! on a watchdog or panic through [`MachineControl`], and describes itself
//! to the guest's ACPI ([`DescribeAcpi`]).  Devices know nothing of QMP or
//! of the machine.

mod acpi;
pub mod acpi_pm;
mod bus;
mod clock;
mod ged;
mod i8042;
mod ib700;
mod interrupt;
mod pvpanic;
mod requests;
mod rtc;
mod serial;
mod timer;

pub use acpi::DescribeAcpi;
pub use acpi_pm::PowerManagement;
pub use bus::{lock, Bus, BusDevice, BusError, ByteRegisters};
pub use clock::VirtualClock;
pub use ged::{GenericEventDevice, GED_PORT};
pub use i8042::I8042;
pub use ib700::{Ib700, IB700_LEN, IB700_PORT};
pub use interrupt::IrqLine;
pub use pvpanic::{PvPanic, PVPANIC_EVENTS, PVPANIC_PORT};
pub use requests::{DeviceRequest, MachineControl, PanicEvent};
pub use rtc::{
    utc_seconds, CmosMemorySize, OnTimeSet, Rtc, RtcBase, RtcClock, RtcConfig, RTC_IRQ, RTC_PORT,
    RTC_PORT_LEN,
};
pub use serial::{Serial, COM1_IRQ, COM1_PORT};
pub use timer::{DeviceTimer, Timed};
