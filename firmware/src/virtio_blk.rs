//! A minimal virtio-blk driver for the test guest: one queue of a few
//! descriptors and one request at a time, on the virtio-mmio core.

use crate::io::write8;
use crate::virtio::{read_u8, write_u32, write_u64, Device, Queue};

pub const F_RO: u32 = 5;
const F_FLUSH: u32 = 9;
const BLOCK_ID: u32 = 2;

pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;

/// The queue's memory, in RAM the program does not otherwise use: the
/// rings, then each request's header and status.
const RING: u64 = 0x30_0000;
const HEADER: u64 = RING + 0x3000;
const STATUS_BYTE: u64 = RING + 0x3100;
const QUEUE_SIZE: u16 = 8;

/// Where request data may go: 1 MiB of RAM past the rings.
pub const BUFFER: u64 = 0x40_0000;
pub const BUFFER_LEN: usize = 0x10_0000;

pub struct Block {
    device: Device,
    queue: Queue,
    pub features: u32,
}

impl Block {
    /// The first virtio-mmio block device, set up and ready.
    pub fn find() -> Option<Block> {
        let device = Device::find(BLOCK_ID)?;
        let features = device.negotiate(1 << F_RO | 1 << F_FLUSH)?;
        let queue = device.queue(0, RING, QUEUE_SIZE)?;
        device.driver_ok();
        Some(Block {
            device,
            queue,
            features,
        })
    }

    pub fn base(&self) -> u64 {
        self.device.base()
    }

    /// The disk's size in sectors.
    pub fn capacity(&self) -> u64 {
        u64::from(self.device.config(0)) | u64::from(self.device.config(4)) << 32
    }

    /// One request with `len` bytes of data at BUFFER + `offset` (none
    /// when `len` is 0); returns the status the device wrote.
    pub fn request(&mut self, kind: u32, sector: u64, offset: usize, len: u32) -> u8 {
        write_u32(HEADER, kind);
        write_u32(HEADER + 4, 0);
        write_u64(HEADER + 8, sector);
        write8(STATUS_BYTE, 0xff);
        let device_writes = kind == T_IN || kind == T_GET_ID;
        let mut chain = [(HEADER, 16u32, false); 3];
        let mut count = 1;
        if len > 0 {
            chain[count] = (BUFFER + offset as u64, len, device_writes);
            count += 1;
        }
        chain[count] = (STATUS_BYTE, 1, true);
        count += 1;
        self.queue.transfer(&chain[..count]);
        read_u8(STATUS_BYTE)
    }
}

/// The request buffer as bytes.
pub fn buffer() -> &'static mut [u8] {
    // SAFETY: BUFFER..BUFFER + BUFFER_LEN is RAM only this driver uses, and
    // the test guest runs one request at a time on one CPU.
    unsafe { core::slice::from_raw_parts_mut(BUFFER as *mut u8, BUFFER_LEN) }
}
