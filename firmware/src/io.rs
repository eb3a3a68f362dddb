//! Port I/O and memory-mapped registers.

pub fn outb(port: u16, value: u8) {
    // SAFETY: port output touches no memory of this program.
    unsafe {
        core::arch::asm!("out dx, al", in("dx") port, in("al") value, options(nomem, nostack))
    };
}

pub fn inb(port: u16) -> u8 {
    let value: u8;
    // SAFETY: port input touches no memory of this program.
    unsafe {
        core::arch::asm!("in al, dx", in("dx") port, out("al") value, options(nomem, nostack))
    };
    value
}

/// Reads a 32-bit device register at a physical (identity-mapped) address.
pub fn read32(address: u64) -> u32 {
    // SAFETY: the low 4 GiB are identity-mapped; device registers are
    // outside the program's own memory.
    unsafe { (address as *const u32).read_volatile() }
}

pub fn write32(address: u64, value: u32) {
    // SAFETY: as read32.
    unsafe { (address as *mut u32).write_volatile(value) }
}

pub fn write8(address: u64, value: u8) {
    // SAFETY: as read32.
    unsafe { (address as *mut u8).write_volatile(value) }
}

/// Physical memory the VMM prepared (tables, command line), read as bytes.
///
/// # Safety
/// `address..address + len` must be RAM below 4 GiB that nothing writes
/// while the slice lives.
pub unsafe fn physical(address: u64, len: usize) -> &'static [u8] {
    // SAFETY: as the caller promises.
    unsafe { core::slice::from_raw_parts(address as *const u8, len) }
}
