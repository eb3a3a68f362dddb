//! Where things live in the guest's physical address space.  Low memory
//! follows the PC's conventions, so the firmware and Linux find what they
//! expect; everything the VMM writes before boot sits below 1 MiB.

/// The GDT the vCPUs boot with.
pub const BOOT_GDT: u64 = 0x500;
/// An empty IDT, loaded for the 64-bit Linux entry.
pub const BOOT_IDT: u64 = 0x520;
/// PVH: the `hvm_start_info`, followed by its memory map.
pub const PVH_START_INFO: u64 = 0x6000;
pub const PVH_MEMMAP: u64 = 0x6040;
/// Linux: the zero page (`boot_params`).
pub const ZERO_PAGE: u64 = 0x7000;
/// Linux 64-bit entry: the stack and the identity page tables (1 GiB).
pub const BOOT_STACK: u64 = 0x8ff0;
pub const PML4: u64 = 0x9000;
pub const PDPTE: u64 = 0xa000;
pub const PDE: u64 = 0xb000;
/// The kernel command line and its largest size (Linux's COMMAND_LINE_SIZE).
pub const CMDLINE: u64 = 0x20000;
pub const CMDLINE_MAX: usize = 2048;
/// The end of conventional memory: the EBDA and the BIOS area above it are
/// reserved in the e820 map.
pub const EBDA_START: u64 = 0x9fc00;
/// ACPI tables: the RSDP first (where a legacy scan finds it), then the rest.
pub const ACPI_START: u64 = 0xe0000;
pub const ACPI_END: u64 = 0x100000;
/// The BIOS's reset vector below 1 MiB (real mode F000:FFF0), where the
/// ACPI tables' area ends.
pub const RESET_VECTOR: u64 = 0xffff0;
/// Kernels load here.
pub const HIGH_MEMORY: u64 = 0x100000;
/// The 32-bit MMIO hole: RAM above 3 GiB moves to 4 GiB.
pub const MMIO_HOLE_START: u64 = 0xc000_0000;
pub const MMIO_HOLE_END: u64 = 0x1_0000_0000;
pub const IOAPIC: u64 = 0xfec0_0000;
pub const LAPIC: u64 = 0xfee0_0000;

/// GSIs of the platform devices (ISA numbering on the I/O APIC).
pub const GED_GSI: u32 = 9;

/// virtio-mmio windows, one after another in the 32-bit hole, and their
/// interrupts: the I/O APIC's pins above the ISA ones.
pub const VIRTIO_MMIO_BASE: u64 = 0xd000_0000;
pub const VIRTIO_GSI_BASE: u32 = 16;
pub const VIRTIO_SLOTS: u32 = 8;
