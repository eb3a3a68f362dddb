//! virtio-blk requests as a driver lays them out in a descriptor chain: a
//! 16-byte header the device reads (type, reserved, sector), the data, and
//! one status byte the device writes last.  Parsing only reads guest
//! memory; every address is checked when the request is carried out.

use virtio_bindings::virtio_blk::*;
use virtio_queue::desc::split::Descriptor;
use vm_memory::{GuestAddress, GuestMemoryMmap};

pub use crate::segments::{Segment, Segments};

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
