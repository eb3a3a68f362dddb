//! A driver's side of one virtqueue, for device tests: descriptor chains
//! written into guest memory, made available and notified, and the used
//! ring read back.

use std::time::{Duration, Instant};

use virtio_bindings::virtio_ring::{VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

/// One descriptor: address, length, device-writable.
pub type Desc = (u64, u32, bool);

pub struct DriverQueue {
    memory: GuestMemoryMmap,
    /// The descriptor table; the available ring and the used ring follow
    /// 4 KiB apart.
    base: u64,
    size: u16,
    avail_idx: u16,
    used_seen: u16,
    notifier: EventFd,
    /// VIRTIO_RING_F_EVENT_IDX: notify only past the device's avail_event.
    event_idx: bool,
}

impl DriverQueue {
    /// A queue of `size` whose rings take 12 KiB of `memory` from `base`.
    pub fn new(memory: &GuestMemoryMmap, base: u64, size: u16) -> DriverQueue {
        DriverQueue {
            memory: memory.clone(),
            base,
            size,
            avail_idx: 0,
            used_seen: 0,
            notifier: EventFd::new(0).unwrap(),
            event_idx: false,
        }
    }

    /// The same queue, notifying as a driver that negotiated
    /// VIRTIO_RING_F_EVENT_IDX does when `on`.
    pub fn with_event_idx(self, on: bool) -> DriverQueue {
        DriverQueue {
            event_idx: on,
            ..self
        }
    }

    fn avail(&self) -> u64 {
        self.base + 0x1000
    }

    fn used(&self) -> u64 {
        self.base + 0x2000
    }

    /// The device's view, set up and ready.
    pub fn queue(&self, max_size: u16) -> Queue {
        let mut queue = Queue::new(max_size).unwrap();
        queue.set_size(self.size);
        queue.set_desc_table_address(Some(self.base as u32), Some(0));
        queue.set_avail_ring_address(Some(self.avail() as u32), Some(0));
        queue.set_used_ring_address(Some(self.used() as u32), Some(0));
        queue.set_event_idx(self.event_idx);
        queue.set_ready(true);
        queue
    }

    pub fn notifier(&self) -> EventFd {
        self.notifier.try_clone().unwrap()
    }

    /// Writes `chain` into the table from entry `head` on; with
    /// `loop_back` its last descriptor points back at `head`.
    pub fn write_chain(&self, head: u16, chain: &[Desc], loop_back: bool) {
        for (i, &(addr, len, writable)) in chain.iter().enumerate() {
            let index = head + i as u16;
            let last = i + 1 == chain.len();
            let mut flags = if writable { VRING_DESC_F_WRITE } else { 0 } as u16;
            let next = if last && loop_back { head } else { index + 1 };
            if !last || loop_back {
                flags |= VRING_DESC_F_NEXT as u16;
            }
            let at = self.base + 16 * u64::from(index);
            self.memory.write_obj(addr, GuestAddress(at)).unwrap();
            self.memory.write_obj(len, GuestAddress(at + 8)).unwrap();
            self.memory.write_obj(flags, GuestAddress(at + 12)).unwrap();
            self.memory.write_obj(next, GuestAddress(at + 14)).unwrap();
        }
    }

    /// Makes the chain at `head` available and notifies the device (with
    /// event indexes, only when the device asked to hear of this one).
    pub fn offer(&mut self, head: u16) {
        let slot = self.avail() + 4 + 2 * u64::from(self.avail_idx % self.size);
        self.memory.write_obj(head, GuestAddress(slot)).unwrap();
        let old = self.avail_idx;
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.memory
            .write_obj(self.avail_idx, GuestAddress(self.avail() + 2))
            .unwrap();
        let avail_event: u16 = self
            .memory
            .read_obj(GuestAddress(self.used() + 4 + 8 * u64::from(self.size)))
            .unwrap();
        // The spec's vring_need_event().
        let new = self.avail_idx;
        if !self.event_idx || new.wrapping_sub(avail_event).wrapping_sub(1) < new.wrapping_sub(old)
        {
            self.notifier.write(1).unwrap();
        }
    }

    /// With event indexes, asks for an interrupt once the device has used
    /// the element at `index`.
    pub fn set_used_event(&self, index: u16) {
        let at = self.avail() + 4 + 2 * u64::from(self.size);
        self.memory.write_obj(index, GuestAddress(at)).unwrap();
    }

    /// The next used buffer (id, length), if the device returns one
    /// within `timeout`.
    pub fn next_used(&mut self, timeout: Duration) -> Option<(u32, u32)> {
        let deadline = Instant::now() + timeout;
        loop {
            let used: u16 = self.memory.read_obj(GuestAddress(self.used() + 2)).unwrap();
            if used != self.used_seen {
                break;
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        let slot = self.used() + 4 + 8 * u64::from(self.used_seen % self.size);
        self.used_seen = self.used_seen.wrapping_add(1);
        Some((
            self.memory.read_obj(GuestAddress(slot)).unwrap(),
            self.memory.read_obj(GuestAddress(slot + 4)).unwrap(),
        ))
    }

    /// Offers the chain at `head` and waits for it to come back.
    pub fn submit(&mut self, head: u16) -> (u32, u32) {
        self.offer(head);
        self.next_used(Duration::from_secs(10))
            .expect("the device did not answer")
    }
}
