//! Powering off and resetting the machine, the ways a guest OS does.

use crate::acpi::Acpi;
use crate::io::outb;

/// SLP_TYP for S5 in the sleep control register (QEMU's GED and kvmon
/// both use 5), with SLP_EN.
const SLEEP_S5: u8 = (5 << 2) | (1 << 5);

/// Requests ACPI S5 through the FADT's sleep control register; false when
/// the tables have no such register.  The VMM acts on it asynchronously.
pub fn acpi_poweroff(acpi: &Acpi) -> bool {
    let Some(register) = acpi.sleep_control().filter(|r| r.is_present()) else {
        return false;
    };
    register.write(SLEEP_S5);
    true
}

/// Requests a reset through the FADT's reset register; false when there is none.
pub fn acpi_reset(acpi: &Acpi) -> bool {
    let Some((register, value)) = acpi.reset().filter(|(r, _)| r.is_present()) else {
        return false;
    };
    register.write(value);
    true
}

/// A reset through the keyboard controller's pulse of the reset line.
pub fn i8042_reset() {
    outb(0x64, 0xfe);
}

/// A triple fault: an exception with an empty interrupt table.
pub fn triple_fault() -> ! {
    let empty: [u16; 5] = [0; 5];
    // SAFETY: deliberately loads an empty IDT and raises an exception; the
    // CPU shuts down, which the VMM turns into a reset.
    unsafe { core::arch::asm!("lidt [{}]", "ud2", in(reg) empty.as_ptr(), options(nostack)) };
    crate::halt_forever()
}
