//! A bus: sorted, non-overlapping address ranges, each served by a device.
//! The port I/O bus and the MMIO bus are both this.

use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

/// A device's registers, addressed by offset from the start of its range.
pub trait BusDevice: Send {
    fn read(&mut self, offset: u64, data: &mut [u8]);
    fn write(&mut self, offset: u64, data: &[u8]);
}

/// A device of byte-wide registers at offsets 0-255, as the PC's legacy
/// devices are: wider accesses reach the first byte (the rest read 0).
pub trait ByteRegisters: Send {
    fn read_byte(&mut self, offset: u8) -> u8;
    fn write_byte(&mut self, offset: u8, value: u8);
}

impl<T: ByteRegisters> BusDevice for T {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Ok(offset), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.read_byte(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) {
            self.write_byte(offset, value);
        }
    }
}

/// A device shared between the vCPU threads that access it.
pub type SharedDevice = Arc<Mutex<dyn BusDevice>>;

struct Range {
    base: u64,
    len: u64,
    device: SharedDevice,
}

#[derive(Default)]
pub struct Bus {
    /// Sorted by base; no two overlap.
    ranges: Vec<Range>,
}

impl fmt::Debug for Bus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list()
            .entries(self.ranges.iter().map(|r| (r.base, r.len)))
            .finish()
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BusError {
    Empty,
    Overlap { base: u64, len: u64 },
}

impl fmt::Display for BusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BusError::Empty => write!(f, "a device range cannot be empty"),
            BusError::Overlap { base, len } => {
                write!(f, "the range {base:#x}+{len:#x} overlaps another device")
            }
        }
    }
}

impl Bus {
    pub fn new() -> Bus {
        Bus::default()
    }

    /// Puts `device` at `base..base + len`.
    pub fn insert(&mut self, base: u64, len: u64, device: SharedDevice) -> Result<(), BusError> {
        let end = base
            .checked_add(len)
            .filter(|_| len > 0)
            .ok_or(BusError::Empty)?;
        let at = self.ranges.partition_point(|r| r.base < base);
        let clashes_before = at > 0 && self.ranges[at - 1].base + self.ranges[at - 1].len > base;
        let clashes_after = self.ranges.get(at).is_some_and(|r| r.base < end);
        if clashes_before || clashes_after {
            return Err(BusError::Overlap { base, len });
        }
        self.ranges.insert(at, Range { base, len, device });
        Ok(())
    }

    /// The device whose range holds the whole of `address..address + len`,
    /// with the offset into it.
    fn find(&self, address: u64, len: usize) -> Option<(&SharedDevice, u64)> {
        let at = self
            .ranges
            .partition_point(|r| r.base <= address)
            .checked_sub(1)?;
        let range = &self.ranges[at];
        let offset = address - range.base;
        (offset + len as u64 <= range.len).then_some((&range.device, offset))
    }

    /// Reads from the device at `address`; false when there is none (the
    /// caller decides what an unassigned read returns).
    pub fn read(&self, address: u64, data: &mut [u8]) -> bool {
        let Some((device, offset)) = self.find(address, data.len()) else {
            return false;
        };
        lock(device).read(offset, data);
        true
    }

    /// Writes to the device at `address`; false when there is none.
    pub fn write(&self, address: u64, data: &[u8]) -> bool {
        let Some((device, offset)) = self.find(address, data.len()) else {
            return false;
        };
        lock(device).write(offset, data);
        true
    }
}

/// Locks a device (or other plain data) that stays usable after a thread
/// panicked holding it: its state is plain data, never half-updated
/// structure.
pub fn lock<T: ?Sized>(device: &Mutex<T>) -> MutexGuard<'_, T> {
    device
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Remembers the last write and answers reads with its offset.
    struct Echo(Vec<(u64, Vec<u8>)>);

    impl BusDevice for Echo {
        fn read(&mut self, offset: u64, data: &mut [u8]) {
            data.fill(offset as u8);
        }
        fn write(&mut self, offset: u64, data: &[u8]) {
            self.0.push((offset, data.to_vec()));
        }
    }

    fn echo() -> Arc<Mutex<Echo>> {
        Arc::new(Mutex::new(Echo(Vec::new())))
    }

    #[test]
    fn accesses_reach_the_device_at_their_offset() {
        let mut bus = Bus::new();
        let a = echo();
        let b = echo();
        bus.insert(0x3f8, 8, a.clone()).unwrap();
        bus.insert(0x60, 5, b.clone()).unwrap();
        let mut data = [0u8; 1];
        assert!(bus.read(0x3fd, &mut data));
        assert_eq!(data, [5]);
        assert!(bus.write(0x64, &[0xfe]));
        assert_eq!(b.lock().unwrap().0, [(4, vec![0xfe])]);
        assert!(a.lock().unwrap().0.is_empty());
    }

    #[test]
    fn accesses_outside_every_range_or_across_its_end_miss() {
        let mut bus = Bus::new();
        bus.insert(0x100, 4, echo()).unwrap();
        let mut data = [0u8; 4];
        assert!(!bus.read(0xff, &mut data[..1]));
        assert!(!bus.read(0x104, &mut data[..1]));
        assert!(!bus.read(0x102, &mut data), "crosses the end");
        assert!(bus.read(0x100, &mut data));
        assert!(!bus.write(u64::MAX, &[0]));
    }

    #[test]
    fn overlapping_and_empty_ranges_are_refused() {
        let mut bus = Bus::new();
        bus.insert(0x100, 0x10, echo()).unwrap();
        assert!(bus.insert(0x10f, 1, echo()).is_err());
        assert!(bus.insert(0xf8, 9, echo()).is_err());
        assert!(bus.insert(0x0, 0, echo()).is_err());
        assert!(bus.insert(u64::MAX, 2, echo()).is_err());
        bus.insert(0xf0, 0x10, echo()).unwrap();
        bus.insert(0x110, 1, echo()).unwrap();
    }
}
