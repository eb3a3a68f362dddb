//! Interrupts: an IDT with the NMI and a few device vectors, the local
//! APIC, and I/O APIC routing.  Handlers run with interrupts off and are
//! told the vector; device interrupts are acknowledged after them.

use core::sync::atomic::{AtomicUsize, Ordering};

use crate::acpi::Acpi;
use crate::entry::*;
use crate::io::{outb, read32, write32};

pub const NMI: u8 = 2;
/// Vectors for up to four routed device interrupts.
pub const IRQ_BASE: u8 = 0x30;
const SPURIOUS: u8 = 0xff;
/// Every vector without a handler of its own: acknowledged and ignored.
const OTHER: u8 = 0xfe;
const LAPIC: u64 = 0xfee0_0000;
const LAPIC_SPURIOUS: u64 = LAPIC + 0xf0;
const LAPIC_EOI: u64 = LAPIC + 0xb0;
const LAPIC_ID: u64 = LAPIC + 0x20;
const LAPIC_LINT1: u64 = LAPIC + 0x360;
/// LINT1 unmasked, NMI delivery: how an OS sets up its boot CPU.
const LINT1_NMI: u32 = 0x4 << 8;

#[repr(C, align(16))]
struct Idt([u64; 512]);

static mut IDT: Idt = Idt([0; 512]);
static HANDLER: AtomicUsize = AtomicUsize::new(0);

/// Installs the IDT, masks the legacy PICs, enables the local APIC (with
/// NMIs on LINT1) and makes `handler` the function every interrupt calls.  Interrupts stay off
/// until the program waits for one.
pub fn init(handler: fn(u8)) {
    HANDLER.store(handler as usize, Ordering::SeqCst);
    outb(0x21, 0xff);
    outb(0xa1, 0xff);
    // SAFETY: the IDT is written once, here, before interrupts are enabled,
    // through a raw pointer (no reference to the static escapes).
    let idt = unsafe { &mut *core::ptr::addr_of_mut!(IDT) };
    for vector in 32..=255 {
        set_gate(idt, vector, fw_vector_other);
    }
    let stubs: [(u8, unsafe extern "C" fn()); 6] = [
        (NMI, fw_vector_nmi),
        (IRQ_BASE, fw_vector_irq0),
        (IRQ_BASE + 1, fw_vector_irq1),
        (IRQ_BASE + 2, fw_vector_irq2),
        (IRQ_BASE + 3, fw_vector_irq3),
        (SPURIOUS, fw_vector_spurious),
    ];
    for (vector, stub) in stubs {
        set_gate(idt, vector, stub);
    }
    let pointer: [u16; 5] = {
        let base = idt.0.as_ptr() as u64;
        [
            4095,
            base as u16,
            (base >> 16) as u16,
            (base >> 32) as u16,
            (base >> 48) as u16,
        ]
    };
    // SAFETY: the pointer describes the static IDT filled in above.
    unsafe { core::arch::asm!("lidt [{}]", in(reg) pointer.as_ptr(), options(nostack)) };
    write32(LAPIC_SPURIOUS, 0x100 | u32::from(SPURIOUS));
    write32(LAPIC_LINT1, LINT1_NMI);
}

/// An interrupt gate to `stub` in the kernel code segment.
fn set_gate(idt: &mut Idt, vector: u8, stub: unsafe extern "C" fn()) {
    let address = stub as usize as u64;
    let low = (address & 0xffff) | (0x08 << 16) | (0x8e00 << 32) | ((address >> 16) & 0xffff) << 48;
    idt.0[usize::from(vector) * 2] = low;
    idt.0[usize::from(vector) * 2 + 1] = address >> 32;
}

/// This CPU's local APIC id.
pub fn apic_id() -> u32 {
    read32(LAPIC_ID) >> 24
}

/// Routes `gsi` (edge-triggered, active high) to `IRQ_BASE + slot` on this CPU.
pub fn route(acpi: &Acpi, gsi: u32, slot: u8) -> bool {
    let Some(io_apic) = acpi.io_apic_for(gsi) else {
        return false;
    };
    let pin = gsi - io_apic.gsi_base;
    let select = io_apic.address;
    let window = io_apic.address + 0x10;
    write32(select, 0x10 + 2 * pin + 1);
    write32(window, apic_id() << 24);
    write32(select, 0x10 + 2 * pin);
    write32(window, u32::from(IRQ_BASE + slot));
    true
}

#[no_mangle]
extern "C" fn fw_interrupt(vector: u64) {
    let vector = vector as u8;
    if vector == SPURIOUS {
        return;
    }
    let handler = HANDLER.load(Ordering::SeqCst);
    if handler != 0 && vector != OTHER {
        // SAFETY: HANDLER only ever holds a `fn(u8)` stored by `init`.
        let handler: fn(u8) = unsafe { core::mem::transmute(handler) };
        handler(vector);
    }
    if vector != NMI {
        write32(LAPIC_EOI, 0);
    }
}
