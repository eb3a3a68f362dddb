//! kvmon's platform devices and the buses they sit on.  A device answers
//! reads and writes at offsets into its range ([`BusDevice`]), raises its
//! interrupt through an irqfd ([`IrqLine`]), asks the machine to reset or
//! power off through [`PowerControl`], and describes itself to the guest's
//! ACPI ([`DescribeAcpi`]).  Devices know nothing of QMP or of the machine.

mod acpi;
pub mod acpi_pm;
mod bus;
mod ged;
mod i8042;
mod interrupt;
mod power;
mod rtc;
mod serial;

pub use acpi::DescribeAcpi;
pub use acpi_pm::PowerManagement;
pub use bus::{Bus, BusDevice, BusError, ByteRegisters};
pub use ged::{GenericEventDevice, GED_PORT};
pub use i8042::I8042;
pub use interrupt::IrqLine;
pub use power::{PowerControl, PowerRequest};
pub use rtc::{CmosMemorySize, Rtc, RTC_PORT, RTC_PORT_LEN};
pub use serial::{Serial, COM1_IRQ, COM1_PORT};
