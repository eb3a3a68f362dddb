//! The block device driven as a guest driver would: descriptor chains
//! written into guest memory, the queue notified, the used ring read back.
//! Well-formed requests of every type, and chains no driver should make.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devices::IrqLine;
use virtio_bindings::virtio_ring::{VRING_DESC_F_INDIRECT, VRING_DESC_F_NEXT, VRING_DESC_F_WRITE};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::*;
use crate::{Activation, Interrupt, VirtioDevice};

const MEMORY: u64 = 0x10_0000;
const QUEUE: u16 = 16;
const DESC: u64 = 0x1000;
const AVAIL: u64 = 0x2000;
const USED: u64 = 0x3000;
const INDIRECT: u64 = 0x4000;
const HEADER: u64 = 0x5000;
const STATUS: u64 = 0x5100;
const DATA: u64 = 0x8000;
const IMAGE: usize = 64 * 1024;

/// What the device reported.
#[derive(Default)]
struct Reported(Mutex<Vec<IoError>>);

impl IoErrorSink for Reported {
    fn io_error(&self, error: &IoError) {
        self.0.lock().unwrap().push(error.clone());
    }
}

/// One descriptor: address, length, device-writable.
type Desc = (u64, u32, bool);

struct Driver {
    memory: GuestMemoryMmap,
    device: Block,
    drive: Arc<Drive>,
    notifier: EventFd,
    reported: Arc<Reported>,
    path: PathBuf,
    avail_idx: u16,
    used_seen: u16,
}

/// An image whose every byte is its offset's low byte plus its sector.
fn pattern(offset: usize) -> u8 {
    (offset as u8).wrapping_add((offset / 512) as u8)
}

fn image_path() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let dir = std::env::temp_dir().join(format!("kvmon-blk-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(format!("{}.img", NEXT.fetch_add(1, Ordering::SeqCst)))
}

impl Driver {
    fn new(configure: impl FnOnce(&mut DriveOptions)) -> Driver {
        Driver::with_image(IMAGE, configure)
    }

    /// A driver on an image of `len` bytes of the pattern.
    fn with_image(len: usize, configure: impl FnOnce(&mut DriveOptions)) -> Driver {
        let path = image_path();
        let image: Vec<u8> = (0..len).map(pattern).collect();
        std::fs::write(&path, image).unwrap();
        let mut options = DriveOptions::new(&path);
        options.id = "disk0".into();
        options.node_name = "node0".into();
        configure(&mut options);
        let drive = Arc::new(Drive::open(options).unwrap());
        let reported = Arc::new(Reported::default());
        let mut device = Block::new(
            drive.clone(),
            reported.clone(),
            "/machine/peripheral/vd0".into(),
        );
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY as usize)]).unwrap();
        let mut queue = Queue::new(256).unwrap();
        queue.set_size(QUEUE);
        queue.set_desc_table_address(Some(DESC as u32), Some(0));
        queue.set_avail_ring_address(Some(AVAIL as u32), Some(0));
        queue.set_used_ring_address(Some(USED as u32), Some(0));
        queue.set_ready(true);
        let notifier = EventFd::new(0).unwrap();
        device
            .activate(Activation {
                memory: memory.clone(),
                queues: vec![queue],
                notifiers: vec![notifier.try_clone().unwrap()],
                accepted: device.features(),
                interrupt: Interrupt::new(IrqLine::new(5).unwrap()),
            })
            .unwrap();
        Driver {
            memory,
            device,
            drive,
            notifier,
            reported,
            path,
            avail_idx: 0,
            used_seen: 0,
        }
    }

    /// Writes a chain into descriptor table `table` from entry 0 and
    /// returns its head.
    fn write_chain(&self, table: u64, chain: &[Desc], loop_back: bool) {
        for (i, &(addr, len, writable)) in chain.iter().enumerate() {
            let last = i + 1 == chain.len();
            let mut flags = if writable { VRING_DESC_F_WRITE } else { 0 } as u16;
            let next = if last && loop_back { 0 } else { i as u16 + 1 };
            if !last || loop_back {
                flags |= VRING_DESC_F_NEXT as u16;
            }
            let at = table + 16 * i as u64;
            self.memory.write_obj(addr, GuestAddress(at)).unwrap();
            self.memory.write_obj(len, GuestAddress(at + 8)).unwrap();
            self.memory.write_obj(flags, GuestAddress(at + 12)).unwrap();
            self.memory.write_obj(next, GuestAddress(at + 14)).unwrap();
        }
    }

    /// Makes descriptor 0 available and notifies; returns (used id, len).
    fn submit(&mut self) -> (u32, u32) {
        let slot = AVAIL + 4 + 2 * u64::from(self.avail_idx % QUEUE);
        self.memory.write_obj(0u16, GuestAddress(slot)).unwrap();
        self.avail_idx = self.avail_idx.wrapping_add(1);
        self.memory
            .write_obj(self.avail_idx, GuestAddress(AVAIL + 2))
            .unwrap();
        self.notifier.write(1).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let used: u16 = self.memory.read_obj(GuestAddress(USED + 2)).unwrap();
            if used != self.used_seen {
                break;
            }
            assert!(Instant::now() < deadline, "the device did not answer");
            std::thread::sleep(Duration::from_millis(1));
        }
        let slot = USED + 4 + 8 * u64::from(self.used_seen % QUEUE);
        self.used_seen = self.used_seen.wrapping_add(1);
        (
            self.memory.read_obj(GuestAddress(slot)).unwrap(),
            self.memory.read_obj(GuestAddress(slot + 4)).unwrap(),
        )
    }

    /// A request: header, `data`, status; returns (status, used length).
    fn request(&mut self, kind: u32, sector: u64, data: &[Desc]) -> (u8, u32) {
        self.write_header(kind, sector);
        let mut chain = vec![(HEADER, 16, false)];
        chain.extend_from_slice(data);
        chain.push((STATUS, 1, true));
        self.write_chain(DESC, &chain, false);
        self.memory.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
        let (id, len) = self.submit();
        assert_eq!(id, 0);
        (self.memory.read_obj(GuestAddress(STATUS)).unwrap(), len)
    }

    fn write_header(&self, kind: u32, sector: u64) {
        self.memory.write_obj(kind, GuestAddress(HEADER)).unwrap();
        self.memory
            .write_obj(0u32, GuestAddress(HEADER + 4))
            .unwrap();
        self.memory
            .write_obj(sector, GuestAddress(HEADER + 8))
            .unwrap();
    }

    /// A discard or write-zeroes request of one range.
    fn range(&mut self, kind: u32, sector: u64, sectors: u32, flags: u32) -> u8 {
        self.memory.write_obj(sector, GuestAddress(DATA)).unwrap();
        self.memory
            .write_obj(sectors, GuestAddress(DATA + 8))
            .unwrap();
        self.memory
            .write_obj(flags, GuestAddress(DATA + 12))
            .unwrap();
        self.request(kind, sector, &[(DATA, 16, false)]).0
    }

    fn guest_bytes(&self, at: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0u8; len];
        self.memory
            .read_slice(&mut bytes, GuestAddress(at))
            .unwrap();
        bytes
    }

    fn image(&self) -> Vec<u8> {
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        self.device.reset();
        let _ = std::fs::remove_file(&self.path);
    }
}

const OK: u8 = VIRTIO_BLK_S_OK as u8;
const IOERR: u8 = VIRTIO_BLK_S_IOERR as u8;
const UNSUPP: u8 = VIRTIO_BLK_S_UNSUPP as u8;

#[test]
fn reads_fill_scattered_buffers_from_the_image() {
    let mut d = Driver::new(|_| {});
    let (status, len) = d.request(
        VIRTIO_BLK_T_IN,
        3,
        &[(DATA, 512, true), (DATA + 0x1000, 1024, true)],
    );
    assert_eq!((status, len), (OK, 1536 + 1));
    let expected: Vec<u8> = (3 * 512..6 * 512).map(pattern).collect();
    assert_eq!(d.guest_bytes(DATA, 512), expected[..512]);
    assert_eq!(d.guest_bytes(DATA + 0x1000, 1024), expected[512..]);
    let stats = d.drive.stats().clone();
    assert_eq!((stats.read.bytes, stats.read.operations), (1536, 1));
}

#[test]
fn writes_reach_the_image_and_flushes_succeed() {
    let mut d = Driver::new(|_| {});
    d.memory
        .write_slice(&[0xab; 1024], GuestAddress(DATA))
        .unwrap();
    let (status, len) = d.request(VIRTIO_BLK_T_OUT, 10, &[(DATA, 1024, false)]);
    assert_eq!((status, len), (OK, 1));
    assert_eq!(d.request(VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
    let image = d.image();
    assert_eq!(&image[10 * 512..12 * 512], &[0xab; 1024][..]);
    assert_eq!(image[12 * 512], pattern(12 * 512), "nothing past the write");
    let stats = d.drive.stats().clone();
    assert_eq!((stats.write.bytes, stats.write.operations), (1024, 1));
    assert_eq!(stats.flush.operations, 1);
    assert_eq!(stats.wr_highest_offset, 12 * 512);
}

#[test]
fn get_id_returns_the_serial_number() {
    let mut d = Driver::new(|o| o.serial = Some("KVMON-SERIAL".into()));
    let (status, len) = d.request(VIRTIO_BLK_T_GET_ID, 0, &[(DATA, 20, true)]);
    assert_eq!((status, len), (OK, 21));
    assert_eq!(&d.guest_bytes(DATA, 20)[..13], b"KVMON-SERIAL\0");
}

#[test]
fn write_zeroes_and_discard_zero_the_range() {
    let mut d = Driver::new(|o| o.discard = true);
    assert_eq!(d.range(VIRTIO_BLK_T_WRITE_ZEROES, 2, 2, 0), OK);
    assert_eq!(d.range(VIRTIO_BLK_T_DISCARD, 8, 8, 0), OK);
    let image = d.image();
    assert_eq!(image.len(), IMAGE, "the size stays");
    assert!(image[2 * 512..4 * 512].iter().all(|&b| b == 0));
    assert!(image[8 * 512..16 * 512].iter().all(|&b| b == 0));
    assert_eq!(image[4 * 512 + 1], pattern(4 * 512 + 1));
    // Flags other than unmap, or unmap on a discard, are not supported.
    assert_eq!(d.range(VIRTIO_BLK_T_WRITE_ZEROES, 2, 2, 2), UNSUPP);
    assert_eq!(d.range(VIRTIO_BLK_T_DISCARD, 2, 2, 1), UNSUPP);
    // Past the end of the disk.
    assert_eq!(d.range(VIRTIO_BLK_T_DISCARD, 127, 2, 0), IOERR);
    let stats = d.drive.stats().clone();
    assert_eq!(stats.unmap.operations, 1);
    assert_eq!(stats.unmap.invalid, 1);
    assert_eq!(stats.write.bytes, 1024);
}

#[test]
fn requests_outside_the_disk_or_of_partial_sectors_fail_as_invalid() {
    let mut d = Driver::new(|_| {});
    let sectors = (IMAGE / 512) as u64;
    assert_eq!(
        d.request(VIRTIO_BLK_T_IN, sectors - 1, &[(DATA, 1024, true)])
            .0,
        IOERR
    );
    assert_eq!(
        d.request(VIRTIO_BLK_T_IN, u64::MAX / 256, &[(DATA, 512, true)])
            .0,
        IOERR
    );
    assert_eq!(
        d.request(VIRTIO_BLK_T_OUT, 0, &[(DATA, 100, false)]).0,
        IOERR
    );
    assert_eq!(d.request(VIRTIO_BLK_T_IN, 0, &[(DATA, 0, true)]).0, OK);
    let stats = d.drive.stats().clone();
    assert_eq!((stats.read.invalid, stats.write.invalid), (2, 1));
    assert_eq!(d.image(), (0..IMAGE).map(pattern).collect::<Vec<_>>());
}

#[test]
fn an_image_of_part_of_a_sector_ends_in_a_whole_sector_read_as_zeroes_past_the_file() {
    for cache in ["writeback", "none"] {
        let mut d = Driver::with_image(IMAGE + 100, |o| {
            o.cache = Cache::from_mode(cache).unwrap();
        });
        let mut capacity = [0u8; 8];
        d.device.read_config(0, &mut capacity);
        let sectors = (IMAGE / 512) as u64 + 1;
        assert_eq!(u64::from_le_bytes(capacity), sectors, "cache={cache}");
        d.memory
            .write_slice(&[0xee; 1024], GuestAddress(DATA))
            .unwrap();
        let (status, len) = d.request(VIRTIO_BLK_T_IN, sectors - 2, &[(DATA, 1024, true)]);
        assert_eq!((status, len), (OK, 1025), "cache={cache}");
        let expected: Vec<u8> = (IMAGE - 512..IMAGE + 100)
            .map(pattern)
            .chain([0; 412])
            .collect();
        assert_eq!(d.guest_bytes(DATA, 1024), expected, "cache={cache}");
    }
}

#[test]
fn unknown_request_types_are_unsupported() {
    let mut d = Driver::new(|_| {});
    assert_eq!(d.request(99, 0, &[]).0, UNSUPP);
    assert_eq!(
        d.request(VIRTIO_BLK_T_SECURE_ERASE, 0, &[(DATA, 16, true)])
            .0,
        UNSUPP
    );
}

#[test]
fn buffers_outside_guest_memory_or_of_huge_length_fail() {
    let mut d = Driver::new(|_| {});
    for data in [
        (MEMORY - 256, 512, true),
        (u64::MAX - 511, 512, true),
        (DATA, u32::MAX - 64, true),
    ] {
        assert_eq!(d.request(VIRTIO_BLK_T_IN, 0, &[data]).0, IOERR, "{data:?}");
    }
    // A chain longer than 4 GiB ends before the descriptor that overflows
    // it, so it has no status byte; it comes back all the same.
    assert_eq!(
        d.request(VIRTIO_BLK_T_IN, 0, &[(DATA, u32::MAX, true)]),
        (0xff, 0)
    );
    assert_eq!(
        d.request(VIRTIO_BLK_T_OUT, 0, &[(MEMORY, 512, false)]).0,
        IOERR
    );
    // A header outside memory: the status still says so.
    d.write_chain(DESC, &[(MEMORY + 16, 16, false), (STATUS, 1, true)], false);
    d.memory.write_obj(0xffu8, GuestAddress(STATUS)).unwrap();
    assert_eq!(d.submit(), (0, 1));
    assert_eq!(
        d.memory.read_obj::<u8>(GuestAddress(STATUS)).unwrap(),
        IOERR
    );
    // A status outside memory: the chain is returned all the same.
    d.write_header(VIRTIO_BLK_T_FLUSH, 0);
    d.write_chain(DESC, &[(HEADER, 16, false), (MEMORY, 1, true)], false);
    assert_eq!(d.submit(), (0, 1));
    // The device still works.
    assert_eq!(d.request(VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK);
}

#[test]
fn malformed_and_looping_chains_are_returned_without_harm() {
    let mut d = Driver::new(|_| {});
    // No byte to write a status into.
    d.write_header(VIRTIO_BLK_T_IN, 0);
    d.write_chain(DESC, &[(HEADER, 16, false), (DATA, 512, false)], false);
    assert_eq!(d.submit(), (0, 0));
    // A header split over two descriptors is fine; a short one is not.
    d.write_chain(
        DESC,
        &[
            (HEADER, 4, false),
            (HEADER + 4, 12, false),
            (STATUS, 1, true),
        ],
        false,
    );
    d.write_header(VIRTIO_BLK_T_FLUSH, 0);
    d.submit();
    assert_eq!(d.memory.read_obj::<u8>(GuestAddress(STATUS)).unwrap(), OK);
    d.write_chain(DESC, &[(HEADER, 8, false), (STATUS, 1, true)], false);
    d.submit();
    assert_eq!(
        d.memory.read_obj::<u8>(GuestAddress(STATUS)).unwrap(),
        IOERR
    );
    // A chain whose last descriptor points back at its first.
    d.write_header(VIRTIO_BLK_T_IN, 0);
    d.write_chain(DESC, &[(HEADER, 16, false), (DATA, 512, true)], true);
    d.submit();
    // A next index past the queue's size.
    d.write_chain(DESC, &[(HEADER, 16, false)], false);
    d.memory
        .write_obj(VRING_DESC_F_NEXT as u16, GuestAddress(DESC + 12))
        .unwrap();
    d.memory.write_obj(500u16, GuestAddress(DESC + 14)).unwrap();
    assert_eq!(d.submit(), (0, 0));
    assert_eq!(d.request(VIRTIO_BLK_T_FLUSH, 0, &[]).0, OK, "still works");
}

#[test]
fn indirect_chains_carry_requests() {
    let mut d = Driver::new(|_| {});
    d.write_header(VIRTIO_BLK_T_IN, 1);
    d.write_chain(
        INDIRECT,
        &[(HEADER, 16, false), (DATA, 512, true), (STATUS, 1, true)],
        false,
    );
    d.memory.write_obj(INDIRECT, GuestAddress(DESC)).unwrap();
    d.memory.write_obj(48u32, GuestAddress(DESC + 8)).unwrap();
    d.memory
        .write_obj(VRING_DESC_F_INDIRECT as u16, GuestAddress(DESC + 12))
        .unwrap();
    assert_eq!(d.submit(), (0, 513));
    assert_eq!(d.memory.read_obj::<u8>(GuestAddress(STATUS)).unwrap(), OK);
    let expected: Vec<u8> = (512..1024).map(pattern).collect();
    assert_eq!(d.guest_bytes(DATA, 512), expected);
}

#[test]
fn a_read_only_drive_refuses_writes_and_reports_them() {
    let mut d = Driver::new(|o| o.read_only = true);
    assert_ne!(d.device.features() & 1 << VIRTIO_BLK_F_RO, 0);
    d.memory
        .write_slice(&[0xab; 512], GuestAddress(DATA))
        .unwrap();
    assert_eq!(
        d.request(VIRTIO_BLK_T_OUT, 0, &[(DATA, 512, false)]).0,
        IOERR
    );
    assert_eq!(d.request(VIRTIO_BLK_T_IN, 0, &[(DATA, 512, true)]).0, OK);
    assert_eq!(d.image()[..512], (0..512).map(pattern).collect::<Vec<_>>());
    let reported = d.reported.0.lock().unwrap().clone();
    assert_eq!(reported.len(), 1);
    assert!(reported[0].write);
    assert_eq!(reported[0].action, ErrorAction::Report);
    assert_eq!(reported[0].device, "disk0");
    assert_eq!(d.drive.stats().write.failed, 1);
}

#[test]
fn the_configuration_space_describes_the_disk() {
    let d = Driver::new(|o| o.discard = true);
    let mut config = [0u8; 64];
    d.device.read_config(0, &mut config);
    let word = |at: usize| u32::from_le_bytes(config[at..at + 4].try_into().unwrap());
    assert_eq!(u64::from_le_bytes(config[..8].try_into().unwrap()), 128);
    assert_eq!(word(12), 254, "seg_max");
    assert_eq!(word(20), 512, "blk_size");
    assert_eq!((word(40), word(52)), (1, 1), "one range per request");
    assert_eq!(config[56], 1, "write zeroes may unmap");
    assert_eq!(&config[60..], &[0; 4]);
    d.drive.resize(IMAGE as u64 * 2).unwrap();
    let mut capacity = [0u8; 8];
    d.device.read_config(0, &mut capacity);
    assert_eq!(u64::from_le_bytes(capacity), 256);
    let mut beyond = [0xffu8; 4];
    d.device.read_config(u64::MAX, &mut beyond);
    assert_eq!(beyond, [0; 4]);
}
