//! The ACPI tables: RSDP → XSDT → FADT (hardware-reduced, with the sleep
//! and reset registers) → DSDT (each device's own AML, and `\_S5`), and the
//! MADT with a local APIC per vCPU and the I/O APIC.  Beside them, at the
//! BIOS's reset vector, a stub that resets the machine as a BIOS would.

use acpi_tables::aml;
use acpi_tables::fadt::{FADTBuilder, Flags};
use acpi_tables::gas::{AccessSize, AddressSpace, GAS};
use acpi_tables::madt::{
    EnabledStatus, IoApic, LocalInterruptController, ProcessorLocalApic, MADT,
};
use acpi_tables::rsdp::Rsdp;
use acpi_tables::sdt::Sdt;
use acpi_tables::xsdt::XSDT;
use acpi_tables::Aml;
use devices::acpi_pm::{
    ACPI_PM_PORT, RESET, RESET_VALUE, SLEEP_CONTROL, SLEEP_STATUS, SLEEP_TYPE_S5,
};
use devices::DescribeAcpi;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::layout::{ACPI_START, IOAPIC, LAPIC, RESET_VECTOR};

const OEM_ID: [u8; 6] = *b"KVMON ";
const OEM_TABLE_ID: [u8; 8] = *b"KVMONMV ";
const OEM_REVISION: u32 = 1;

/// The tables, each with the address it goes to.
#[derive(Debug)]
pub struct Tables {
    pub rsdp: u64,
    blobs: Vec<(u64, Vec<u8>)>,
}

impl Tables {
    /// Writes the tables into guest memory.
    pub fn write(&self, memory: &GuestMemoryMmap) -> Result<(), String> {
        for (address, blob) in &self.blobs {
            memory
                .write_slice(blob, GuestAddress(*address))
                .map_err(|e| format!("cannot write the ACPI tables: {e}"))?;
        }
        Ok(())
    }
}

fn bytes(table: &dyn Aml) -> Vec<u8> {
    let mut out = Vec::new();
    table.to_aml_bytes(&mut out);
    out
}

fn io_register(port: u64) -> GAS {
    GAS::new(AddressSpace::SystemIo, 8, 0, AccessSize::ByteAccess, port)
}

/// Builds the tables for `vcpus` CPUs and `devices`.
pub fn build(vcpus: u32, devices: &[&dyn DescribeAcpi]) -> Result<Tables, String> {
    let mut dsdt_body = Vec::new();
    for device in devices {
        device.append_aml(&mut dsdt_body);
    }
    aml::Name::new(
        "_S5_".into(),
        &aml::Package::new(vec![&SLEEP_TYPE_S5, &0u8, &0u8, &0u8]),
    )
    .to_aml_bytes(&mut dsdt_body);
    let mut dsdt = Sdt::new(*b"DSDT", 36, 6, OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    dsdt.append_slice(&dsdt_body);
    let dsdt = dsdt.as_slice().to_vec();

    let mut madt = MADT::new(
        OEM_ID,
        OEM_TABLE_ID,
        OEM_REVISION,
        LocalInterruptController::Address(LAPIC as u32),
    );
    for cpu in 0..vcpus {
        let id = u8::try_from(cpu).map_err(|_| "too many vCPUs for the MADT".to_string())?;
        madt.add_structure(ProcessorLocalApic::new(id, id, EnabledStatus::Enabled));
    }
    madt.add_structure(IoApic::new(0, IOAPIC as u32, 0));
    let madt = bytes(&madt);

    // Addresses: RSDP, then the XSDT, then the rest, 16-byte aligned.
    let align = |at: u64| (at + 15) & !15;
    let xsdt_at = align(ACPI_START + Rsdp::len() as u64);
    let xsdt_len = 36 + 8 * 2;
    let fadt_at = align(xsdt_at + xsdt_len);
    let madt_at = align(fadt_at + acpi_tables::fadt::FADT::len() as u64);
    let dsdt_at = align(madt_at + madt.len() as u64);
    if dsdt_at + dsdt.len() as u64 > RESET_VECTOR {
        return Err("the ACPI tables do not fit below 1 MiB".into());
    }

    let mut fadt = FADTBuilder::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION)
        .dsdt_64(dsdt_at)
        .flag(Flags::HwReducedAcpi)
        .flag(Flags::ResetRegSup);
    fadt.sleep_control_reg = io_register(ACPI_PM_PORT + SLEEP_CONTROL);
    fadt.sleep_status_reg = io_register(ACPI_PM_PORT + SLEEP_STATUS);
    fadt.reset_reg = io_register(ACPI_PM_PORT + RESET);
    fadt.reset_value = RESET_VALUE;
    let fadt = bytes(&fadt.finalize());

    let mut xsdt = XSDT::new(OEM_ID, OEM_TABLE_ID, OEM_REVISION);
    xsdt.add_entry(fadt_at);
    xsdt.add_entry(madt_at);
    let xsdt = bytes(&xsdt);
    debug_assert_eq!(xsdt.len() as u64, xsdt_len);

    Ok(Tables {
        rsdp: ACPI_START,
        blobs: vec![
            (ACPI_START, bytes(&Rsdp::new(OEM_ID, xsdt_at))),
            (xsdt_at, xsdt),
            (fadt_at, fadt),
            (madt_at, madt),
            (dsdt_at, dsdt),
            (RESET_VECTOR, reset_stub()),
        ],
    })
}

/// Real-mode code for the reset vector: write the reset value to the ACPI
/// reset register, then halt.  Linux on a hardware-reduced ACPI machine
/// without EFI restarts by jumping here after its other ways fail
/// (arch/x86/kernel/reboot.c); on QEMU, SeaBIOS answers the same way.
fn reset_stub() -> Vec<u8> {
    let [port_low, port_high] = ((ACPI_PM_PORT + RESET) as u16).to_le_bytes();
    vec![
        0xba,
        port_low,
        port_high, // mov dx, port
        0xb0,
        RESET_VALUE, // mov al, value
        0xee,        // out dx, al
        0xfa,        // cli
        0xf4,        // hlt
        0xeb,
        0xfd, // jmp to the hlt
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checksum_ok(table: &[u8]) -> bool {
        table.iter().fold(0u8, |sum, b| sum.wrapping_add(*b)) == 0
    }

    fn table<'a>(tables: &'a Tables, signature: &[u8]) -> (u64, &'a [u8]) {
        let (at, blob) = tables
            .blobs
            .iter()
            .find(|(_, b)| b.starts_with(signature))
            .unwrap();
        (*at, blob)
    }

    #[test]
    fn the_tables_link_up_and_check_out() {
        let tables = build(2, &[]).unwrap();
        let (rsdp_at, rsdp) = table(&tables, b"RSD PTR ");
        assert_eq!(rsdp_at, tables.rsdp);
        assert!(checksum_ok(&rsdp[..20]) && checksum_ok(rsdp));
        let xsdt_at = u64::from_le_bytes(rsdp[24..32].try_into().unwrap());
        let (at, xsdt) = table(&tables, b"XSDT");
        assert_eq!(at, xsdt_at);
        let (fadt_at, fadt) = table(&tables, b"FACP");
        let (madt_at, madt) = table(&tables, b"APIC");
        assert_eq!(&xsdt[36..44], fadt_at.to_le_bytes());
        assert_eq!(&xsdt[44..52], madt_at.to_le_bytes());
        let (dsdt_at, dsdt) = table(&tables, b"DSDT");
        assert_eq!(&fadt[140..148], dsdt_at.to_le_bytes());
        for blob in [xsdt, fadt, madt, dsdt] {
            assert!(checksum_ok(blob), "{:?}", &blob[..4]);
            assert_eq!(
                u32::from_le_bytes(blob[4..8].try_into().unwrap()) as usize,
                blob.len()
            );
        }
        let flags = u32::from_le_bytes(fadt[112..116].try_into().unwrap());
        assert_ne!(flags & (1 << 20), 0, "hardware-reduced");
        assert_eq!(fadt[244], 1, "sleep control in I/O space");
        assert_eq!(
            u64::from_le_bytes(fadt[248..256].try_into().unwrap()),
            ACPI_PM_PORT
        );
        assert_eq!(fadt[128], RESET_VALUE);
        // As QEMU's microvm: no century register named, and no
        // IAPC_BOOT_ARCH flag (NO_CMOS_RTC) hiding the CMOS clock.
        assert_eq!(fadt[108], 0);
        assert_eq!(u16::from_le_bytes([fadt[109], fadt[110]]), 0);
        let local_apics = madt[44..].windows(2).filter(|w| w == &[0, 8]).count();
        assert!(local_apics >= 2);
        assert!(dsdt.windows(4).any(|w| w == b"_S5_"));
    }
}
