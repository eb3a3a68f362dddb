//! The NIC driven as a guest driver would, on a real tap whose other side
//! the test holds with a packet socket: frames both ways, with and without
//! mergeable buffers, the filter, the control queue's answers, and chains
//! no driver should send.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use devices::IrqLine;
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};

use super::pause::MAX_PAUSE;
use super::*;
use crate::testing::{Desc, DriverQueue};
use crate::{Activation, Interrupt, VirtioDevice};

const MEMORY: usize = 4 << 20;
const RINGS: u64 = 0x10_0000;
const BUFFERS: u64 = 0x20_0000;
const MAC: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
/// A local experimental EtherType, so the kernel's own frames on the tap
/// are told apart.
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];

/// The host's side of the tap: a packet socket bound to it.
struct Wire(OwnedFd);

fn unique_name() -> String {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    format!(
        "kvt{}n{}",
        std::process::id() % 100_000,
        NEXT.fetch_add(1, Ordering::SeqCst)
    )
}

fn os<T: PartialOrd + Default>(result: T) -> io::Result<T> {
    match result < T::default() {
        true => Err(io::Error::last_os_error()),
        false => Ok(result),
    }
}

impl Wire {
    /// Brings `name` up, without IPv6 (whose own frames would take the
    /// tests' buffers), and binds a packet socket to it.
    fn attach(name: &str) -> Wire {
        let _ = std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1");
        // SAFETY: socket() with constant arguments; the fd is checked.
        let control = os(unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM, 0) }).unwrap();
        // SAFETY: a fresh fd owned from here on.
        let control = unsafe { OwnedFd::from_raw_fd(control) };
        // SAFETY: ifreq is plain data; all zeroes is valid.
        let mut ifreq: libc::ifreq = unsafe { std::mem::zeroed() };
        for (to, from) in ifreq.ifr_name.iter_mut().zip(name.bytes()) {
            *to = from as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS/SIOCGIFINDEX read and write the
        // ifreq, which lives across the calls.
        let index = unsafe {
            os(libc::ioctl(
                control.as_raw_fd(),
                libc::SIOCGIFFLAGS,
                &mut ifreq,
            ))
            .unwrap();
            ifreq.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            os(libc::ioctl(
                control.as_raw_fd(),
                libc::SIOCSIFFLAGS,
                &mut ifreq,
            ))
            .unwrap();
            os(libc::ioctl(
                control.as_raw_fd(),
                libc::SIOCGIFINDEX,
                &mut ifreq,
            ))
            .unwrap();
            ifreq.ifr_ifru.ifru_ifindex
        };
        let protocol = (libc::ETH_P_ALL as u16).to_be();
        // SAFETY: socket() with constant arguments; the fd is checked.
        let fd = os(unsafe {
            libc::socket(
                libc::AF_PACKET,
                libc::SOCK_RAW | libc::SOCK_NONBLOCK,
                i32::from(protocol),
            )
        })
        .unwrap();
        // SAFETY: a fresh fd owned from here on.
        let fd = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_protocol = protocol;
        address.sll_ifindex = index;
        // SAFETY: bind reads `size_of::<sockaddr_ll>()` bytes of `address`.
        os(unsafe {
            libc::bind(
                fd.as_raw_fd(),
                (&address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        })
        .unwrap();
        Wire(fd)
    }

    /// From here on, frames sent start with a virtio-net header
    /// (PACKET_VNET_HDR): checksums and segmentation left to be done pass
    /// through the tap as the host's own stack sends them.
    fn send_with_vnet_headers(&self) {
        let on: libc::c_int = 1;
        // SAFETY: setsockopt reads one c_int at `on`'s address.
        os(unsafe {
            libc::setsockopt(
                self.0.as_raw_fd(),
                libc::SOL_PACKET,
                libc::PACKET_VNET_HDR,
                (&on as *const libc::c_int).cast(),
                std::mem::size_of::<libc::c_int>() as u32,
            )
        })
        .unwrap();
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: send reads frame.len() bytes of `frame`.
        let sent = unsafe { libc::send(self.0.as_raw_fd(), frame.as_ptr().cast(), frame.len(), 0) };
        assert_eq!(sent, frame.len() as isize, "{}", io::Error::last_os_error());
    }

    /// The next frame of the test's EtherType the host sees, if any.
    fn receive(&self, timeout: Duration) -> Option<Vec<u8>> {
        let deadline = Instant::now() + timeout;
        let mut buffer = vec![0u8; 70_000];
        while Instant::now() < deadline {
            // SAFETY: recv writes at most buffer.len() bytes into `buffer`.
            let len = unsafe {
                libc::recv(
                    self.0.as_raw_fd(),
                    buffer.as_mut_ptr().cast(),
                    buffer.len(),
                    0,
                )
            };
            if len >= 14 && buffer[12..14] == ETHERTYPE {
                return Some(buffer[..len as usize].to_vec());
            }
            if len < 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
        }
        None
    }
}

fn frame(destination: Mac, payload_len: usize) -> Vec<u8> {
    let mut frame = destination.to_vec();
    frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 1]);
    frame.extend_from_slice(&ETHERTYPE);
    frame.extend((0..payload_len).map(|i| i as u8));
    frame
}

struct Driver {
    memory: GuestMemoryMmap,
    net: Net,
    queues: Vec<DriverQueue>,
    wire: Wire,
    announced: Arc<Mutex<usize>>,
    tap: String,
    interrupt: Interrupt,
}

impl Driver {
    fn new(features: u64) -> Driver {
        let name = unique_name();
        let tap = Tap::open(&name).unwrap();
        let wire = Wire::attach(&name);
        let announced = Arc::new(Mutex::new(0));
        let count = announced.clone();
        let mut net = Net::new(tap, MAC, Box::new(move || *count.lock().unwrap() += 1));
        let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), MEMORY)]).unwrap();
        let interrupt = Interrupt::new(IrqLine::new(5).unwrap());
        let queues: Vec<DriverQueue> = (0..3)
            .map(|i| {
                DriverQueue::new(&memory, RINGS + 0x4000 * i as u64, 16)
                    .with_event_idx(features & 1 << VIRTIO_RING_F_EVENT_IDX != 0)
            })
            .collect();
        net.activate(Activation {
            memory: memory.clone(),
            queues: queues.iter().map(|q| q.queue(256)).collect(),
            notifiers: queues.iter().map(DriverQueue::notifier).collect(),
            accepted: net.features() & features,
            interrupt: interrupt.clone(),
        })
        .unwrap();
        Driver {
            memory,
            net,
            queues,
            wire,
            announced,
            tap: name,
            interrupt,
        }
    }

    /// Offers receive buffers of `size` bytes, heads 0.., one descriptor each.
    fn offer_rx(&mut self, count: u16, size: u32) {
        for i in 0..count {
            let at = BUFFERS + u64::from(i) * 0x1_0000;
            self.queues[0].write_chain(i, &[(at, size, true)], false);
            self.queues[0].offer(i);
        }
    }

    fn transmit(&mut self, chain: &[Desc]) -> (u32, u32) {
        self.queues[1].write_chain(0, chain, false);
        self.queues[1].submit(0)
    }

    fn control(&mut self, class: u8, command: u8, data: &[u8]) -> u8 {
        let mut bytes = vec![class, command];
        bytes.extend_from_slice(data);
        let (at, ack) = (BUFFERS, BUFFERS + 0x8000);
        self.memory.write_slice(&bytes, GuestAddress(at)).unwrap();
        self.memory.write_obj(0xeeu8, GuestAddress(ack)).unwrap();
        self.queues[2].write_chain(0, &[(at, bytes.len() as u32, false), (ack, 1, true)], false);
        assert_eq!(self.queues[2].submit(0).1, 1);
        self.memory.read_obj(GuestAddress(ack)).unwrap()
    }

    /// Waits for the next frame of the test's EtherType in the receive
    /// queue, offering each buffer used again; when it was seen.
    fn receive_ours(&mut self) -> Instant {
        loop {
            let (id, _) = self.queues[0]
                .next_used(Duration::from_secs(5))
                .expect("no frame");
            let at = BUFFERS + u64::from(id) * 0x1_0000;
            let ours = self.guest_bytes(at + VNET_HDR_LEN as u64 + 12, 2) == ETHERTYPE;
            self.queues[0].offer(id as u16);
            if ours {
                return Instant::now();
            }
        }
    }

    fn guest_bytes(&self, at: u64, len: usize) -> Vec<u8> {
        let mut bytes = vec![0; len];
        self.memory
            .read_slice(&mut bytes, GuestAddress(at))
            .unwrap();
        bytes
    }
}

const ALL: u64 = u64::MAX;

#[test]
fn frames_go_out_through_the_tap_with_their_header_stripped() {
    let mut d = Driver::new(ALL);
    let sent = frame([0x02, 0, 0, 0, 0, 9], 100);
    // The header in one descriptor, the frame in two.
    d.memory
        .write_slice(&[0; VNET_HDR_LEN], GuestAddress(BUFFERS))
        .unwrap();
    d.memory
        .write_slice(&sent, GuestAddress(BUFFERS + 0x100))
        .unwrap();
    let chain = [
        (BUFFERS, VNET_HDR_LEN as u32, false),
        (BUFFERS + 0x100, 20, false),
        (BUFFERS + 0x114, sent.len() as u32 - 20, false),
    ];
    assert_eq!(d.transmit(&chain), (0, 0));
    assert_eq!(d.wire.receive(Duration::from_secs(5)), Some(sent));
    // No frame at all, and one outside memory: returned, counted, not sent.
    assert_eq!(d.transmit(&[(BUFFERS, 4, false)]), (0, 0));
    assert_eq!(d.transmit(&[(MEMORY as u64 - 8, 64, false)]), (0, 0));
    assert_eq!(
        d.net.handle().counters().tx_errors.load(Ordering::SeqCst),
        2
    );
    assert_eq!(d.wire.receive(Duration::from_millis(200)), None);
}

#[test]
fn frames_come_in_across_mergeable_buffers_with_their_count() {
    let mut d = Driver::new(ALL);
    d.offer_rx(16, 512);
    let sent = frame(MAC, 1400);
    d.wire.send(&sent);
    // Skip the kernel's own frames (IPv6 and the like) to find ours.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (id, len) = d.queues[0]
            .next_used(Duration::from_secs(5))
            .expect("no frame");
        let at = BUFFERS + u64::from(id) * 0x1_0000;
        let header = d.guest_bytes(at, VNET_HDR_LEN + 14);
        if header[VNET_HDR_LEN + 12..] == ETHERTYPE {
            let buffers = u16::from_le_bytes([header[10], header[11]]);
            assert_eq!(buffers, 3, "12 + 1414 bytes in 512-byte buffers");
            assert_eq!(len, 512);
            let mut got = d.guest_bytes(at + VNET_HDR_LEN as u64, 512 - VNET_HDR_LEN);
            for _ in 1..buffers {
                let (id, len) = d.queues[0].next_used(Duration::from_secs(5)).unwrap();
                got.extend(d.guest_bytes(BUFFERS + u64::from(id) * 0x1_0000, len as usize));
            }
            assert_eq!(got, sent);
            break;
        }
        assert!(Instant::now() < deadline);
    }
}

#[test]
fn a_frame_waits_for_enough_mergeable_buffers_offered_one_at_a_time() {
    let mut d = Driver::new(ALL);
    let sent = frame(MAC, 1400);
    d.wire.send(&sent);
    // 12 + 1414 bytes need three of 512; with event indexes the driver
    // notifies only where the device asked it to.
    for i in 0..3 {
        std::thread::sleep(Duration::from_millis(50));
        let at = BUFFERS + u64::from(i) * 0x1_0000;
        d.queues[0].write_chain(i, &[(at, 512, true)], false);
        d.queues[0].offer(i);
    }
    let mut got = Vec::new();
    for _ in 0..3 {
        let (id, len) = d.queues[0]
            .next_used(Duration::from_secs(5))
            .expect("the frame did not come");
        got.extend(d.guest_bytes(BUFFERS + u64::from(id) * 0x1_0000, len as usize));
    }
    assert_eq!(u16::from_le_bytes([got[10], got[11]]), 3);
    assert_eq!(got[VNET_HDR_LEN..], sent);
}

#[test]
fn the_control_queue_sets_the_filter_and_refuses_bad_commands() {
    let mut d = Driver::new(ALL);
    let (ok, err) = (VIRTIO_NET_OK as u8, VIRTIO_NET_ERR as u8);
    assert_eq!(d.control(0, 0, &[0]), ok, "promiscuous off");
    assert_eq!(*d.announced.lock().unwrap(), 1);
    assert_eq!(d.control(0, 1, &[1]), ok, "all multicast");
    assert_eq!(*d.announced.lock().unwrap(), 1, "once until queried");
    let filter = d.net.handle().query_filter();
    assert!(!filter.promisc && filter.allmulti);
    assert_eq!(d.control(0, 0, &[]), err, "no data");
    assert_eq!(
        d.control(1, 0, &[0xff, 0xff, 0xff, 0xff]),
        err,
        "a table past its data"
    );
    assert_eq!(
        *d.announced.lock().unwrap(),
        1,
        "refused commands change nothing"
    );
    assert_eq!(d.control(2, 0, &5u16.to_le_bytes()), ok, "VLAN 5");
    assert_eq!(
        *d.announced.lock().unwrap(),
        2,
        "announced again after the query"
    );
    assert_eq!(d.control(77, 0, &[]), err);
    // No multicast: only its own address passes (and broadcasts).
    assert_eq!(d.control(0, 3, &[1]), ok);
    d.offer_rx(2, 0x8000);
    d.wire.send(&frame([0x02, 0, 0, 0, 0, 7], 50));
    d.wire.send(&frame(MAC, 50));
    let (id, len) = d.queues[0].next_used(Duration::from_secs(5)).unwrap();
    let got = d.guest_bytes(BUFFERS + u64::from(id) * 0x1_0000, len as usize);
    assert_eq!(got[VNET_HDR_LEN..VNET_HDR_LEN + 6], MAC);
}

#[test]
fn the_link_status_is_in_the_configuration_space() {
    let d = Driver::new(ALL);
    let mut config = [0u8; 8];
    d.net.read_config(0, &mut config);
    assert_eq!(config[..6], MAC);
    assert_eq!(config[6], VIRTIO_NET_S_LINK_UP as u8);
    d.net.handle().set_link(false);
    d.net.read_config(6, &mut config[..2]);
    assert_eq!(config[0], 0);
}

/// CPU time, in nanoseconds, of each of this process's NIC threads
/// (schedstat), by thread id.
fn nic_threads_cpu() -> std::collections::HashMap<String, u64> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return Default::default();
    };
    tasks
        .flatten()
        .filter(|task| {
            std::fs::read_to_string(task.path().join("comm"))
                .is_ok_and(|name| name.starts_with("virtio-net"))
        })
        .filter_map(|task| {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = stat.split_whitespace().next()?.parse::<u64>().ok()?;
            Some((task.file_name().to_string_lossy().into_owned(), ns))
        })
        .collect()
}

#[test]
fn a_tap_that_vanishes_is_logged_and_counted_and_the_nic_lives_on() {
    let mut d = Driver::new(ALL);
    d.offer_rx(4, 0x8000);
    let deleted = std::process::Command::new("ip")
        .args(["link", "del", &d.tap])
        .status()
        .unwrap();
    assert!(deleted.success());
    let sent = frame([0x02, 0, 0, 0, 0, 9], 100);
    d.memory
        .write_slice(&[0; VNET_HDR_LEN], GuestAddress(BUFFERS + 0x10_0000))
        .unwrap();
    d.memory
        .write_slice(&sent, GuestAddress(BUFFERS + 0x10_0000 + 0x100))
        .unwrap();
    let chain = [
        (BUFFERS + 0x10_0000, VNET_HDR_LEN as u32, false),
        (BUFFERS + 0x10_0100, sent.len() as u32, false),
    ];
    for _ in 0..3 {
        assert_eq!(d.transmit(&chain), (0, 0), "the buffer comes back");
    }
    let handle = d.net.handle();
    assert_eq!(handle.counters().tx_errors.load(Ordering::SeqCst), 3);
    // The thread waits rather than spins on the dead tap.
    let before = nic_threads_cpu();
    std::thread::sleep(Duration::from_millis(500));
    // Other tests' NIC threads come and go meanwhile; a spinning thread
    // runs through both readings.
    let spent: u64 = nic_threads_cpu()
        .iter()
        .filter_map(|(tid, now)| Some(now - before.get(tid)?))
        .sum();
    assert!(spent < 100_000_000, "NIC threads used {spent} ns in 0.5 s");
}

#[test]
fn frames_wait_while_the_guest_answers_a_receive_interrupt() {
    use virtio_bindings::virtio_mmio::VIRTIO_MMIO_INT_VRING;
    // Without event indexes every batch handed over raises the line.
    let mut d = Driver::new(ALL & !(1 << VIRTIO_RING_F_EVENT_IDX));
    d.offer_rx(16, 2048);
    // A guest that takes 6 ms to acknowledge each interrupt.
    for _ in 0..6 {
        d.wire.send(&frame(MAC, 100));
        d.receive_ours();
        std::thread::sleep(Duration::from_millis(6));
        d.interrupt.acknowledge(VIRTIO_MMIO_INT_VRING);
    }
    assert!(d.interrupt.response_time() >= MAX_PAUSE);
    // The next frame raises an interrupt; the one after it waits the
    // longest pause before it is handed over, and is not lost.
    let sent = Instant::now();
    d.wire.send(&frame(MAC, 100));
    d.receive_ours();
    d.wire.send(&frame(MAC, 100));
    let waited = d.receive_ours() - sent;
    assert!(waited >= MAX_PAUSE, "{waited:?}");
    assert!(waited < Duration::from_secs(1), "{waited:?}");
}

#[test]
fn segments_waiting_in_the_tap_reach_the_guest_as_one_offloaded_frame() {
    use super::coalesce::tests::{tcp_segment, MSS};
    use super::coalesce::{TCP_ACK as ACK, TCP_PSH as PSH};
    let mut d = Driver::new(ALL);
    d.wire.send_with_vnet_headers();
    // The packet socket's header is virtio-net's without num_buffers.
    let send = |wire: &Wire, segment: Vec<u8>| {
        wire.send(&[&segment[..10], &segment[VNET_HDR_LEN..]].concat())
    };
    // The first segment finds no buffers; the rest queue in the tap behind it.
    send(&d.wire, tcp_segment(0, MSS, ACK));
    std::thread::sleep(Duration::from_millis(100));
    for i in 1..5 {
        let flags = if i == 4 { ACK | PSH } else { ACK };
        send(&d.wire, tcp_segment(i * MSS, MSS, flags));
    }
    d.offer_rx(8, 0x1_0000);
    let mut frames = Vec::new();
    while frames
        .iter()
        .map(|(_, payload): &(Vec<u8>, Vec<u8>)| payload.len())
        .sum::<usize>()
        < 5 * MSS
    {
        let (id, len) = d.queues[0]
            .next_used(Duration::from_secs(5))
            .expect("the segments did not all come");
        let frame = d.guest_bytes(BUFFERS + u64::from(id) * 0x1_0000, len as usize);
        d.queues[0].offer(id as u16);
        // Only frames of the test's connection (port 5001).
        if frame.len() > 60 && frame[VNET_HDR_LEN + 34..VNET_HDR_LEN + 36] == 5001u16.to_be_bytes()
        {
            let payload = frame[VNET_HDR_LEN + 66..].to_vec();
            frames.push((frame[..VNET_HDR_LEN].to_vec(), payload));
        }
    }
    let stream: Vec<u8> = (0..5 * MSS).map(|i| i as u8).collect();
    assert_eq!(
        frames
            .iter()
            .flat_map(|(_, payload)| payload.clone())
            .collect::<Vec<u8>>(),
        stream
    );
    let gso = |header: &[u8]| (header[1], u16::from_le_bytes([header[4], header[5]]));
    assert_eq!(
        frames.len(),
        2,
        "the first alone, then the four that waited"
    );
    assert_eq!(gso(&frames[0].0), (0, 0));
    assert_eq!(
        gso(&frames[1].0),
        (VIRTIO_NET_HDR_GSO_TCPV4 as u8, MSS as u16)
    );
}
