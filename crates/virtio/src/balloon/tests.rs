//! The balloon driven as a guest driver would, on real (anonymous) guest
//! memory: pages inflated read back as zero, page lists no driver should
//! send, the target and size in the configuration space, statistics and
//! their polling, free page reporting.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use devices::IrqLine;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::*;
use crate::testing::{Desc, DriverQueue};
use crate::{Activation, Interrupt, VirtioDevice};

const RAM: u64 = 16 << 20;
/// The rings of the four queues, then the buffers the tests write.
const RINGS: u64 = 0x10_0000;
const LIST: u64 = 0x20_0000;
/// Pages the tests touch and give up.
const PAGES: std::ops::Range<u64> = 0x400..0x800;

struct Driver {
    memory: GuestMemoryMmap,
    balloon: Balloon,
    queues: Vec<DriverQueue>,
    changes: Arc<Mutex<Vec<i64>>>,
}

impl Driver {
    fn new(options: BalloonOptions) -> Driver {
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), RAM as usize)]).unwrap();
        let changes = Arc::new(Mutex::new(Vec::new()));
        let recorded = changes.clone();
        let mut balloon = Balloon::new(
            options,
            RAM,
            Box::new(move |actual| recorded.lock().unwrap().push(actual)),
        )
        .unwrap();
        let queues: Vec<DriverQueue> = (0..balloon.queue_max_sizes().len())
            .map(|i| DriverQueue::new(&memory, RINGS + 0x4000 * i as u64, 32))
            .collect();
        for page in PAGES {
            memory
                .write_obj(page, GuestAddress(page << PAGE_SHIFT))
                .unwrap();
        }
        balloon
            .activate(Activation {
                memory: memory.clone(),
                queues: queues.iter().map(|q| q.queue(128)).collect(),
                notifiers: queues.iter().map(DriverQueue::notifier).collect(),
                accepted: balloon.features(),
                interrupt: Interrupt::new(IrqLine::new(5).unwrap()),
            })
            .unwrap();
        Driver {
            memory,
            balloon,
            queues,
            changes,
        }
    }

    /// Sends `frames` on queue `queue` in one buffer at LIST.
    fn send_frames(&mut self, queue: usize, frames: &[u32]) -> (u32, u32) {
        for (i, frame) in frames.iter().enumerate() {
            self.memory
                .write_obj(*frame, GuestAddress(LIST + 4 * i as u64))
                .unwrap();
        }
        self.send(queue, &[(LIST, 4 * frames.len() as u32, false)])
    }

    fn send(&mut self, queue: usize, chain: &[Desc]) -> (u32, u32) {
        self.queues[queue].write_chain(0, chain, false);
        self.queues[queue].submit(0)
    }

    /// Whether page `page` still holds what the test wrote there.
    fn kept(&self, page: u64) -> bool {
        let value: u64 = self
            .memory
            .read_obj(GuestAddress(page << PAGE_SHIFT))
            .unwrap();
        assert!(
            value == page || value == 0,
            "page {page:#x} holds {value:#x}"
        );
        value == page
    }

    fn config_word(&self, at: u64) -> u32 {
        let mut bytes = [0u8; 4];
        self.balloon.read_config(at, &mut bytes);
        u32::from_le_bytes(bytes)
    }
}

const INFLATE: usize = 0;
const DEFLATE: usize = 1;
const STATS: usize = 2;
const REPORTING: usize = 3;

#[test]
fn inflated_pages_are_released_and_deflated_ones_come_back_untouched() {
    let mut d = Driver::new(BalloonOptions::default());
    assert_eq!(
        d.send_frames(INFLATE, &[0x400, 0x401, 0x402, 0x500]),
        (0, 0)
    );
    assert!(!d.kept(0x400) && !d.kept(0x402) && !d.kept(0x500));
    assert!(d.kept(0x403) && d.kept(0x4ff) && d.kept(0x501));
    // Deflating tells the host the guest uses the pages again.
    assert_eq!(d.send_frames(DEFLATE, &[0x403, 0x404]), (0, 0));
    assert!(d.kept(0x403) && d.kept(0x404));
}

#[test]
fn bad_duplicate_and_outside_frames_are_skipped_and_the_buffer_returned() {
    let mut d = Driver::new(BalloonOptions::default());
    let outside = (RAM >> PAGE_SHIFT) as u32;
    let frames = [0x410, 0x410, outside, u32::MAX, 0x411, 0x410, 0];
    assert_eq!(d.send_frames(INFLATE, &frames), (0, 0));
    assert!(!d.kept(0x410) && !d.kept(0x411) && d.kept(0x412));
    // A list that is not a whole number of frames: the tail is ignored.
    d.memory.write_obj(0x420u32, GuestAddress(LIST)).unwrap();
    assert_eq!(d.send(INFLATE, &[(LIST, 6, false)]), (0, 0));
    assert!(!d.kept(0x420));
}

#[test]
fn buffers_past_guest_memory_or_looping_release_nothing_and_come_back() {
    let mut d = Driver::new(BalloonOptions::default());
    d.memory.write_obj(0x430u32, GuestAddress(LIST)).unwrap();
    // A 4 GiB list from LIST, and one that starts past the end of RAM.
    assert_eq!(d.send(INFLATE, &[(LIST, u32::MAX, false)]), (0, 0));
    assert_eq!(
        d.send(INFLATE, &[(RAM - 4, 8, false), (LIST, 4, false)]),
        (0, 0)
    );
    assert!(d.kept(0x430), "a list partly outside RAM is not read");
    // A chain that loops back on itself ends; its frames are released.
    d.queues[INFLATE].write_chain(0, &[(LIST, 4, false), (LIST, 4, false)], true);
    assert_eq!(d.queues[INFLATE].submit(0), (0, 0));
    assert!(!d.kept(0x430));
    // A device-writable buffer holds no frames.
    d.memory.write_obj(0x431u32, GuestAddress(LIST)).unwrap();
    assert_eq!(d.send(INFLATE, &[(LIST, 4, true)]), (0, 0));
    assert!(d.kept(0x431));
    // The queue still works.
    assert_eq!(d.send_frames(INFLATE, &[0x432]), (0, 0));
    assert!(!d.kept(0x432));
}

#[test]
fn the_target_and_the_guests_size_meet_in_the_configuration_space() {
    let d = Driver::new(BalloonOptions::default());
    let handle = d.balloon.handle();
    assert_eq!((d.config_word(0), handle.actual()), (0, RAM as i64));
    handle.set_target(RAM / 4);
    assert_eq!(d.config_word(0), ((RAM * 3 / 4) >> PAGE_SHIFT) as u32);
    handle.set_target(RAM * 2);
    assert_eq!(d.config_word(0), 0, "a target past the RAM is all of it");
    let mut balloon = d.balloon;
    // The guest writes `actual` a byte at a time, then whole.
    balloon.write_config(4, &[0x00]);
    balloon.write_config(5, &[0x02]);
    balloon.write_config(4, &512u32.to_le_bytes());
    balloon.write_config(0, &[0xff; 4]); // num_pages is the host's
    balloon.write_config(64, &[1, 2, 3]); // past the end
    let expected = RAM as i64 - (512 << PAGE_SHIFT);
    assert_eq!(*d.changes.lock().unwrap(), [expected]);
    assert_eq!(handle.actual(), expected);
    // A guest may claim more than its RAM; QEMU reports it as it is.
    balloon.write_config(4, &u32::MAX.to_le_bytes());
    assert_eq!(
        handle.actual(),
        RAM as i64 - (i64::from(u32::MAX) << PAGE_SHIFT)
    );
    let mut bytes = [0u8; 4];
    balloon.read_config(0, &mut bytes);
    assert_eq!(bytes, [0; 4], "the target stays");
}

fn stats_entry(memory: &GuestMemoryMmap, at: u64, tag: u16, value: u64) {
    memory.write_obj(tag, GuestAddress(at)).unwrap();
    memory.write_obj(value, GuestAddress(at + 2)).unwrap();
}

#[test]
fn statistics_are_kept_and_their_buffer_returned_when_polled() {
    let mut d = Driver::new(BalloonOptions::default());
    let handle = d.balloon.handle();
    assert_eq!(handle.stats(), GuestStats::default());
    stats_entry(&d.memory, LIST, 4, 100 << 20);
    stats_entry(&d.memory, LIST + 10, 5, RAM);
    stats_entry(&d.memory, LIST + 20, 99, 1);
    d.queues[STATS].write_chain(0, &[(LIST, 30, false)], false);
    d.queues[STATS].offer(0);
    let short = Duration::from_millis(300);
    assert_eq!(d.queues[STATS].next_used(short), None, "the buffer is held");
    let stats = handle.stats();
    assert_eq!(stats.values[4], 100 << 20);
    assert_eq!(stats.values[5], RAM);
    assert_eq!(stats.values[0], u64::MAX);
    assert!(stats.last_update > 1_700_000_000, "{}", stats.last_update);
    handle.set_polling_interval(1);
    assert_eq!(handle.polling_interval(), 1);
    let polled = d.queues[STATS].next_used(Duration::from_secs(5));
    assert_eq!(polled, Some((0, 0)), "polling returns the buffer");
    // The guest answers with fresh statistics; with polling off, they stay.
    handle.set_polling_interval(0);
    stats_entry(&d.memory, LIST, 4, 50 << 20);
    d.queues[STATS].write_chain(0, &[(LIST, 10, false)], false);
    d.queues[STATS].offer(0);
    assert_eq!(d.queues[STATS].next_used(Duration::from_millis(1500)), None);
    assert_eq!(handle.stats().values[4], 50 << 20);
}

#[test]
fn reported_free_pages_are_released_unless_the_guest_poisons_them() {
    let mut d = Driver::new(BalloonOptions {
        free_page_reporting: true,
        deflate_on_oom: true,
        stats_polling_interval: 0,
    });
    assert_ne!(d.balloon.features() & 1 << F_REPORTING, 0);
    assert_ne!(d.balloon.features() & 1 << F_DEFLATE_ON_OOM, 0);
    let range = |page: u64, pages: u32| (page << PAGE_SHIFT, pages << PAGE_SHIFT, true);
    assert_eq!(
        d.send(REPORTING, &[range(0x600, 4), range(0x700, 1)]),
        (0, 0)
    );
    assert!(!d.kept(0x600) && !d.kept(0x603) && !d.kept(0x700));
    assert!(d.kept(0x604) && d.kept(0x701));
    // Outside RAM: nothing happens.
    assert_eq!(d.send(REPORTING, &[(RAM, 4096, true)]), (0, 0));
    d.balloon
        .write_config(POISON_VALUE as u64, &0xaau32.to_le_bytes());
    assert_eq!(d.send(REPORTING, &[range(0x710, 1)]), (0, 0));
    assert!(d.kept(0x710));
    assert!(d.changes.lock().unwrap().is_empty());
}

#[test]
fn without_reporting_the_device_has_three_queues() {
    let d = Driver::new(BalloonOptions::default());
    assert_eq!(d.balloon.queue_max_sizes(), &[128, 128, 128]);
    assert_eq!(d.balloon.features() & 1 << F_REPORTING, 0);
    assert_eq!(d.queues.len(), 3);
}
