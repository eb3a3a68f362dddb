//! Guest RAM: `-m` bytes of anonymous memory (vm-memory's mmap regions),
//! split around the 32-bit MMIO hole, and the e820 map that describes it.

use vm_memory::{GuestAddress, GuestMemoryMmap};

use super::layout::{ACPI_END, EBDA_START, HIGH_MEMORY, MMIO_HOLE_END, MMIO_HOLE_START};

/// A range of the e820 map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct E820Entry {
    pub addr: u64,
    pub size: u64,
    pub kind: E820Kind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum E820Kind {
    Ram = 1,
    Reserved = 2,
}

/// The RAM ranges for `size` bytes: below the hole, and the rest from 4 GiB.
pub fn ram_ranges(size: u64) -> Vec<(GuestAddress, u64)> {
    let low = size.min(MMIO_HOLE_START);
    let mut ranges = vec![(GuestAddress(0), low)];
    if size > low {
        ranges.push((GuestAddress(MMIO_HOLE_END), size - low));
    }
    ranges
}

/// Maps guest RAM.  Pages are allocated when the guest first touches them.
pub fn allocate(size: u64) -> Result<GuestMemoryMmap, String> {
    let ranges = ram_ranges(size)
        .into_iter()
        .map(|(start, len)| Ok((start, usize::try_from(len).map_err(|_| "too large")?)))
        .collect::<Result<Vec<_>, &str>>()
        .map_err(|e| format!("cannot allocate {size} bytes of guest memory: {e}"))?;
    GuestMemoryMmap::from_ranges(&ranges)
        .map_err(|e| format!("cannot allocate {} MiB of guest memory: {e}", size >> 20))
}

/// The e820 map of `size` bytes of RAM: conventional memory, the reserved
/// EBDA/BIOS area (which holds the ACPI tables), then RAM from 1 MiB.
pub fn e820(size: u64) -> Vec<E820Entry> {
    let mut map = Vec::new();
    let ranges = ram_ranges(size);
    let low_end = ranges[0].1;
    map.push(E820Entry {
        addr: 0,
        size: EBDA_START.min(low_end),
        kind: E820Kind::Ram,
    });
    if low_end > EBDA_START {
        map.push(E820Entry {
            addr: EBDA_START,
            size: ACPI_END.min(low_end) - EBDA_START,
            kind: E820Kind::Reserved,
        });
    }
    if low_end > HIGH_MEMORY {
        map.push(E820Entry {
            addr: HIGH_MEMORY,
            size: low_end - HIGH_MEMORY,
            kind: E820Kind::Ram,
        });
    }
    if let Some(&(start, len)) = ranges.get(1) {
        map.push(E820Entry {
            addr: start.0,
            size: len,
            kind: E820Kind::Ram,
        });
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use vm_memory::GuestMemoryBackend;

    const MIB: u64 = 1 << 20;
    const GIB: u64 = 1 << 30;

    #[test]
    fn small_ram_is_one_range_below_the_hole() {
        assert_eq!(ram_ranges(256 * MIB), [(GuestAddress(0), 256 * MIB)]);
        let map = e820(256 * MIB);
        assert_eq!(map.len(), 3);
        assert_eq!(
            map[0],
            E820Entry {
                addr: 0,
                size: 0x9fc00,
                kind: E820Kind::Ram
            }
        );
        assert_eq!(map[1].kind, E820Kind::Reserved);
        assert_eq!(
            map[2],
            E820Entry {
                addr: MIB,
                size: 255 * MIB,
                kind: E820Kind::Ram
            }
        );
    }

    #[test]
    fn ram_above_3_gib_moves_above_4_gib() {
        let ranges = ram_ranges(5 * GIB);
        assert_eq!(
            ranges,
            [(GuestAddress(0), 3 * GIB), (GuestAddress(4 * GIB), 2 * GIB)]
        );
        let map = e820(5 * GIB);
        assert_eq!(
            map.last(),
            Some(&E820Entry {
                addr: 4 * GIB,
                size: 2 * GIB,
                kind: E820Kind::Ram
            })
        );
        let ram: u64 = map
            .iter()
            .filter(|e| e.kind == E820Kind::Ram)
            .map(|e| e.size)
            .sum();
        assert_eq!(ram, 5 * GIB - (ACPI_END - EBDA_START));
    }

    #[test]
    fn allocated_memory_has_the_ranges() {
        let memory = allocate(64 * MIB).unwrap();
        assert_eq!(memory.num_regions(), 1);
        assert_eq!(memory.last_addr(), GuestAddress(64 * MIB - 1));
    }
}
