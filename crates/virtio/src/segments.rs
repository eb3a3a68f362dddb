//! Guest memory as a descriptor chain names it: runs of bytes in the order
//! the descriptors give them, and the iovecs that reach them in the host.

use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// A run of guest memory one descriptor names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    pub addr: GuestAddress,
    pub len: u64,
}

/// Guest memory in the order the descriptors give it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Segments(pub Vec<Segment>);

impl Segments {
    pub fn len(&self) -> u64 {
        self.0.iter().map(|s| s.len).sum()
    }

    /// Splits off the first `count` bytes; `None` if there are fewer.
    pub fn take_front(&mut self, mut count: u64) -> Option<Segments> {
        if self.len() < count {
            return None;
        }
        let mut front = Vec::new();
        while count > 0 {
            let first = &mut self.0[0];
            let part = first.len.min(count);
            front.push(Segment {
                addr: first.addr,
                len: part,
            });
            first.addr = first.addr.unchecked_add(part);
            first.len -= part;
            count -= part;
            if first.len == 0 {
                self.0.remove(0);
            }
        }
        self.0.retain(|s| s.len > 0);
        Some(Segments(front))
    }

    /// The address of the last byte, which is split off.
    pub fn take_last_byte(&mut self) -> Option<GuestAddress> {
        self.0.retain(|s| s.len > 0);
        let last = self.0.last_mut()?;
        last.len -= 1;
        let addr = last.addr.unchecked_add(last.len);
        self.0.retain(|s| s.len > 0);
        Some(addr)
    }

    /// Reads the segments' bytes; `None` if any lies outside guest memory.
    pub fn read(&self, memory: &GuestMemoryMmap) -> Option<Vec<u8>> {
        let mut bytes = vec![0u8; usize::try_from(self.len()).ok()?];
        let mut at = 0;
        for segment in &self.0 {
            let len = segment.len as usize;
            memory
                .read_slice(&mut bytes[at..at + len], segment.addr)
                .ok()?;
            at += len;
        }
        Some(bytes)
    }

    /// Writes `bytes` from the start of the segments, as far as they go;
    /// returns how many were written, or `None` outside guest memory.
    pub fn write(&self, memory: &GuestMemoryMmap, bytes: &[u8]) -> Option<u64> {
        let mut at = 0usize;
        for segment in &self.0 {
            let len = (segment.len as usize).min(bytes.len() - at);
            memory
                .write_slice(&bytes[at..at + len], segment.addr)
                .ok()?;
            at += len;
        }
        Some(at as u64)
    }

    /// The segments as iovecs into the mapping of guest memory; `None` if
    /// any lies outside it.
    pub fn iovecs(&self, memory: &GuestMemoryMmap) -> Option<Vec<libc::iovec>> {
        let mut iovecs = Vec::new();
        for segment in &self.0 {
            let len = usize::try_from(segment.len).ok()?;
            for slice in GuestMemoryBackend::get_slices(memory, segment.addr, len) {
                let slice = slice.ok()?;
                iovecs.push(libc::iovec {
                    iov_base: slice.ptr_guard_mut().as_ptr().cast(),
                    iov_len: slice.len(),
                });
            }
        }
        Some(iovecs)
    }
}
