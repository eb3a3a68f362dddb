//! What the VMM hands over at a PVH entry: the `hvm_start_info` structure
//! (Xen's arch-x86/hvm/start_info.h) with the command line and the RSDP.

use crate::io::physical;

const MAGIC: u32 = 0x336e_c578;

/// The parts of the start info the programs use.
#[derive(Debug, Clone, Copy)]
pub struct Boot {
    pub cmdline: &'static str,
    /// Physical address of the ACPI RSDP, 0 when the VMM gave none.
    pub rsdp: u64,
    /// Bytes of RAM in the memory map.
    pub ram: u64,
}

impl Boot {
    pub fn read(start_info: u32) -> Boot {
        let empty = Boot {
            cmdline: "",
            rsdp: 0,
            ram: 0,
        };
        if start_info == 0 {
            return empty;
        }
        // SAFETY: the VMM put the 56-byte start info at this address.
        let raw = unsafe { physical(u64::from(start_info), 56) };
        let u32_at =
            |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
        let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;
        if u32_at(0) != MAGIC {
            return empty;
        }
        Boot {
            cmdline: c_string(u64_at(24)),
            rsdp: u64_at(32),
            ram: ram(u64_at(40), u32_at(48)),
        }
    }
}

/// The RAM (type 1) in the memory map of `entries` entries at `address`.
fn ram(address: u64, entries: u32) -> u64 {
    if address == 0 || address >= 1 << 32 {
        return 0;
    }
    // SAFETY: the VMM put the memory map, 24 bytes per entry, at this address.
    let map = unsafe { physical(address, 24 * entries.min(128) as usize) };
    map.chunks_exact(24)
        .filter(|entry| entry[16] == 1)
        .map(|entry| {
            let size: [u8; 8] = [
                entry[8], entry[9], entry[10], entry[11], entry[12], entry[13], entry[14],
                entry[15],
            ];
            u64::from_le_bytes(size)
        })
        .sum()
}

/// The NUL-terminated string at `address` (at most 4 KiB), or "".
fn c_string(address: u64) -> &'static str {
    if address == 0 || address >= 1 << 32 {
        return "";
    }
    // SAFETY: the command line lies in RAM below 4 GiB; we read at most a
    // page, stopping at the NUL.
    let bytes = unsafe { physical(address, 4096) };
    let len = bytes.iter().position(|&b| b == 0).unwrap_or(0);
    core::str::from_utf8(&bytes[..len]).unwrap_or("")
}
