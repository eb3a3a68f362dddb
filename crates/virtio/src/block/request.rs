//! virtio-blk requests as a driver lays them out in a descriptor chain: a
//! 16-byte header the device reads (type, reserved, sector), the data, and
//! one status byte the device writes last.  Parsing only reads guest
//! memory; every address is checked when the request is carried out.

use virtio_bindings::virtio_blk::*;
use virtio_queue::desc::split::Descriptor;
use vm_memory::{Address, Bytes, GuestAddress, GuestMemoryBackend, GuestMemoryMmap};

/// The request types a driver may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Read,
    Write,
    Flush,
    GetId,
    Discard,
    WriteZeroes,
    Unsupported(u32),
}

impl Kind {
    fn from_type(request_type: u32) -> Kind {
        match request_type {
            VIRTIO_BLK_T_IN => Kind::Read,
            VIRTIO_BLK_T_OUT => Kind::Write,
            VIRTIO_BLK_T_FLUSH => Kind::Flush,
            VIRTIO_BLK_T_GET_ID => Kind::GetId,
            VIRTIO_BLK_T_DISCARD => Kind::Discard,
            VIRTIO_BLK_T_WRITE_ZEROES => Kind::WriteZeroes,
            other => Kind::Unsupported(other),
        }
    }
}

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
    fn take_front(&mut self, mut count: u64) -> Option<Segments> {
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
    fn take_last_byte(&mut self) -> Option<GuestAddress> {
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

/// The little-endian number in `bytes` (at most eight of them).
pub fn little_endian(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .rev()
        .fold(0u64, |value, &byte| value << 8 | u64::from(byte))
}

/// A request as the chain describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Request {
    pub kind: Kind,
    pub sector: u64,
    /// What the device reads (a write's data, discard ranges) or writes (a
    /// read's buffers, the ID), depending on the kind.
    pub data: Segments,
    /// Where the status byte goes.
    pub status: GuestAddress,
}

/// Why a chain is no request the device can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// No byte the device may write: there is nowhere to put a status.
    NoStatus,
    /// The header is short or outside guest memory (status IOERR).
    BadHeader,
}

impl Request {
    /// Parses the descriptors of one chain.
    pub fn parse(
        descriptors: impl Iterator<Item = Descriptor>,
        memory: &GuestMemoryMmap,
    ) -> Result<Request, (Malformed, Option<GuestAddress>)> {
        let mut readable = Segments::default();
        let mut writable = Segments::default();
        for descriptor in descriptors {
            let segment = Segment {
                addr: GuestAddress(descriptor.addr().0),
                len: u64::from(descriptor.len()),
            };
            match descriptor.is_write_only() {
                true => writable.0.push(segment),
                false => readable.0.push(segment),
            }
        }
        let status = writable
            .take_last_byte()
            .ok_or((Malformed::NoStatus, None))?;
        let header = readable
            .take_front(16)
            .and_then(|header| header.read(memory))
            .ok_or((Malformed::BadHeader, Some(status)))?;
        let kind = Kind::from_type(little_endian(&header[..4]) as u32);
        let data = match kind {
            Kind::Read | Kind::GetId => writable,
            _ => readable,
        };
        Ok(Request {
            kind,
            sector: little_endian(&header[8..16]),
            data,
            status,
        })
    }
}
