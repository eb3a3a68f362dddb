//! Reading the ACPI tables the VMM provides: the FADT's sleep and reset
//! registers, the MADT's I/O APICs, and the interrupt of the power button's
//! Generic Event Device in the DSDT.  Only what these programs need; no AML
//! is interpreted.

use crate::io::{outb, physical, write8};

/// A Generic Address Structure: a register in I/O or memory space.
#[derive(Debug, Clone, Copy)]
pub struct Register {
    space: u8,
    address: u64,
}

impl Register {
    fn read(bytes: &[u8]) -> Register {
        Register {
            space: bytes[0],
            address: u64_at(bytes, 4),
        }
    }

    pub fn is_present(&self) -> bool {
        self.address != 0
    }

    pub fn write(&self, value: u8) {
        match self.space {
            0 => write8(self.address, value),
            1 => outb(self.address as u16, value),
            _ => {}
        }
    }
}

/// An I/O APIC from the MADT.
#[derive(Debug, Clone, Copy)]
pub struct IoApic {
    pub address: u64,
    pub gsi_base: u32,
}

#[derive(Debug, Clone, Copy)]
pub struct Acpi {
    xsdt: u64,
}

impl Acpi {
    /// The tables reached from the RSDP at `rsdp`, or found by scanning the
    /// BIOS area when it is 0 (as a legacy firmware would).
    pub fn find(rsdp: u64) -> Option<Acpi> {
        let rsdp = if rsdp != 0 { rsdp } else { scan_for_rsdp()? };
        // SAFETY: the RSDP is 36 bytes of RAM prepared by the VMM.
        let bytes = unsafe { physical(rsdp, 36) };
        if &bytes[..8] != b"RSD PTR " || bytes[15] < 2 {
            return None;
        }
        Some(Acpi {
            xsdt: u64_at(bytes, 24),
        })
    }

    /// The table with `signature`, as bytes.
    pub fn table(&self, signature: &[u8; 4]) -> Option<&'static [u8]> {
        let xsdt = sdt(self.xsdt)?;
        xsdt[36..]
            .chunks_exact(8)
            .filter_map(|entry| sdt(u64_at(entry, 0)))
            .find(|table| &table[..4] == signature)
    }

    /// The FADT's sleep control register (hardware-reduced ACPI).
    pub fn sleep_control(&self) -> Option<Register> {
        let fadt = self.table(b"FACP")?;
        (fadt.len() >= 256).then(|| Register::read(&fadt[244..]))
    }

    /// The FADT's reset register and the value to write to it.
    pub fn reset(&self) -> Option<(Register, u8)> {
        let fadt = self.table(b"FACP")?;
        (fadt.len() >= 129).then(|| (Register::read(&fadt[116..]), fadt[128]))
    }

    pub fn dsdt(&self) -> Option<&'static [u8]> {
        let fadt = self.table(b"FACP")?;
        let x_dsdt = if fadt.len() >= 148 {
            u64_at(fadt, 140)
        } else {
            0
        };
        let dsdt = if x_dsdt != 0 {
            x_dsdt
        } else {
            u64::from(u32_at(fadt, 40))
        };
        sdt(dsdt)
    }

    /// The I/O APIC that serves `gsi`.
    pub fn io_apic_for(&self, gsi: u32) -> Option<IoApic> {
        let madt = self.table(b"APIC")?;
        let mut best: Option<IoApic> = None;
        let mut at = 44;
        while at + 2 <= madt.len() {
            let (kind, len) = (madt[at], usize::from(madt[at + 1]));
            if len < 2 || at + len > madt.len() {
                break;
            }
            if kind == 1 && len >= 12 {
                let io_apic = IoApic {
                    address: u64::from(u32_at(madt, at + 4)),
                    gsi_base: u32_at(madt, at + 8),
                };
                if io_apic.gsi_base <= gsi && best.is_none_or(|b| b.gsi_base < io_apic.gsi_base) {
                    best = Some(io_apic);
                }
            }
            at += len;
        }
        best
    }

    /// The interrupt of the Generic Event Device (`ACPI0013`), which
    /// signals the power button: the first Extended Interrupt descriptor
    /// after its _HID in the DSDT.
    pub fn ged_interrupt(&self) -> Option<u32> {
        let dsdt = self.dsdt()?;
        let hid = find(dsdt, b"ACPI0013")?;
        let rest = &dsdt[hid..];
        let descriptor = find(rest, &[0x89, 0x06, 0x00])?;
        (descriptor + 9 <= rest.len()).then(|| u32_at(rest, descriptor + 5))
    }
}

/// The whole table at `address` (its length from its header).
fn sdt(address: u64) -> Option<&'static [u8]> {
    if address == 0 || address >= 1 << 32 {
        return None;
    }
    // SAFETY: ACPI tables are RAM prepared by the VMM; the header gives the length.
    let header = unsafe { physical(address, 36) };
    let len = u32_at(header, 4) as usize;
    // SAFETY: as above.
    (len >= 36).then(|| unsafe { physical(address, len) })
}

fn scan_for_rsdp() -> Option<u64> {
    (0xe0000u64..0x100000).step_by(16).find(|&at| {
        // SAFETY: the BIOS area below 1 MiB is RAM on every PC machine.
        let signature = unsafe { physical(at, 8) };
        signature == b"RSD PTR "
    })
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32_at(bytes, at)) | u64::from(u32_at(bytes, at + 4)) << 32
}
