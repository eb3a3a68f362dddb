//! The virtio-mmio (version 2) core the test guest's drivers share: it
//! finds a device by its ID in the windows where kvmon and QEMU's microvm
//! put them, negotiates features, sets up queues in RAM the driver names,
//! and passes one buffer at a time per queue, polling the used ring (no
//! interrupts, so nothing needs routing).

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
/// VIRTIO_F_VERSION_1, in the second feature word.
const F_VERSION_1_HIGH: u32 = 1 << (32 - 32);

/// Descriptor flags.
const NEXT: u16 = 1;
/// The used ring's flag by which a device declines notifications.
const USED_F_NO_NOTIFY: u16 = 1;
const WRITE: u16 = 2;

pub fn write_u64(address: u64, value: u64) {
    // SAFETY: drivers pass addresses in RAM they own (rings and buffers).
    unsafe { (address as *mut u64).write_volatile(value) }
}

pub fn write_u32(address: u64, value: u32) {
    // SAFETY: as write_u64.
    unsafe { (address as *mut u32).write_volatile(value) }
}

pub fn write_u16(address: u64, value: u16) {
    // SAFETY: as write_u64.
    unsafe { (address as *mut u16).write_volatile(value) }
}

pub fn read_u16(address: u64) -> u16 {
    // SAFETY: as write_u64.
    unsafe { (address as *const u16).read_volatile() }
}

pub fn read_u32(address: u64) -> u32 {
    // SAFETY: as write_u64.
    unsafe { (address as *const u32).read_volatile() }
}

pub fn read_u8(address: u64) -> u8 {
    // SAFETY: as write_u64.
    unsafe { (address as *const u8).read_volatile() }
}

/// A virtio-mmio device's register window.
pub struct Device {
    base: u64,
}

impl Device {
    /// The first device with virtio ID `device_id`, reset.
    pub fn find(device_id: u32) -> Option<Device> {
        let base = WINDOWS
            .iter()
            .flat_map(|&(start, count)| (0..count).map(move |i| start + i * WINDOW))
            .find(|&base| {
                read32(base + MAGIC) == 0x7472_6976
                    && read32(base + VERSION) == 2
                    && read32(base + DEVICE_ID) == device_id
            })?;
        let device = Device { base };
        device.set(STATUS, 0);
        Some(device)
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

    /// Accepts the features of `wanted` (the first word) that the device
    /// offers, and VERSION_1; the accepted first word, or `None` if the
    /// device is not a virtio 1 device or refuses.
    pub fn negotiate(&self, wanted: u32) -> Option<u32> {
        self.set(STATUS, ACKNOWLEDGE);
        self.set(STATUS, ACKNOWLEDGE | DRIVER);
        self.set(DEVICE_FEATURES_SEL, 0);
        let accepted = self.reg(DEVICE_FEATURES) & wanted;
        self.set(DEVICE_FEATURES_SEL, 1);
        if self.reg(DEVICE_FEATURES) & F_VERSION_1_HIGH == 0 {
            return None;
        }
        self.set(DRIVER_FEATURES_SEL, 0);
        self.set(DRIVER_FEATURES, accepted);
        self.set(DRIVER_FEATURES_SEL, 1);
        self.set(DRIVER_FEATURES, F_VERSION_1_HIGH);
        self.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK);
        (self.reg(STATUS) & FEATURES_OK != 0).then_some(accepted)
    }

    /// Sets up queue `index` with `size` entries whose rings take 12 KiB
    /// from `at` (descriptors, available ring and used ring 4 KiB apart).
    pub fn queue(&self, index: u32, at: u64, size: u16) -> Option<Queue> {
        self.set(QUEUE_SEL, index);
        if self.reg(QUEUE_NUM_MAX) < u32::from(size) {
            return None;
        }
        for offset in (0..0x3000).step_by(8) {
            write_u64(at + offset, 0);
        }
        let queue = Queue {
            notify: self.base + QUEUE_NOTIFY,
            index,
            desc: at,
            avail: at + 0x1000,
            used: at + 0x2000,
            size,
            avail_idx: 0,
            used_seen: 0,
        };
        self.set(QUEUE_NUM, u32::from(size));
        for (register, address) in [
            (QUEUE_DESC, queue.desc),
            (QUEUE_AVAIL, queue.avail),
            (QUEUE_USED, queue.used),
        ] {
            self.set(register, address as u32);
            self.set(register + 4, (address >> 32) as u32);
        }
        self.set(QUEUE_READY, 1);
        Some(queue)
    }

    /// The driver is ready: the device may use its queues.
    pub fn driver_ok(&self) {
        self.set(STATUS, ACKNOWLEDGE | DRIVER | FEATURES_OK | DRIVER_OK);
    }

    /// A byte of the configuration space.
    pub fn config_byte(&self, offset: u64) -> u8 {
        // SAFETY: the configuration space is device memory in the window.
        unsafe { ((self.base + CONFIG + offset) as *const u8).read_volatile() }
    }

    /// A 32-bit word of the configuration space.
    pub fn config(&self, offset: u64) -> u32 {
        self.reg(CONFIG + offset)
    }

    pub fn set_config(&self, offset: u64, value: u32) {
        self.set(CONFIG + offset, value)
    }
}

/// A queue with at most one buffer out at a time.
pub struct Queue {
    notify: u64,
    index: u32,
    desc: u64,
    avail: u64,
    used: u64,
    size: u16,
    avail_idx: u16,
    used_seen: u16,
}

impl Queue {
    /// Hands the device a buffer of `(address, length, device-writable)`
    /// pieces, from descriptor 0 on, and notifies it.
    pub fn offer(&mut self, chain: &[(u64, u32, bool)]) {
        for (i, &(address, length, writable)) in chain.iter().enumerate() {
            let at = self.desc + 16 * i as u64;
            let next = i + 1 < chain.len();
            let flags = if next { NEXT } else { 0 } | if writable { WRITE } else { 0 };
            write_u64(at, address);
            write_u32(at + 8, length);
            write_u16(at + 12, flags);
            write_u16(at + 14, i as u16 + 1);
        }
        write_u16(self.avail + 4 + 2 * u64::from(self.avail_idx % self.size), 0);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::SeqCst);
        write_u16(self.avail + 2, self.avail_idx);
        self.notify();
    }

    /// Whether the device has returned a buffer since the last call.
    pub fn returned(&mut self) -> bool {
        let used = read_u16(self.used + 2);
        fence(Ordering::SeqCst);
        if used == self.used_seen {
            return false;
        }
        self.used_seen = used;
        true
    }

    /// Hands the device a buffer of one piece in descriptor `head` (which
    /// the caller keeps apart from other outstanding buffers), without
    /// notifying it.
    pub fn post(&mut self, head: u16, address: u64, len: u32, writable: bool) {
        let at = self.desc + 16 * u64::from(head);
        write_u64(at, address);
        write_u32(at + 8, len);
        write_u16(at + 12, if writable { WRITE } else { 0 });
        write_u16(self.avail + 4 + 2 * u64::from(self.avail_idx % self.size), head);
        self.avail_idx = self.avail_idx.wrapping_add(1);
        fence(Ordering::SeqCst);
        write_u16(self.avail + 2, self.avail_idx);
    }

    /// Tells the device there are new buffers, unless it is working
    /// through the ring and asked not to be (the used ring's
    /// NO_NOTIFY flag: the spec's driver then SHOULD NOT notify).
    pub fn notify(&self) {
        fence(Ordering::SeqCst);
        if read_u16(self.used) & USED_F_NO_NOTIFY == 0 {
            write32(self.notify, self.index);
        }
    }

    /// The next buffer the device returned: its head and the bytes it wrote.
    pub fn next_used(&mut self) -> Option<(u16, u32)> {
        let used = read_u16(self.used + 2);
        fence(Ordering::SeqCst);
        if used == self.used_seen {
            return None;
        }
        let slot = self.used + 4 + 8 * u64::from(self.used_seen % self.size);
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((read_u32(slot) as u16, read_u32(slot + 4)))
    }

    /// Offers a buffer and waits for the device to return it.
    pub fn transfer(&mut self, chain: &[(u64, u32, bool)]) {
        self.offer(chain);
        while !self.returned() {
            core::hint::spin_loop();
        }
    }
}
