//! The runtime every kvmon firmware program shares: the PVH entry, the
//! serial console, the PVH start info, the ACPI tables the VMM provides,
//! interrupts, and the ways to power off and reset.
//!
//! A program defines `fn main(boot: &fw::Boot) -> !` and names it with
//! [`entry!`].

#![no_std]

pub mod acpi;
pub mod cmos;
mod entry;
pub mod interrupts;
pub mod io;
pub mod power;
pub mod serial;
pub mod start_info;
pub mod virtio;
pub mod virtio_balloon;
pub mod virtio_blk;
pub mod virtio_net;

pub use start_info::Boot;

/// Declares the program's main function.
#[macro_export]
macro_rules! entry {
    ($main:path) => {
        #[no_mangle]
        extern "C" fn fw_main(start_info: u32) -> ! {
            let boot = $crate::Boot::read(start_info);
            $main(&boot)
        }

        #[panic_handler]
        fn panic(info: &core::panic::PanicInfo) -> ! {
            $crate::panic(info)
        }
    };
}

/// Reports the panic on the console and stops this CPU.
pub fn panic(info: &core::panic::PanicInfo) -> ! {
    serial::print(format_args!("firmware panic: {}\n", info.message()));
    halt_forever()
}

/// Stops this CPU for good (interrupts off).
pub fn halt_forever() -> ! {
    loop {
        // SAFETY: cli; hlt touches no memory.
        unsafe { core::arch::asm!("cli; hlt", options(nomem, nostack)) };
    }
}

/// Sleeps until an interrupt arrives (which its handler has already run).
pub fn wait_for_interrupt() {
    // SAFETY: sti; hlt is atomic about the interrupt window, so an interrupt
    // that arrives in between still wakes the hlt.
    unsafe { core::arch::asm!("sti; hlt; cli", options(nomem, nostack)) };
}

// The C library functions that compiled Rust calls, as string instructions
// so the compiler cannot turn them back into calls to themselves.

/// # Safety
/// As C's `memcpy`.
#[no_mangle]
pub unsafe extern "C" fn memcpy(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    // SAFETY: the caller passes valid, non-overlapping ranges of n bytes.
    unsafe {
        core::arch::asm!("rep movsb", inout("rcx") n => _, inout("rdi") dest => _,
            inout("rsi") src => _, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's `memmove`.
#[no_mangle]
pub unsafe extern "C" fn memmove(dest: *mut u8, src: *const u8, n: usize) -> *mut u8 {
    if (dest as usize) <= (src as usize) || (dest as usize) >= (src as usize) + n {
        // SAFETY: forward copying is safe when dest does not start inside src.
        return unsafe { memcpy(dest, src, n) };
    }
    // SAFETY: copying backwards (direction flag set, then cleared) handles
    // dest overlapping the end of src.
    unsafe {
        core::arch::asm!("std", "rep movsb", "cld", inout("rcx") n => _,
            inout("rdi") dest.add(n - 1) => _, inout("rsi") src.add(n - 1) => _,
            options(nostack));
    }
    dest
}

/// # Safety
/// As C's `memset`.
#[no_mangle]
pub unsafe extern "C" fn memset(dest: *mut u8, value: i32, n: usize) -> *mut u8 {
    // SAFETY: the caller passes a valid range of n bytes.
    unsafe {
        core::arch::asm!("rep stosb", inout("rcx") n => _, inout("rdi") dest => _,
            in("al") value as u8, options(nostack, preserves_flags));
    }
    dest
}

/// # Safety
/// As C's `memcmp`.
#[no_mangle]
pub unsafe extern "C" fn memcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    for i in 0..n {
        // SAFETY: the caller passes valid ranges of n bytes.
        let (x, y) = unsafe { (a.add(i).read_volatile(), b.add(i).read_volatile()) };
        if x != y {
            return i32::from(x) - i32::from(y);
        }
    }
    0
}

/// # Safety
/// As C's `bcmp`.
#[no_mangle]
pub unsafe extern "C" fn bcmp(a: *const u8, b: *const u8, n: usize) -> i32 {
    // SAFETY: as memcmp.
    unsafe { memcmp(a, b, n) }
}
