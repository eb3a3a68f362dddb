//! Receive segment coalescing.  A host whose TCP sender has little queued
//! hands the tap its stream one segment per frame, and the guest's driver
//! then takes a frame, an interrupt's share of work and an skb for every
//! 1448 bytes.  Segments of one TCP/IPv4 connection that wait in the tap
//! one behind the other go to the guest instead as one frame marked for
//! segmentation offload (TCPV4, `gso_size` the segments' size), as the
//! host sends them when it has more queued: the guest's stack sees the
//! same bytes and can cut them back into the same segments.  What may join
//! follows Linux's GRO: the same headers apart from lengths, checksums, IP
//! id, sequence number and PSH; sequence numbers that follow on; every
//! segment but the last full-sized; nothing but ACK and PSH set; and
//! nothing after a PSH.  Only segments whose checksum the host left to be
//! done (NEEDS_CSUM, as its own stack sends them) join, so the joined frame
//! keeps that promise for all of them.

use virtio_bindings::virtio_net::{
    VIRTIO_NET_HDR_F_NEEDS_CSUM, VIRTIO_NET_HDR_GSO_NONE, VIRTIO_NET_HDR_GSO_TCPV4,
};

use super::tap::VNET_HDR_LEN;

/// Where the IPv4 header starts in a frame: after the virtio-net header
/// and an Ethernet header without VLAN tag.
const IP: usize = VNET_HDR_LEN + 14;
/// Where the TCP header starts: IPv4 headers with options do not join.
const TCP: usize = IP + 20;
/// The part of the virtio-net header that must match: all but num_buffers.
const VNET_COMPARED: usize = 10;
pub(super) const TCP_ACK: u8 = 0x10;
pub(super) const TCP_PSH: u8 = 0x08;
/// The IPv4 total length's limit.
const IP_MAX: usize = 0xffff;

/// A TCP segment that may join others, as read from the tap.
struct Segment {
    /// The virtio-net, Ethernet, IP and TCP headers' length.
    headers: usize,
    payload: usize,
    seq: u32,
    push: bool,
}

fn be16(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_be_bytes([bytes[at], bytes[at + 1]]))
}

fn le16(bytes: &[u8], at: usize) -> usize {
    usize::from(u16::from_le_bytes([bytes[at], bytes[at + 1]]))
}

/// `frame` as a segment that may join others, if it is one.
fn segment(frame: &[u8]) -> Option<Segment> {
    if frame.len() < TCP + 20
        || u32::from(frame[0]) != VIRTIO_NET_HDR_F_NEEDS_CSUM
        || u32::from(frame[1]) != VIRTIO_NET_HDR_GSO_NONE
        || le16(frame, 6) != TCP - VNET_HDR_LEN
        || le16(frame, 8) != 16
        || frame[IP - 2..IP] != [0x08, 0x00]
    {
        return None;
    }
    let ip = &frame[IP..];
    let whole = ip[0] == 0x45 && be16(ip, 6) & 0x3fff == 0 && ip[9] == 6;
    // Frames shorter than Ethernet's least are padded: they do not join.
    if !whole || be16(ip, 2) != frame.len() - IP {
        return None;
    }
    let tcp = &frame[TCP..];
    let headers = TCP + usize::from(tcp[12] >> 4) * 4;
    let flags = tcp[13];
    if headers < TCP + 20
        || headers >= frame.len()
        || flags & !(TCP_ACK | TCP_PSH) != 0
        || flags & TCP_ACK == 0
    {
        return None;
    }
    Some(Segment {
        headers,
        payload: frame.len() - headers,
        seq: u32::from_be_bytes([tcp[4], tcp[5], tcp[6], tcp[7]]),
        push: flags & TCP_PSH != 0,
    })
}

/// Whether `a` and `b`'s headers (`headers` long) agree in everything
/// that must not change along a joined frame.
fn same_connection(a: &[u8], b: &[u8], headers: usize) -> bool {
    let ranges = [
        0..VNET_COMPARED,
        VNET_HDR_LEN..IP + 2, // Ethernet; IP version, header length, TOS
        IP + 6..IP + 10,      // fragment flags, TTL, protocol
        IP + 12..TCP + 4,     // addresses, ports
        TCP + 8..TCP + 13,    // acknowledgement number, header length
        TCP + 14..TCP + 16,   // window
        TCP + 18..headers,    // urgent pointer, options
    ];
    ranges.into_iter().all(|r| a[r.clone()] == b[r])
        && a[TCP + 13] & !TCP_PSH == b[TCP + 13] & !TCP_PSH
}

/// A frame being joined: its first segment's size and headers, and where
/// it has got to.
pub(super) struct Joined {
    headers: usize,
    size: usize,
    last: usize,
    next_seq: u32,
    closed: bool,
    segments: usize,
}

impl Joined {
    /// Starts with `frame`, if segments may join it.
    pub fn start(frame: &[u8]) -> Option<Joined> {
        let first = segment(frame)?;
        Some(Joined {
            headers: first.headers,
            size: first.payload,
            last: first.payload,
            next_seq: first.seq.wrapping_add(first.payload as u32),
            closed: first.push,
            segments: 1,
        })
    }

    /// Whether another segment may still join.
    pub fn is_open(&self) -> bool {
        !self.closed && self.last == self.size
    }

    /// Appends `next`'s payload to the frame in `frame[..*len]` if it is
    /// the connection's next segment and fits; whether it did.
    pub fn append(&mut self, frame: &mut [u8], len: &mut usize, next: &[u8]) -> bool {
        let Some(segment) = segment(next) else {
            return false;
        };
        let end = *len + segment.payload;
        let fits = end <= frame.len() && end - IP <= IP_MAX;
        if !self.is_open()
            || !fits
            || segment.headers != self.headers
            || segment.seq != self.next_seq
            || segment.payload > self.size
            || !same_connection(&frame[..self.headers], next, self.headers)
        {
            return false;
        }
        frame[*len..end].copy_from_slice(&next[segment.headers..]);
        *len = end;
        self.last = segment.payload;
        self.next_seq = segment.seq.wrapping_add(segment.payload as u32);
        self.segments += 1;
        if segment.push {
            frame[TCP + 13] |= TCP_PSH;
            self.closed = true;
        }
        true
    }

    /// Writes the joined frame's headers: its lengths, the IP checksum,
    /// the TCP pseudo-header sum that NEEDS_CSUM wants, and the offload.
    pub fn finish(self, frame: &mut [u8], len: usize) {
        if self.segments == 1 {
            return;
        }
        let ip_len = (len - IP) as u16;
        frame[IP + 2..IP + 4].copy_from_slice(&ip_len.to_be_bytes());
        frame[IP + 10..IP + 12].fill(0);
        let ip_sum = !fold(sum(&frame[IP..TCP]));
        frame[IP + 10..IP + 12].copy_from_slice(&ip_sum.to_be_bytes());
        let tcp_len = (len - TCP) as u32;
        let pseudo = fold(sum(&frame[IP + 12..TCP]) + 6 + tcp_len);
        frame[TCP + 16..TCP + 18].copy_from_slice(&pseudo.to_be_bytes());
        frame[1] = VIRTIO_NET_HDR_GSO_TCPV4 as u8;
        frame[2..4].copy_from_slice(&((self.headers - VNET_HDR_LEN) as u16).to_le_bytes());
        frame[4..6].copy_from_slice(&(self.size as u16).to_le_bytes());
    }
}

/// The ones'-complement sum of `bytes` as big-endian 16-bit words, not
/// yet folded.
fn sum(bytes: &[u8]) -> u32 {
    bytes
        .chunks(2)
        .map(|word| (u32::from(word[0]) << 8) | u32::from(word.get(1).copied().unwrap_or(0)))
        .sum()
}

fn fold(mut sum: u32) -> u16 {
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub const MSS: usize = 1448;
    /// TCP options of twelve bytes, as timestamps take.
    const OPTIONS: [u8; 12] = [1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9];

    /// A segment from 10.0.0.1:5001 to 10.0.0.2:40000 of `payload` bytes
    /// (byte i of the stream is i as u8) at stream offset `offset`, as the
    /// tap hands it over (without num_buffers' meaning).
    pub fn tcp_segment(offset: usize, payload: usize, flags: u8) -> Vec<u8> {
        let mut frame = vec![0u8; VNET_HDR_LEN];
        frame[0] = VIRTIO_NET_HDR_F_NEEDS_CSUM as u8;
        frame[6..8].copy_from_slice(&34u16.to_le_bytes());
        frame[8..10].copy_from_slice(&16u16.to_le_bytes());
        frame.extend_from_slice(&[0x52, 0x54, 0, 0x12, 0x34, 0x56, 2, 0, 0, 0, 0, 1, 8, 0]);
        let total = (20 + 20 + OPTIONS.len() + payload) as u16;
        let mut ip = vec![0x45, 0];
        ip.extend_from_slice(&total.to_be_bytes());
        ip.extend_from_slice(&(offset as u16).to_be_bytes()); // id
        ip.extend_from_slice(&[0x40, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2]);
        let check = !fold(sum(&ip));
        ip[10..12].copy_from_slice(&check.to_be_bytes());
        frame.extend_from_slice(&ip);
        frame.extend_from_slice(&5001u16.to_be_bytes());
        frame.extend_from_slice(&40000u16.to_be_bytes());
        frame.extend_from_slice(&(1000 + offset as u32).to_be_bytes());
        frame.extend_from_slice(&77u32.to_be_bytes());
        frame.extend_from_slice(&[0x80, flags, 0x01, 0xf5, 0x12, 0x34, 0, 0]);
        frame.extend_from_slice(&OPTIONS);
        frame.extend((offset..offset + payload).map(|i| i as u8));
        frame
    }

    /// Joins `frames` in order as the NIC's thread does; the frames the
    /// guest would get.
    fn join_all(frames: &[Vec<u8>]) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        let mut rest = frames.iter();
        let mut next = rest.next().cloned();
        while let Some(first) = next.take() {
            let mut buffer = vec![0u8; 70_000];
            buffer[..first.len()].copy_from_slice(&first);
            let mut len = first.len();
            if let Some(mut joined) = Joined::start(&first) {
                for frame in rest.by_ref() {
                    if !joined.append(&mut buffer, &mut len, frame) {
                        next = Some(frame.clone());
                        break;
                    }
                }
                joined.finish(&mut buffer, len);
            } else {
                next = rest.next().cloned();
            }
            buffer.truncate(len);
            out.push(buffer);
        }
        out
    }

    #[test]
    fn consecutive_segments_join_into_one_offloaded_frame() {
        let mut frames: Vec<_> = (0..4).map(|i| tcp_segment(i * MSS, MSS, TCP_ACK)).collect();
        frames.push(tcp_segment(4 * MSS, 100, TCP_ACK | TCP_PSH));
        let joined = join_all(&frames);
        assert_eq!(joined.len(), 1);
        let frame = &joined[0];
        let headers = TCP + 20 + OPTIONS.len();
        assert_eq!(frame[1], VIRTIO_NET_HDR_GSO_TCPV4 as u8);
        assert_eq!(le16(frame, 2), headers - VNET_HDR_LEN, "hdr_len");
        assert_eq!(le16(frame, 4), MSS, "gso_size");
        assert_eq!(be16(frame, IP + 2), frame.len() - IP, "IP total length");
        assert_eq!(fold(sum(&frame[IP..TCP])), 0xffff, "IP checksum");
        assert_eq!(frame[TCP + 13], TCP_ACK | TCP_PSH);
        let pseudo = fold(sum(&frame[IP + 12..TCP]) + 6 + (frame.len() - TCP) as u32);
        assert_eq!(be16(frame, TCP + 16), usize::from(pseudo));
        let stream: Vec<u8> = (0..4 * MSS + 100).map(|i| i as u8).collect();
        assert_eq!(frame[headers..], stream);
        // The first segment's headers are otherwise kept.
        assert_eq!(frame[VNET_HDR_LEN..IP + 2], frames[0][VNET_HDR_LEN..IP + 2]);
        assert_eq!(frame[TCP..TCP + 13], frames[0][TCP..TCP + 13]);
    }

    #[test]
    fn what_does_not_follow_on_starts_a_frame_of_its_own() {
        let full = |i: usize| tcp_segment(i * MSS, MSS, TCP_ACK);
        let mut other_port = full(2);
        other_port[TCP + 1] ^= 1;
        let mut other_options = full(2);
        other_options[TCP + 30] ^= 1;
        let mut checksummed = full(2);
        checksummed[0] = 0;
        let cases = [
            ("a gap", full(3)),
            ("another connection", other_port),
            ("other options", other_options),
            ("a checksum already done", checksummed),
            ("a FIN", tcp_segment(2 * MSS, MSS, TCP_ACK | 0x01)),
            ("a longer segment", tcp_segment(2 * MSS, MSS + 1, TCP_ACK)),
        ];
        for (what, odd) in cases {
            let joined = join_all(&[full(0), full(1), odd.clone()]);
            assert_eq!(joined.len(), 2, "{what}");
            assert_eq!(le16(&joined[0], 4), MSS, "{what}");
            assert_eq!(joined[1], odd, "{what}: left as it came");
        }
    }

    #[test]
    fn nothing_follows_a_short_segment_or_a_push() {
        let short = join_all(&[
            tcp_segment(0, MSS, TCP_ACK),
            tcp_segment(MSS, 1000, TCP_ACK),
            tcp_segment(MSS + 1000, 1000, TCP_ACK),
        ]);
        assert_eq!(short.len(), 2);
        assert_eq!(short[0].len(), TCP + 32 + MSS + 1000);
        let pushed = join_all(&[
            tcp_segment(0, MSS, TCP_ACK),
            tcp_segment(MSS, MSS, TCP_ACK | TCP_PSH),
            tcp_segment(2 * MSS, MSS, TCP_ACK),
        ]);
        assert_eq!(pushed.len(), 2);
        assert_eq!(pushed[0][TCP + 13], TCP_ACK | TCP_PSH);
    }

    #[test]
    fn a_lone_segment_is_left_untouched() {
        let lone = tcp_segment(0, MSS, TCP_ACK);
        assert_eq!(join_all(std::slice::from_ref(&lone)), vec![lone]);
    }

    #[test]
    fn a_joined_frame_stays_within_ipv4s_length() {
        let frames: Vec<_> = (0..60)
            .map(|i| tcp_segment(i * MSS, MSS, TCP_ACK))
            .collect();
        let joined = join_all(&frames);
        assert_eq!(joined.len(), 2);
        assert!(joined[0].len() - IP <= IP_MAX);
        assert_eq!(joined[0].len() - (TCP + 32), 45 * MSS);
    }

    #[test]
    fn frames_that_are_not_tcp_over_ipv4_do_not_start_a_join() {
        let mut truncated = tcp_segment(0, MSS, TCP_ACK);
        truncated.truncate(TCP + 10);
        let mut ipv6 = tcp_segment(0, MSS, TCP_ACK);
        ipv6[IP - 1] = 0xdd;
        let mut options = tcp_segment(0, MSS, TCP_ACK);
        options[IP] = 0x46;
        let mut bad_offset = tcp_segment(0, MSS, TCP_ACK);
        bad_offset[TCP + 12] = 0x40;
        let mut syn = tcp_segment(0, MSS, TCP_ACK);
        syn[TCP + 13] |= 0x02;
        for frame in [truncated, ipv6, options, bad_offset, syn] {
            assert!(Joined::start(&frame).is_none());
        }
    }
}
