//! Handing a frame's mergeable receive buffers back to the driver as one.
//!
//! virtio-queue's `add_used` publishes each used element as it writes it.
//! A frame spread over several buffers must appear whole: Linux's driver
//! takes the first buffer, reads from its header how many follow, and drops
//! the frame (counting a length error) if they are not all in the used ring
//! yet.  Here every element is written first and the ring's index moves
//! once.  Because the queue then counts one element where there were
//! several, the receive queue keeps its own record of where it last
//! signalled, for the event-index check.

use std::num::Wrapping;
use std::sync::atomic::{fence, Ordering};

use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

/// The used ring's header (flags, idx), then elements of (id, len).
const USED_HEADER: u64 = 4;
const USED_ELEMENT: u64 = 8;
/// The available ring's header (flags, idx), then one u16 per entry, then
/// used_event.
const AVAIL_HEADER: u64 = 4;

/// Adds `used` (head, bytes written) to the used ring, visible to the
/// driver all at once.
pub fn add_used_together(
    queue: &mut Queue,
    memory: &GuestMemoryMmap,
    used: &[(u16, u32)],
) -> Result<(), virtio_queue::Error> {
    let Some((&(last_head, last_len), first)) = used.split_last() else {
        return Ok(());
    };
    let start = Wrapping(queue.next_used());
    let size = queue.size();
    for (at, &(head, len)) in (0..).zip(first) {
        if head >= size {
            return Err(virtio_queue::Error::InvalidDescriptorIndex);
        }
        let slot = u64::from((start + Wrapping(at)).0 % size);
        let address = queue
            .used_ring()
            .checked_add(USED_HEADER + slot * USED_ELEMENT)
            .ok_or(virtio_queue::Error::AddressOverflow)?;
        let element = (u64::from(len) << 32 | u64::from(head)).to_le_bytes();
        memory
            .write_slice(&element, GuestAddress(address))
            .map_err(virtio_queue::Error::GuestMemory)?;
    }
    let others = Wrapping(first.len() as u16);
    queue.set_next_used((start + others).0);
    // The last element's add_used stores the index with Release ordering,
    // after the elements above.
    queue
        .add_used(memory, last_head, last_len)
        .inspect_err(|_| queue.set_next_used(start.0))
}

/// The event-index check (virtio 1.2, 2.7.10) for a queue whose elements go
/// in through [`add_used_together`].
#[derive(Debug, Default)]
pub struct UsedSignal {
    /// The used index when the driver was last considered for an interrupt.
    checked_at: Wrapping<u16>,
}

impl UsedSignal {
    /// Whether the driver asked for an interrupt for the elements added
    /// since the last call.
    pub fn needed(
        &mut self,
        queue: &Queue,
        memory: &GuestMemoryMmap,
    ) -> Result<bool, virtio_queue::Error> {
        let now = Wrapping(queue.next_used());
        let since = std::mem::replace(&mut self.checked_at, now);
        if !queue.event_idx_enabled() {
            return Ok(true);
        }
        // The index stores above must be visible before used_event is read,
        // or a driver that has just moved it would be missed.
        fence(Ordering::SeqCst);
        let address = queue
            .avail_ring()
            .checked_add(AVAIL_HEADER + 2 * u64::from(queue.size()))
            .ok_or(virtio_queue::Error::AddressOverflow)?;
        let used_event: u16 = memory
            .read_obj(GuestAddress(address))
            .map_err(virtio_queue::Error::GuestMemory)?;
        let used_event = Wrapping(u16::from_le(used_event));
        Ok(now - used_event - Wrapping(1) < now - since)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::testing::DriverQueue;

    fn setup() -> (GuestMemoryMmap, DriverQueue, Queue) {
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
        let driver = DriverQueue::new(&memory, 0x1000, 8).with_event_idx(true);
        let queue = driver.queue(8);
        (memory, driver, queue)
    }

    fn used_idx(queue: &Queue, memory: &GuestMemoryMmap) -> u16 {
        queue.used_idx(memory, Ordering::Acquire).unwrap().0
    }

    #[test]
    fn the_elements_arrive_in_order_under_one_index_step() {
        let (memory, mut driver, mut queue) = setup();
        for head in 0..6 {
            add_used_together(&mut queue, &memory, &[(head, 1)]).unwrap();
            driver.next_used(Duration::ZERO).unwrap();
        }
        add_used_together(&mut queue, &memory, &[(3, 100), (5, 200), (1, 50)]).unwrap();
        assert_eq!(queue.next_used(), 9);
        assert_eq!(used_idx(&queue, &memory), 9);
        // Slots 6, 7, then 0: the ring wraps at its size.
        for expected in [(3, 100), (5, 200), (1, 50)] {
            assert_eq!(driver.next_used(Duration::ZERO), Some(expected));
        }
    }

    #[test]
    fn a_bad_head_adds_nothing() {
        let (memory, _driver, mut queue) = setup();
        for used in [[(9, 100), (1, 50)], [(1, 50), (8, 100)]] {
            assert!(add_used_together(&mut queue, &memory, &used).is_err());
            assert_eq!(queue.next_used(), 0);
            assert_eq!(used_idx(&queue, &memory), 0);
        }
    }

    #[test]
    fn an_interrupt_is_needed_once_any_element_passes_the_used_event() {
        let (memory, driver, mut queue) = setup();
        let mut signal = UsedSignal::default();
        // The driver wants an interrupt once element 1 is used.
        driver.set_used_event(1);
        add_used_together(&mut queue, &memory, &[(0, 10)]).unwrap();
        assert!(!signal.needed(&queue, &memory).unwrap(), "only element 0");
        add_used_together(&mut queue, &memory, &[(1, 10), (2, 10), (3, 10)]).unwrap();
        assert!(signal.needed(&queue, &memory).unwrap(), "element 1 is used");
        add_used_together(&mut queue, &memory, &[(4, 10)]).unwrap();
        assert!(
            !signal.needed(&queue, &memory).unwrap(),
            "already signalled"
        );
    }
}
