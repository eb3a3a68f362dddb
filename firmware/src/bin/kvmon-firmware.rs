//! kvmon's default firmware, booted when no -kernel is given: prints a
//! banner on COM1 and idles; when the power button is pressed (QMP
//! `system_powerdown`), it powers the machine off through ACPI.

#![no_std]
#![no_main]

use fw::acpi::Acpi;
use fw::interrupts::{self, IRQ_BASE};
use fw::{power, println};

fw::entry!(main);

static mut ACPI: Option<Acpi> = None;

fn main(boot: &fw::Boot) -> ! {
    println!(
        "kvmon firmware {}: the machine is up.",
        env!("CARGO_PKG_VERSION")
    );
    let acpi = Acpi::find(boot.rsdp);
    // SAFETY: written once before interrupts are enabled, read by the handler.
    unsafe { ACPI = acpi };
    interrupts::init(on_interrupt);
    match acpi.and_then(|acpi| Some((acpi, acpi.ged_interrupt()?))) {
        Some((acpi, gsi)) if interrupts::route(&acpi, gsi, 0) => {
            println!("Idle; press the power button to power off.")
        }
        _ => println!("Idle; no ACPI power button found."),
    }
    loop {
        fw::wait_for_interrupt();
    }
}

fn on_interrupt(vector: u8) {
    if vector != IRQ_BASE {
        return;
    }
    println!("Power button pressed: powering off.");
    // SAFETY: set before interrupts were enabled.
    if !unsafe { ACPI }.is_some_and(|acpi| power::acpi_poweroff(&acpi)) {
        println!("There is no ACPI sleep register to power off with.");
    }
}
