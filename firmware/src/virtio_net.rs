//! A virtio-net driver for the test guest, with just enough of a network
//! stack to be reached: it answers ARP requests for its address and ICMP
//! echo requests, and reports its link status.  For `bench net` it also
//! streams frames of its own EtherType out and counts them in.  Receive
//! buffers are whole frames (no mergeable buffers); nothing is offloaded.

use crate::virtio::{Device, Queue};

const NET_ID: u32 = 1;
const F_MAC: u32 = 5;
const F_STATUS: u32 = 16;
const F_CTRL_VQ: u32 = 17;
const F_CTRL_RX: u32 = 18;
const HEADER: usize = 12;
const RINGS: u64 = 0x80_0000;
/// Receive buffers, then the one transmit buffer.
const BUFFERS: u64 = 0x81_0000;
const BUFFER: u32 = 2048;
const RX_BUFFERS: u16 = 64;
/// Transmit descriptors: a stream keeps this many frames out at once.
const TX_SLOTS: u16 = 64;
const TX_BUFFER: u64 = BUFFERS + RX_BUFFERS as u64 * BUFFER as u64;
/// A control command: class, command, one byte of data, the answer.
const CTRL_BUFFER: u64 = TX_BUFFER + BUFFER as u64;
/// `bench net`'s frames: a local experimental EtherType, to a made-up
/// locally administered address.
const BENCH_ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const BENCH_DESTINATION: [u8; 6] = [0x02, 0, 0, 0, 0, 1];

pub struct Net {
    device: Device,
    rx: Queue,
    tx: Queue,
    ctrl: Option<Queue>,
    pub mac: [u8; 6],
    pub ip: [u8; 4],
}

fn bytes(address: u64, len: usize) -> &'static mut [u8] {
    // SAFETY: the buffers are RAM only this driver uses, one frame at a
    // time on one CPU.
    unsafe { core::slice::from_raw_parts_mut(address as *mut u8, len) }
}

/// The Internet checksum of `data`.
fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|pair| u32::from(u16::from_be_bytes([pair[0], *pair.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}

/// What a received frame was.
pub enum Seen {
    ArpReply,
    EchoReply,
    Other,
}

impl Net {
    /// The first NIC, with the control queue for rx modes when `control`.
    pub fn find(ip: [u8; 4], control: bool) -> Option<Net> {
        let device = Device::find(NET_ID)?;
        let wanted = match control {
            true => 1 << F_MAC | 1 << F_STATUS | 1 << F_CTRL_VQ | 1 << F_CTRL_RX,
            false => 1 << F_MAC | 1 << F_STATUS,
        };
        let accepted = device.negotiate(wanted)?;
        let mut rx = device.queue(0, RINGS, RX_BUFFERS)?;
        let tx = device.queue(1, RINGS + 0x4000, TX_SLOTS)?;
        let ctrl = match accepted & 1 << F_CTRL_VQ {
            0 => None,
            _ => Some(device.queue(2, RINGS + 0x8000, 8)?),
        };
        let mut mac = [0u8; 6];
        for (i, byte) in mac.iter_mut().enumerate() {
            *byte = device.config_byte(i as u64);
        }
        device.driver_ok();
        for head in 0..RX_BUFFERS {
            rx.post(head, BUFFERS + u64::from(head) * u64::from(BUFFER), BUFFER, true);
        }
        rx.notify();
        Some(Net {
            device,
            rx,
            tx,
            ctrl,
            mac,
            ip,
        })
    }

    /// Sets rx mode `command` (0 promiscuous, 1 all-multicast, ...) on or
    /// off; the device's answer (0 for OK), or `None` without the control
    /// queue.
    pub fn rx_mode(&mut self, command: u8, on: bool) -> Option<u8> {
        let ctrl = self.ctrl.as_mut()?;
        let buffer = bytes(CTRL_BUFFER, 4);
        buffer.copy_from_slice(&[0, command, u8::from(on), 0xff]);
        ctrl.transfer(&[(CTRL_BUFFER, 3, false), (CTRL_BUFFER + 3, 1, true)]);
        Some(bytes(CTRL_BUFFER, 4)[3])
    }

    pub fn link_up(&self) -> bool {
        self.device.config_byte(6) & 1 != 0
    }

    /// Handles a frame if one came; `None` when none did.
    pub fn poll(&mut self) -> Option<Seen> {
        let (head, len) = self.rx.next_used()?;
        let at = BUFFERS + u64::from(head) * u64::from(BUFFER);
        let len = (len as usize).min(BUFFER as usize);
        let frame = bytes(at + HEADER as u64, len.saturating_sub(HEADER));
        let seen = self.answer(frame);
        self.rx.post(head, at, BUFFER, true);
        self.rx.notify();
        Some(seen)
    }

    /// Waits for `count` frames of the bench's EtherType whose payload
    /// starts with `marker`, handing the buffers back a batch at a time.
    pub fn count_marked(&mut self, marker: u8, count: u64) {
        let mut seen = 0;
        while seen < count {
            let mut returned = false;
            while let Some((head, len)) = self.rx.next_used() {
                let at = BUFFERS + u64::from(head) * u64::from(BUFFER);
                let len = (len as usize).min(BUFFER as usize).saturating_sub(HEADER);
                let frame = bytes(at + HEADER as u64, len);
                if len > 14 && frame[12..14] == BENCH_ETHERTYPE && frame[14] == marker {
                    seen += 1;
                }
                self.rx.post(head, at, BUFFER, true);
                returned = true;
            }
            if returned {
                self.rx.notify();
            }
        }
    }

    /// Sends `count` frames of `len` bytes (from the Ethernet header on)
    /// of the bench's EtherType, marked 'D', keeping the transmit queue
    /// full; returns once the device has taken them all.
    pub fn stream(&mut self, count: u64, len: u32) {
        let len = len.clamp(60, BUFFER - HEADER as u32);
        let frame = bytes(TX_BUFFER, HEADER + len as usize);
        frame.fill(0);
        frame[HEADER..HEADER + 6].copy_from_slice(&BENCH_DESTINATION);
        frame[HEADER + 6..HEADER + 12].copy_from_slice(&self.mac);
        frame[HEADER + 12..HEADER + 14].copy_from_slice(&BENCH_ETHERTYPE);
        frame[HEADER + 14] = b'D';
        // Every descriptor points at the same frame: the device only reads.
        let mut free = [0u16; TX_SLOTS as usize];
        for (slot, head) in free.iter_mut().enumerate() {
            *head = slot as u16;
        }
        let (mut free_count, mut sent) = (usize::from(TX_SLOTS), 0);
        while sent < count || free_count < usize::from(TX_SLOTS) {
            while let Some((head, _)) = self.tx.next_used() {
                free[free_count] = head;
                free_count += 1;
            }
            let mut posted = false;
            while sent < count && free_count > 0 {
                free_count -= 1;
                self.tx.post(free[free_count], TX_BUFFER, HEADER as u32 + len, false);
                sent += 1;
                posted = true;
            }
            if posted {
                self.tx.notify();
            }
        }
    }

    fn answer(&mut self, frame: &[u8]) -> Seen {
        if frame.len() < 42 {
            return Seen::Other;
        }
        let ethertype = u16::from_be_bytes([frame[12], frame[13]]);
        let out = bytes(TX_BUFFER, BUFFER as usize);
        out[..HEADER].fill(0);
        let reply = &mut out[HEADER..];
        reply[..6].copy_from_slice(&frame[6..12]);
        reply[6..12].copy_from_slice(&self.mac);
        reply[12..14].copy_from_slice(&frame[12..14]);
        let len = match ethertype {
            // An ARP request for our address.
            0x0806 if frame[20..22] == [0, 1] && frame[38..42] == self.ip => {
                reply[14..22].copy_from_slice(&[0, 1, 8, 0, 6, 4, 0, 2]);
                reply[22..28].copy_from_slice(&self.mac);
                reply[28..32].copy_from_slice(&self.ip);
                reply[32..42].copy_from_slice(&frame[22..32]);
                42
            }
            // An ICMP echo request to our address.
            0x0800 if frame[23] == 1 && frame[30..34] == self.ip && frame.get(34) == Some(&8) => {
                let header_len = usize::from(frame[14] & 0xf) * 4;
                let total = usize::from(u16::from_be_bytes([frame[16], frame[17]]));
                if total < header_len + 8 || 14 + total > frame.len() {
                    return Seen::Other;
                }
                reply[14..14 + total].copy_from_slice(&frame[14..14 + total]);
                reply[26..30].copy_from_slice(&self.ip);
                reply[30..34].copy_from_slice(&frame[26..30]);
                reply[24..26].fill(0);
                let ip_sum = checksum(&reply[14..14 + header_len]);
                reply[24..26].copy_from_slice(&ip_sum.to_be_bytes());
                let icmp = 14 + header_len;
                reply[icmp] = 0;
                reply[icmp + 2..icmp + 4].fill(0);
                let icmp_sum = checksum(&reply[icmp..14 + total]);
                reply[icmp + 2..icmp + 4].copy_from_slice(&icmp_sum.to_be_bytes());
                14 + total
            }
            _ => return Seen::Other,
        };
        self.tx.transfer(&[(TX_BUFFER, (HEADER + len) as u32, false)]);
        match ethertype {
            0x0806 => Seen::ArpReply,
            _ => Seen::EchoReply,
        }
    }
}
