//! Giving guest pages back to the host.  The guest names pages by frame
//! number (4 KiB each, whatever the host's page size); runs of frames are
//! released together, each run checked to lie in one region of guest RAM.
//! A private mapping drops its pages (MADV_DONTNEED: the next touch gets a
//! zeroed page); a shared one, whose pages live in a file, punches them out
//! of the file (MADV_REMOVE), since dropping the mapping would keep them.

use vm_memory::{GuestAddress, GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

/// The balloon's page size: frame numbers count these.
pub const PAGE_SHIFT: u32 = 12;
pub const PAGE_SIZE: u64 = 1 << PAGE_SHIFT;

/// What releasing a list of pages came to.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    pub pages: u64,
    /// Pages outside guest RAM, skipped (as QEMU skips them).
    pub outside: u64,
}

/// Releases `len` bytes of guest RAM from `start`; false when any of the
/// range is not RAM, or it is not whole pages (nothing is released then).
pub fn release_range(memory: &GuestMemoryMmap, start: GuestAddress, len: u64) -> bool {
    if !(start.0 | len).is_multiple_of(PAGE_SIZE) {
        return false;
    }
    let Some(region) = memory.find_region(start) else {
        return false;
    };
    let offset = start.0 - region.start_addr().0;
    if len == 0 || offset.checked_add(len).is_none_or(|end| end > region.len()) {
        return false;
    }
    let Ok(host) = region.get_host_address(vm_memory::MemoryRegionAddress(offset)) else {
        return false;
    };
    let advice = if region.flags() & libc::MAP_SHARED != 0 {
        libc::MADV_REMOVE
    } else {
        libc::MADV_DONTNEED
    };
    // SAFETY: host..host+len lies in one live mapping of guest memory (the
    // region was checked to hold it); dropping its pages changes only their
    // contents, which the guest gave up, never the mapping.
    let done = unsafe { libc::madvise(host.cast(), len as usize, advice) };
    if done != 0 {
        log::warn!(
            "virtio-balloon: cannot release {len} bytes of guest memory: {}",
            std::io::Error::last_os_error()
        );
    }
    true
}

/// How many frames are sorted together: a driver's list (Linux sends 256
/// frames a buffer) in any order is released a run at a time, since each
/// release costs the host a TLB flush of every vCPU.
const CHUNK: usize = 4096;

/// Releases the pages whose frame numbers `frames` gives (a frame given
/// twice counts once), each run of consecutive frames with one call.
pub fn release_frames(memory: &GuestMemoryMmap, frames: impl IntoIterator<Item = u32>) -> Released {
    let mut released = Released::default();
    let mut frames = frames.into_iter().map(u64::from);
    let mut chunk = Vec::with_capacity(CHUNK);
    loop {
        chunk.clear();
        chunk.extend(frames.by_ref().take(CHUNK));
        if chunk.is_empty() {
            return released;
        }
        chunk.sort_unstable();
        chunk.dedup();
        let mut rest = &chunk[..];
        while let Some(&first) = rest.first() {
            let count = rest
                .iter()
                .zip(first..)
                .take_while(|(frame, expected)| **frame == *expected)
                .count();
            release_run(memory, first, count as u64, &mut released);
            rest = &rest[count..];
        }
    }
}

/// Releases frames `first..first + count`, page by page when the run
/// crosses a region's end (to keep the RAM in it).
fn release_run(memory: &GuestMemoryMmap, first: u64, count: u64, released: &mut Released) {
    if release_range(
        memory,
        GuestAddress(first << PAGE_SHIFT),
        count << PAGE_SHIFT,
    ) {
        released.pages += count;
        return;
    }
    for frame in first..first + count {
        match release_range(memory, GuestAddress(frame << PAGE_SHIFT), PAGE_SIZE) {
            true => released.pages += 1,
            false => released.outside += 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::fd::{AsRawFd, FromRawFd};

    use vm_memory::{Bytes, FileOffset};

    use super::*;

    const MIB: usize = 1 << 20;

    fn touched(memory: &GuestMemoryMmap, pages: std::ops::Range<u64>) {
        for page in pages {
            memory
                .write_obj(0xa5u8, GuestAddress(page << PAGE_SHIFT))
                .unwrap();
        }
    }

    fn byte(memory: &GuestMemoryMmap, page: u64) -> u8 {
        memory.read_obj(GuestAddress(page << PAGE_SHIFT)).unwrap()
    }

    #[test]
    fn released_pages_read_zero_and_the_rest_keep_their_data() {
        let memory = GuestMemoryMmap::from_ranges(&[
            (GuestAddress(0), MIB),
            (GuestAddress(0x1000_0000), MIB),
        ])
        .unwrap();
        touched(&memory, 0..256);
        touched(&memory, 0x10000..0x10100);
        let released = release_frames(&memory, [3, 4, 5, 9, 0x10000, 0x100ff, 40, 39, 38]);
        assert_eq!(
            released,
            Released {
                pages: 9,
                outside: 0
            }
        );
        for page in [3, 4, 5, 9, 0x10000, 0x100ff, 38, 39, 40] {
            assert_eq!(byte(&memory, page), 0, "page {page:#x}");
        }
        for page in [2, 6, 8, 10, 0x10001] {
            assert_eq!(byte(&memory, page), 0xa5, "page {page:#x}");
        }
    }

    #[test]
    fn frames_outside_ram_are_skipped_and_runs_across_a_region_end_keep_the_ram() {
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MIB)]).unwrap();
        touched(&memory, 0..256);
        // 254..=257 runs past the end; u32::MAX is far outside.
        let released = release_frames(&memory, [254, 255, 256, 257, u32::MAX, 4, 4]);
        assert_eq!(
            released,
            Released {
                pages: 3,
                outside: 3
            }
        );
        assert_eq!(byte(&memory, 254), 0);
        assert_eq!(byte(&memory, 253), 0xa5);
        assert!(!release_range(&memory, GuestAddress(0), 2 * MIB as u64));
        assert!(!release_range(&memory, GuestAddress(0), 0));
        assert!(!release_range(&memory, GuestAddress(u64::MAX - 4095), 4096));
        assert!(!release_range(&memory, GuestAddress(0x1800), 4096));
        assert!(!release_range(&memory, GuestAddress(0x1000), 100));
        assert_eq!(byte(&memory, 1), 0xa5);
    }

    #[test]
    fn shared_memory_gives_its_pages_back_to_the_file() {
        // SAFETY: memfd_create with a valid name; the fd is checked and
        // owned by the File from here on.
        let fd = unsafe { libc::memfd_create(c"kvmon-balloon-test".as_ptr(), 0) };
        assert!(fd >= 0);
        // SAFETY: fd is a fresh descriptor no one else owns.
        let file = unsafe { std::fs::File::from_raw_fd(fd) };
        file.set_len(MIB as u64).unwrap();
        let allocated = |file: &std::fs::File| {
            let mut stat = std::mem::MaybeUninit::<libc::stat>::uninit();
            // SAFETY: fstat fills the stat buffer owned here, and it is read
            // only when fstat succeeded.
            let stat = unsafe {
                assert_eq!(libc::fstat(file.as_raw_fd(), stat.as_mut_ptr()), 0);
                stat.assume_init()
            };
            stat.st_blocks * 512
        };
        let memory = GuestMemoryMmap::from_ranges_with_files([(
            GuestAddress(0),
            MIB,
            Some(FileOffset::new(file.try_clone().unwrap(), 0)),
        )])
        .unwrap();
        touched(&memory, 0..256);
        assert_eq!(allocated(&file), MIB as i64);
        release_frames(&memory, 0..128);
        assert_eq!(allocated(&file), MIB as i64 / 2);
        assert_eq!(byte(&memory, 0), 0);
        assert_eq!(byte(&memory, 128), 0xa5);
    }
}
