//! Direct boot: the kernel (a PVH ELF, a plain 64-bit ELF or a bzImage,
//! loaded by linux-loader), the initrd and the command line in guest
//! memory, and the structure the boot protocol hands over — PVH's
//! `hvm_start_info` or Linux's zero page — with the e820 map and the RSDP.
//! Loading again after a reset restores the kernel the guest may have
//! overwritten, as QEMU restores its ROM blobs.

use std::fmt;
use std::fs::File;
use std::io::{self, Cursor, Read, Seek};
use std::os::unix::fs::FileExt;
use std::sync::Arc;

use linux_loader::configurator::linux::LinuxBootConfigurator;
use linux_loader::configurator::pvh::PvhBootConfigurator;
use linux_loader::configurator::{BootConfigurator, BootParams};
use linux_loader::loader::bootparam::{boot_e820_entry, boot_params, setup_header};
use linux_loader::loader::elf::start_info::{
    hvm_memmap_table_entry, hvm_modlist_entry, hvm_start_info,
};
use linux_loader::loader::{
    load_cmdline, BzImage, Cmdline, Elf, KernelLoader, KernelLoaderResult, PvhBootCapability,
};
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryMmap, ReadVolatile};

use super::layout::{
    BOOT_GDT, BOOT_IDT, CMDLINE, CMDLINE_MAX, HIGH_MEMORY, PDE, PDPTE, PML4, PVH_MEMMAP,
    PVH_START_INFO, ZERO_PAGE,
};
use super::memory::{e820, ram_ranges, E820Entry};
use super::registers::{gdt, Entry};

const PVH_MAGIC: u32 = 0x336e_c578;
/// bzImage: the 64-bit entry is this far into the protected-mode kernel.
const BZIMAGE_64BIT_ENTRY: u64 = 0x200;
/// Linux's "undefined" boot loader id.
const LOADER_UNDEFINED: u8 = 0xff;
/// Where an initrd may end at the latest when the kernel does not say.
const INITRD_LIMIT: u64 = 0x3800_0000;

/// What to boot; a reset loads it again.
#[derive(Debug, Clone)]
pub struct BootSource {
    /// The kernel's name for messages (its path, or "the default firmware").
    pub kernel_name: String,
    pub kernel: Image,
    pub initrd: Option<Image>,
    pub cmdline: String,
}

/// A kernel or initrd: bytes kvmon holds (the embedded firmware), or a file
/// it opened at start-up and reads straight into guest memory at each load,
/// so that a large kernel is neither copied twice nor kept in kvmon's memory.
#[derive(Debug, Clone)]
pub enum Image {
    Memory(Vec<u8>),
    File(Arc<File>),
}

impl Image {
    fn size(&self) -> io::Result<u64> {
        match self {
            Image::Memory(bytes) => Ok(bytes.len() as u64),
            Image::File(file) => Ok(file.metadata()?.len()),
        }
    }

    /// Its first bytes (at most `len`), to tell its format by.
    fn head(&self, len: usize) -> io::Result<Vec<u8>> {
        match self {
            Image::Memory(bytes) => Ok(bytes[..len.min(bytes.len())].to_vec()),
            Image::File(file) => {
                let mut head = vec![0; len.min(self.size()? as usize)];
                file.read_exact_at(&mut head, 0)?;
                Ok(head)
            }
        }
    }

    /// Loads it as a kernel of `format` with linux-loader, reading it from
    /// its start.
    fn load_kernel(
        &self,
        memory: &GuestMemoryMmap,
        format: Format,
    ) -> Result<KernelLoaderResult, String> {
        let loaded = match self {
            Image::Memory(bytes) => load_kernel(memory, format, &mut Cursor::new(bytes.as_slice())),
            Image::File(file) => {
                let mut reader: &File = file;
                reader.rewind().map_err(|e| e.to_string())?;
                load_kernel(memory, format, &mut reader)
            }
        };
        // linux-loader's texts repeat "Kernel Loader: " at every level.
        loaded.map_err(|e| e.to_string().replace("Kernel Loader: ", ""))
    }

    /// Copies its first `len` bytes to `address` in guest memory.
    fn copy_to(&self, memory: &GuestMemoryMmap, address: u64, len: u64) -> Result<(), String> {
        let len = usize::try_from(len).map_err(|_| "it is too large".to_string())?;
        match self {
            Image::Memory(bytes) => memory
                .write_slice(&bytes[..len.min(bytes.len())], GuestAddress(address))
                .map_err(|e| e.to_string()),
            Image::File(file) => {
                let mut reader: &File = file;
                reader.rewind().map_err(|e| e.to_string())?;
                memory
                    .read_exact_volatile_from(GuestAddress(address), &mut reader, len)
                    .map_err(|e| e.to_string())
            }
        }
    }
}

fn load_kernel<F: Read + ReadVolatile + Seek>(
    memory: &GuestMemoryMmap,
    format: Format,
    image: &mut F,
) -> linux_loader::loader::Result<KernelLoaderResult> {
    let start = Some(GuestAddress(HIGH_MEMORY));
    match format {
        Format::Elf => Elf::load(memory, None, image, start),
        Format::BzImage => BzImage::load(memory, None, image, start),
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BootError(pub String);

impl fmt::Display for BootError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The kernel's format, from its first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Elf,
    BzImage,
}

fn format(kernel: &[u8]) -> Option<Format> {
    if kernel.starts_with(b"\x7fELF") {
        Some(Format::Elf)
    } else if kernel.get(0x202..0x206) == Some(b"HdrS") {
        Some(Format::BzImage)
    } else {
        None
    }
}

/// Loads `source` into `memory` (of `ram_size` bytes) and writes what the
/// boot protocol hands over; returns where the boot CPU starts.
pub fn load(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    source: &BootSource,
    rsdp: u64,
) -> Result<Entry, BootError> {
    let name = &source.kernel_name;
    let bad = |what: String| BootError(format!("{name}: {what}"));
    let size = source
        .kernel
        .size()
        .map_err(|e| bad(format!("cannot read the kernel: {e}")))?;
    if size > ram_size {
        return Err(bad("it is larger than guest memory".into()));
    }
    let head = source
        .kernel
        .head(0x210)
        .map_err(|e| bad(format!("cannot read the kernel: {e}")))?;
    let format = format(&head).ok_or_else(|| {
        bad("not a kernel kvmon can boot (a PVH or 64-bit ELF, or a bzImage)".into())
    })?;
    let loaded = source
        .kernel
        .load_kernel(memory, format)
        .map_err(|e| bad(format!("cannot load the kernel: {e}")))?;
    if loaded.kernel_end == 0 {
        return Err(bad("the kernel has nothing to load".into()));
    }
    // Where the kernel ends in guest memory (linux-loader's end is an address).
    let kernel_end = loaded.kernel_end;

    let cmdline = Cmdline::try_from(&source.cmdline, CMDLINE_MAX)
        .map_err(|e| bad(format!("the kernel command line cannot be used: {e}")))?;
    load_cmdline(memory, GuestAddress(CMDLINE), &cmdline)
        .map_err(|e| bad(format!("cannot load the kernel command line: {e}")))?;
    let cmdline_size = source.cmdline.len() as u32 + 1;

    let initrd_limit = loaded
        .setup_header
        .map(|header| u64::from(header.initrd_addr_max))
        .filter(|&max| max != 0)
        .unwrap_or(INITRD_LIMIT);
    let initrd = match &source.initrd {
        Some(initrd) => Some(place_initrd(
            memory,
            ram_size,
            initrd,
            kernel_end,
            initrd_limit,
        )?),
        None => None,
    };

    let map = e820(ram_size);
    let entry = match (format, loaded.pvh_boot_cap) {
        (Format::Elf, PvhBootCapability::PvhEntryPresent(entry)) => {
            let entry = u32::try_from(entry.raw_value())
                .map_err(|_| bad("the PVH entry point is above 4 GiB".into()))?;
            write_start_info(memory, &map, initrd, rsdp)?;
            Entry::Pvh {
                entry,
                start_info: PVH_START_INFO as u32,
            }
        }
        _ => {
            let header = loaded.setup_header.unwrap_or_else(elf_header);
            write_zero_page(memory, header, &map, initrd, cmdline_size, rsdp)?;
            write_page_tables(memory)?;
            let entry = match format {
                Format::BzImage => loaded.kernel_load.raw_value() + BZIMAGE_64BIT_ENTRY,
                Format::Elf => loaded.kernel_load.raw_value(),
            };
            Entry::Linux64 {
                entry,
                boot_params: ZERO_PAGE,
            }
        }
    };
    write_descriptor_tables(memory, entry)?;
    Ok(entry)
}

/// Puts the initrd as high in low RAM as it may go, page-aligned.
fn place_initrd(
    memory: &GuestMemoryMmap,
    ram_size: u64,
    initrd: &Image,
    kernel_end: u64,
    limit: u64,
) -> Result<(u64, u64), BootError> {
    let low_end = ram_ranges(ram_size)[0].1;
    let size = initrd
        .size()
        .map_err(|e| BootError(format!("cannot read the initrd: {e}")))?;
    let top = low_end.min(limit.saturating_add(1));
    let start = top
        .checked_sub(size)
        .map(|start| start & !0xfff)
        .filter(|&start| start >= kernel_end)
        .ok_or_else(|| {
            BootError(format!(
                "the initrd ({} bytes) does not fit in guest memory above the kernel",
                size
            ))
        })?;
    initrd
        .copy_to(memory, start, size)
        .map_err(|e| BootError(format!("cannot load the initrd: {e}")))?;
    Ok((start, size))
}

fn write_start_info(
    memory: &GuestMemoryMmap,
    map: &[E820Entry],
    initrd: Option<(u64, u64)>,
    rsdp: u64,
) -> Result<(), BootError> {
    let memmap: Vec<hvm_memmap_table_entry> = map
        .iter()
        .map(|e| hvm_memmap_table_entry {
            addr: e.addr,
            size: e.size,
            type_: e.kind as u32,
            reserved: 0,
        })
        .collect();
    let modules: Vec<hvm_modlist_entry> = initrd
        .iter()
        .map(|&(paddr, size)| hvm_modlist_entry {
            paddr,
            size,
            ..Default::default()
        })
        .collect();
    let modlist =
        PVH_MEMMAP + (memmap.len() * std::mem::size_of::<hvm_memmap_table_entry>()) as u64;
    let start_info = hvm_start_info {
        magic: PVH_MAGIC,
        version: 1,
        nr_modules: modules.len() as u32,
        modlist_paddr: if modules.is_empty() { 0 } else { modlist },
        cmdline_paddr: CMDLINE,
        rsdp_paddr: rsdp,
        memmap_paddr: PVH_MEMMAP,
        memmap_entries: memmap.len() as u32,
        ..Default::default()
    };
    let mut params = BootParams::new(&start_info, GuestAddress(PVH_START_INFO));
    params.set_sections(&memmap, GuestAddress(PVH_MEMMAP));
    if !modules.is_empty() {
        params.set_modules(&modules, GuestAddress(modlist));
    }
    PvhBootConfigurator::write_bootparams(&params, memory)
        .map_err(|e| BootError(format!("cannot write the PVH start info: {e}")))
}

/// A setup header for a plain ELF vmlinux, which carries none.
fn elf_header() -> setup_header {
    setup_header {
        boot_flag: 0xaa55,
        header: 0x5372_6448, // "HdrS"
        kernel_alignment: 0x0100_0000,
        ..Default::default()
    }
}

fn write_zero_page(
    memory: &GuestMemoryMmap,
    header: setup_header,
    map: &[E820Entry],
    initrd: Option<(u64, u64)>,
    cmdline_size: u32,
    rsdp: u64,
) -> Result<(), BootError> {
    let mut params = boot_params {
        hdr: header,
        ..Default::default()
    };
    params.hdr.type_of_loader = LOADER_UNDEFINED;
    params.hdr.cmd_line_ptr = CMDLINE as u32;
    params.hdr.cmdline_size = cmdline_size;
    if let Some((start, size)) = initrd {
        params.hdr.ramdisk_image = start as u32;
        params.hdr.ramdisk_size = size as u32;
    }
    params.acpi_rsdp_addr = rsdp;
    if map.len() > params.e820_table.len() {
        return Err(BootError("the memory map has too many entries".into()));
    }
    for (slot, entry) in params.e820_table.iter_mut().zip(map) {
        *slot = boot_e820_entry {
            addr: entry.addr,
            size: entry.size,
            r#type: entry.kind as u32,
        };
    }
    params.e820_entries = map.len() as u8;
    LinuxBootConfigurator::write_bootparams(
        &BootParams::new(&params, GuestAddress(ZERO_PAGE)),
        memory,
    )
    .map_err(|e| BootError(format!("cannot write the zero page: {e}")))
}

/// Identity-maps the first GiB with 2 MiB pages, for the 64-bit entry.
fn write_page_tables(memory: &GuestMemoryMmap) -> Result<(), BootError> {
    let write = |value: u64, at: u64| {
        memory
            .write_obj(value, GuestAddress(at))
            .map_err(|e| BootError(format!("cannot write the boot page tables: {e}")))
    };
    write(PDPTE | 0x3, PML4)?;
    write(PDE | 0x3, PDPTE)?;
    for page in 0..512u64 {
        write((page << 21) | 0x83, PDE + page * 8)?;
    }
    Ok(())
}

fn write_descriptor_tables(memory: &GuestMemoryMmap, entry: Entry) -> Result<(), BootError> {
    let fail =
        |e: vm_memory::GuestMemoryError| BootError(format!("cannot write the boot GDT: {e}"));
    for (i, descriptor) in gdt(entry).into_iter().enumerate() {
        memory
            .write_obj(descriptor, GuestAddress(BOOT_GDT + 8 * i as u64))
            .map_err(fail)?;
    }
    memory.write_obj(0u64, GuestAddress(BOOT_IDT)).map_err(fail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryBackend;

    const RAM: u64 = 64 << 20;

    fn memory() -> GuestMemoryMmap {
        super::super::memory::allocate(RAM).unwrap()
    }

    /// A minimal bzImage: one setup sector plus the boot sector, the setup
    /// header of boot protocol 2.15, and a protected-mode kernel.
    fn bzimage(kernel: &[u8]) -> Vec<u8> {
        let setup_sects = 1u8;
        let mut image = vec![0u8; 512 * (1 + setup_sects as usize)];
        image[0x1f1] = setup_sects;
        image[0x1fe..0x200].copy_from_slice(&0xaa55u16.to_le_bytes());
        image[0x202..0x206].copy_from_slice(b"HdrS");
        image[0x206..0x208].copy_from_slice(&0x020fu16.to_le_bytes());
        image[0x211] = 0x1; // loadflags: LOADED_HIGH
        image[0x214..0x218].copy_from_slice(&0x100000u32.to_le_bytes()); // code32_start
        image[0x22c..0x230].copy_from_slice(&0x37ff_ffffu32.to_le_bytes()); // initrd_addr_max
        image[0x230..0x234].copy_from_slice(&0x20_0000u32.to_le_bytes()); // kernel_alignment
        image[0x238..0x23c].copy_from_slice(&2048u32.to_le_bytes()); // cmdline_size
        image.extend_from_slice(kernel);
        image
    }

    fn source(kernel: Vec<u8>) -> BootSource {
        BootSource {
            kernel_name: "test".into(),
            kernel: Image::Memory(kernel),
            initrd: Some(Image::Memory(vec![0x5a; 10_000])),
            cmdline: "console=ttyS0 panic=-1".into(),
        }
    }

    #[test]
    fn a_bzimage_gets_boot_params_with_e820_initrd_cmdline_and_rsdp() {
        let memory = memory();
        let kernel: Vec<u8> = (0..4096u32).map(|i| i as u8).collect();
        let entry = load(&memory, RAM, &source(bzimage(&kernel)), 0xe0000).unwrap();
        assert_eq!(
            entry,
            Entry::Linux64 {
                entry: 0x100200,
                boot_params: ZERO_PAGE
            }
        );
        let mut loaded = vec![0u8; kernel.len()];
        memory
            .read_slice(&mut loaded, GuestAddress(0x100000))
            .unwrap();
        assert_eq!(loaded, kernel);
        let params: boot_params = memory.read_obj(GuestAddress(ZERO_PAGE)).unwrap();
        assert_eq!({ params.acpi_rsdp_addr }, 0xe0000);
        assert_eq!(params.hdr.type_of_loader, 0xff);
        assert_eq!({ params.hdr.header }, 0x5372_6448);
        assert_eq!({ params.hdr.cmd_line_ptr }, CMDLINE as u32);
        let e820 = e820(RAM);
        assert_eq!(params.e820_entries as usize, e820.len());
        assert_eq!({ params.e820_table[2].addr }, HIGH_MEMORY);
        assert_eq!({ params.e820_table[2].size }, RAM - HIGH_MEMORY);
        let (start, size) = (
            { params.hdr.ramdisk_image } as u64,
            { params.hdr.ramdisk_size } as u64,
        );
        assert_eq!(size, 10_000);
        assert_eq!(start % 4096, 0);
        assert!(start + size <= RAM);
        assert_eq!(memory.read_obj::<u8>(GuestAddress(start)).unwrap(), 0x5a);
        let mut cmdline = [0u8; 23];
        memory
            .read_slice(&mut cmdline, GuestAddress(CMDLINE))
            .unwrap();
        assert_eq!(&cmdline, b"console=ttyS0 panic=-1\0");
        let pde: u64 = memory.read_obj(GuestAddress(PDE + 8)).unwrap();
        assert_eq!(pde, 0x20_0083, "the second 2 MiB page, identity-mapped");
    }

    /// A PVH ELF: one PT_LOAD of `code` at 1 MiB and the Xen note.
    fn pvh_elf(code: &[u8]) -> Vec<u8> {
        let mut note = Vec::new();
        for word in [4u32, 4, 18] {
            note.extend_from_slice(&word.to_le_bytes());
        }
        note.extend_from_slice(b"Xen\0");
        note.extend_from_slice(&0x100000u32.to_le_bytes());
        let phoff = 64u64;
        let data = phoff + 2 * 56;
        let note_at = data + code.len() as u64;
        let mut elf = vec![0u8; data as usize];
        elf[..4].copy_from_slice(b"\x7fELF");
        (elf[4], elf[5], elf[6]) = (2, 1, 1);
        elf[16..18].copy_from_slice(&2u16.to_le_bytes()); // ET_EXEC
        elf[18..20].copy_from_slice(&62u16.to_le_bytes()); // x86-64
        elf[20..24].copy_from_slice(&1u32.to_le_bytes());
        elf[24..32].copy_from_slice(&0x100000u64.to_le_bytes()); // e_entry
        elf[32..40].copy_from_slice(&phoff.to_le_bytes());
        elf[52..54].copy_from_slice(&64u16.to_le_bytes());
        elf[54..56].copy_from_slice(&56u16.to_le_bytes());
        elf[56..58].copy_from_slice(&2u16.to_le_bytes());
        let header = |kind: u32, offset: u64, addr: u64, size: u64| {
            let mut h = Vec::new();
            h.extend_from_slice(&kind.to_le_bytes());
            h.extend_from_slice(&5u32.to_le_bytes());
            for v in [offset, addr, addr, size, size, 4] {
                h.extend_from_slice(&v.to_le_bytes());
            }
            h
        };
        elf[64..120].copy_from_slice(&header(1, data, 0x100000, code.len() as u64));
        elf[120..176].copy_from_slice(&header(4, note_at, 0, note.len() as u64));
        elf.extend_from_slice(code);
        elf.extend_from_slice(&note);
        elf
    }

    #[test]
    fn a_pvh_elf_gets_start_info_with_memmap_module_cmdline_and_rsdp() {
        let memory = memory();
        let entry = load(&memory, RAM, &source(pvh_elf(&[0xf4; 64])), 0xe0000).unwrap();
        assert_eq!(
            entry,
            Entry::Pvh {
                entry: 0x100000,
                start_info: PVH_START_INFO as u32
            }
        );
        let info: hvm_start_info = memory.read_obj(GuestAddress(PVH_START_INFO)).unwrap();
        assert_eq!(info.magic, PVH_MAGIC);
        assert_eq!(info.rsdp_paddr, 0xe0000);
        assert_eq!(info.cmdline_paddr, CMDLINE);
        assert_eq!(info.memmap_entries as usize, e820(RAM).len());
        assert_eq!(info.nr_modules, 1);
        let module: hvm_modlist_entry = memory.read_obj(GuestAddress(info.modlist_paddr)).unwrap();
        assert_eq!(module.size, 10_000);
        let last: hvm_memmap_table_entry = memory
            .read_obj(GuestAddress(info.memmap_paddr + 2 * 24))
            .unwrap();
        assert_eq!(
            (last.addr, last.size, last.type_),
            (HIGH_MEMORY, RAM - HIGH_MEMORY, 1)
        );
        assert_eq!(memory.read_obj::<u8>(GuestAddress(0x100000)).unwrap(), 0xf4);
        let code: u64 = memory.read_obj(GuestAddress(BOOT_GDT + 8)).unwrap();
        assert_eq!(code, 0x00cf_9b00_0000_ffff, "flat 32-bit code segment");
    }

    #[test]
    fn a_file_is_read_at_each_load_and_what_it_holds_then_counts() {
        let memory = memory();
        let path = std::env::temp_dir().join(format!("kvmon-boot-test-{}", std::process::id()));
        std::fs::write(&path, pvh_elf(&[0x90; 16])).unwrap();
        let mut source = source(Vec::new());
        source.kernel = Image::File(Arc::new(File::open(&path).unwrap()));
        assert!(matches!(
            load(&memory, RAM, &source, 0).unwrap(),
            Entry::Pvh { .. }
        ));
        // Rewritten in place: the next load (a reset) reads the new bytes.
        std::fs::write(&path, b"not a kernel").unwrap();
        let error = load(&memory, RAM, &source, 0).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(error.0.contains("not a kernel kvmon can boot"), "{error}");
    }

    #[test]
    fn corrupt_kernels_and_oversized_initrds_are_errors_not_panics() {
        let memory = memory();
        let mut elf = pvh_elf(&[0; 16]);
        elf[64 + 8..64 + 16].fill(0xff); // the PT_LOAD's file offset: nowhere
        let error = load(&memory, RAM, &source(elf), 0).unwrap_err();
        assert!(
            error.0.starts_with("test: cannot load the kernel: "),
            "{error}"
        );
        let mut elf = pvh_elf(&[0; 16]);
        elf[64..68].fill(0xff); // no PT_LOAD at all
        let error = load(&memory, RAM, &source(elf), 0).unwrap_err();
        assert_eq!(error.0, "test: the kernel has nothing to load");
        let error = load(&memory, RAM, &source(b"not a kernel".to_vec()), 0).unwrap_err();
        assert!(error.0.contains("not a kernel kvmon can boot"), "{error}");
        let mut huge = source(pvh_elf(&[0; 16]));
        huge.initrd = Some(Image::Memory(vec![0; RAM as usize]));
        let error = load(&memory, RAM, &huge, 0).unwrap_err();
        assert!(error.0.contains("does not fit"), "{error}");
        let truncated = bzimage(&[])[..0x210].to_vec();
        assert!(load(&memory, RAM, &source(truncated), 0).is_err());
        assert!(memory.num_regions() == 1);
    }
}
