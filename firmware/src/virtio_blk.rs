//! A minimal virtio-blk driver over virtio-mmio (version 2), for the test
//! guest: it finds the first block device by probing the windows where
//! kvmon and QEMU's microvm put them, sets up one queue of a few
//! descriptors, and runs one request at a time, polling the used ring (no
//! interrupts, so it needs nothing routed).

use core::sync::atomic::{fence, Ordering};

use crate::io::{read32, write32};

/// kvmon's windows, then QEMU microvm's.
const WINDOWS: [(u64, u64); 2] = [(0xd000_0000, 8), (0xfeb0_0000, 24)];
const WINDOW: u64 = 0x200;

const MAGIC: u64 = 0x000;
const VERSION: u64 = 0x004;
const DEVICE_ID: u64 = 0x008;
const DEVICE_FEATURES: u64 = 0x010;
const DEVICE_FEATURES_SEL: u64 = 0x014;
const DRIVER_FEATURES: u64 = 0x020;
const DRIVER_FEATURES_SEL: u64 = 0x024;
const QUEUE_SEL: u64 = 0x030;
const QUEUE_NUM_MAX: u64 = 0x034;
const QUEUE_NUM: u64 = 0x038;
const QUEUE_READY: u64 = 0x044;
const QUEUE_NOTIFY: u64 = 0x050;
const STATUS: u64 = 0x070;
const QUEUE_DESC: u64 = 0x080;
const QUEUE_AVAIL: u64 = 0x090;
const QUEUE_USED: u64 = 0x0a0;
const CONFIG: u64 = 0x100;

const ACKNOWLEDGE: u32 = 1;
const DRIVER: u32 = 2;
const DRIVER_OK: u32 = 4;
const FEATURES_OK: u32 = 8;

pub const F_RO: u32 = 5;
const F_FLUSH: u32 = 9;
/// VIRTIO_F_VERSION_1, in the second feature word.
const F_VERSION_1_HIGH: u32 = 1 << (32 - 32);

pub const T_IN: u32 = 0;
pub const T_OUT: u32 = 1;
pub const T_FLUSH: u32 = 4;
pub const T_GET_ID: u32 = 8;

/// The queue's memory, in RAM the program does not otherwise use: the
/// descriptor table, available ring, used ring, then each request's
/// header and status.
const RING: u64 = 0x30_0000;
const DESC: u64 = RING;
const AVAIL: u64 = RING + 0x1000;
const USED: u64 = RING + 0x2000;
const HEADER: u64 = RING + 0x3000;
const STATUS_BYTE: u64 = RING + 0x3100;
const QUEUE_SIZE: u16 = 8;

/// Where request data may go: 1 MiB of RAM past the rings.
pub const BUFFER: u64 = 0x40_0000;
pub const BUFFER_LEN: usize = 0x10_0000;

pub struct Block {
    base: u64,
    pub features: u32,
    avail_idx: u16,
}

fn write_u64(address: u64, value: u64) {
    // SAFETY: `address` is in the RAM this driver owns (the ring area).
    unsafe { (address as *mut u64).write_volatile(value) }
}

fn write_u32(address: u64, value: u32) {
    // SAFETY: as write_u64.
    unsafe { (address as *mut u32).write_volatile(value) }
}

fn write_u16(address: u64, value: u16) {
    // SAFETY: as write_u64.
    unsafe { (address as *mut u16).write_volatile(value) }
}

fn read_u16(address: u64) -> u16 {
    // SAFETY: as write_u64.
    unsafe { (address as *const u16).read_volatile() }
}

fn read_u8(address: u64) -> u8 {
    // SAFETY: as write_u64.
    unsafe { (address as *const u8).read_volatile() }
}

impl Block {
    /// The first virtio-mmio block device, set up and ready.
    pub fn find() -> Option<Block> {
        let base = WINDOWS
            .iter()
            .flat_map(|&(start, count)| (0..count).map(move |i| start + i * WINDOW))
            .find(|&base| {
                read32(base + MAGIC) == 0x7472_6976
                    && read32(base + VERSION) == 2
                    && read32(base + DEVICE_ID) == 2
            })?;
        let mut block = Block {
            base,
            features: 0,
            avail_idx: 0,
        };
        block.start().then_some(block)
    }

    pub fn base(&self) -> u64 {
        self.base
    }

    fn reg(&self, offset: u64) -> u32 {
        read32(self.base + offset)
    }

    fn set(&self, offset: u64, value: u32) {
        write32(self.base + offset, value)
    }

    fn start(&mut self) -> bool {
        self.set(STATUS, 0);
        self.set(STATUS, ACKNOWLEDGE);
        self.set(STATUS, ACKNOWLEDGE | DRIVER);
        self.set(DEVICE_FEATURES_SEL, 0);
        self.features = self.reg(DEVICE_FEATURES);
        self.set(DEVICE_FEATURES_SEL, 1);
        if self.reg(DEVICE_FEATURES) & F_VERSION_1_HIGH == 0 {
            return false;
        }
        self.set(DRIVER_FEATURES_SEL, 0);
        self.set(
            DRIVER_FEATURES,
            self.features & (1 << F_RO | 1 << F_FLUSH),
        );
        self.set(DRIVER_FEATURES_SEL, 1);
        self.set(DRIVER_FEATURES, F_VERSION_1_HIGH);
        self.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        if self.reg(STATUS) & FEATURES_OK == 0 {
            return false;
        }
        self.set(QUEUE_SEL, 0);
        if self.reg(QUEUE_NUM_MAX) < u32::from(QUEUE_SIZE) {
            return false;
        }
        for offset in (0..0x3200).step_by(8) {
            write_u64(RING + offset, 0);
        }
        self.set(QUEUE_NUM, u32::from(QUEUE_SIZE));
        for (register, address) in [(QUEUE_DESC, DESC), (QUEUE_AVAIL, AVAIL), (QUEUE_USED, USED)] {
            self.set(register, address as u32);
            self.set(register + 4, (address >> 32) as u32);
        }
        self.set(QUEUE_READY, 1);
        self.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
        true
    }

    /// The disk's size in sectors.
    pub fn capacity(&self) -> u64 {
        u64::from(self.reg(CONFIG)) | u64::from(self.reg(CONFIG + 4)) << 32
    }

    /// One request with `len` bytes of data at BUFFER + `offset` (none
    /// when `len` is 0); returns the status the device wrote.
    pub fn request(&mut self, kind: u32, sector: u64, offset: usize, len: u32) -> u8 {
        write_u32(HEADER, kind);
        write_u32(HEADER + 4, 0);
        write_u64(HEADER + 8, sector);
        write_u8_status(0xff);
        let device_writes = kind == T_IN || kind == T_GET_ID;
        let mut chain = [(HEADER, 16u32, false); 3];
        let mut count = 1;
        if len > 0 {
            chain[count] = (BUFFER + offset as u64, len, device_writes);
            count += 1;
        }
        chain[count] = (STATUS_BYTE, 1, true);
        count += 1;
        for (i, &(address, length, writable)) in chain[..count].iter().enumerate() {
            let at = DESC + 16 * i as u64;
            let next = i + 1 < count;
            let flags = u16::from(next) | if writable { 2 } else { 0 };
            write_u64(at, address);
            write_u32(at + 8, length);
            write_u16(at + 12, flags);
            write_u16(at + 14, i as u16 + 1);
        }
        let used_before = read_u16(USED + 2);
        write_u16(AVAIL + 4 + 2 * u64::from(self.avail_idx % QUEUE_SIZE), 0);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::SeqCst);
        write_u16(AVAIL + 2, self.avail_idx);
        fence(Ordering::SeqCst);
        self.set(QUEUE_NOTIFY, 0);
        while read_u16(USED + 2) == used_before {
            core::hint::spin_loop();
        }
        fence(Ordering::SeqCst);
        read_u8(STATUS_BYTE)
    }
}

fn write_u8_status(value: u8) {
    // SAFETY: the status byte is in the ring area this driver owns.
    unsafe { (STATUS_BYTE as *mut u8).write_volatile(value) }
}

/// The request buffer as bytes.
pub fn buffer() -> &'static mut [u8] {
    // SAFETY: BUFFER..BUFFER + BUFFER_LEN is RAM only this driver uses, and
    // the test guest runs one request at a time on one CPU.
    unsafe { core::slice::from_raw_parts_mut(BUFFER as *mut u8, BUFFER_LEN) }
}
