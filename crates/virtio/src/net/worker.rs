//! A NIC's thread while the driver runs it.  It waits for the queues'
//! notifiers and the tap, and moves frames: from the tap through the
//! receive filter into the guest's receive buffers (spread over several
//! when they are mergeable; in batches while the guest answers an
//! interrupt; TCP segments that wait together joined into one), and from
//! the transmit queue to the tap straight out of guest memory.  It answers
//! the control queue too.  A full tap or a guest without buffers makes it
//! wait, never drop what the guest sent; what the tap refuses is counted
//! and logged.

use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::sync::atomic::{fence, Ordering};
use std::time::Instant;

use virtio_bindings::virtio_net::*;
use virtio_queue::{DescriptorChain, Queue, QueueOwnedT, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::coalesce::Joined;
use super::ctrl::{self, Effect};
use super::pause::ReceivePause;
use super::tap::{Tap, VNET_HDR_LEN};
use super::used_together::{add_used_together, UsedSignal};
use super::{NetCounters, NetHandle};
use crate::device::{Activation, Interrupt};
use crate::polling::AdaptivePoll;
use crate::segments::{Segment, Segments};
use crate::wait_for;

/// The most a frame from the tap can take: the header, 64 KiB of
/// segmentation offload, and room (QEMU's NET_BUFSIZE).
const FRAME_BUFFER: usize = 4096 + 65536;
/// An Ethernet header: the least a frame holds.
const ETHERNET_HEADER: usize = 14;
/// Where the header's `num_buffers` is.
const NUM_BUFFERS: usize = 10;

type Chain<'m> = DescriptorChain<&'m GuestMemoryMmap>;

pub(super) struct Worker {
    memory: GuestMemoryMmap,
    tap: Tap,
    handle: NetHandle,
    interrupt: Interrupt,
    rx: Queue,
    /// Where the receive queue last considered an interrupt: its elements
    /// go in several at a time (add_used_together).
    rx_signal: UsedSignal,
    tx: Queue,
    ctrl: Option<Queue>,
    /// Receive, transmit and control, as the queues.
    notifiers: Vec<EventFd>,
    mergeable: bool,
    /// A frame read from the tap, waiting for receive buffers (its length;
    /// 0 for none).
    frame: Vec<u8>,
    pending: usize,
    /// The guest has no receive buffers: the tap is not read meanwhile.
    starved: bool,
    /// Nor while the guest is answering a receive interrupt.
    pause: ReceivePause,
    /// The tap took no more: transmitting waits until it is writable.
    blocked: bool,
    /// Whether segments waiting in the tap may join (coalesce.rs): the
    /// guest takes TCP segmentation offload into mergeable buffers.
    joins: bool,
    /// A frame read from the tap that did not join the one before it,
    /// kept for the next delivery; `held` bytes of it.
    held_frame: Vec<u8>,
    held: usize,
    /// Transmit errors logged, so a vanished tap does not flood the log.
    errors_logged: u64,
    /// How long to watch the transmit ring, notifications off, before
    /// sleeping; and when the last watch began that saw nothing.
    tx_polling: AdaptivePoll,
    tx_idle_since: Option<Instant>,
    /// The tap's interface was deleted: the thread no longer waits on it
    /// (it would report an error at once, forever); what the guest sends
    /// is counted as refused.
    tap_gone: bool,
}

/// Whether the guest's receive offloads let segments join.
fn joins(offloads: u64) -> bool {
    let wanted = 1 << VIRTIO_NET_F_GUEST_CSUM | 1 << VIRTIO_NET_F_GUEST_TSO4;
    offloads & wanted == wanted
}

/// The tap offloads the guest's receive features allow.
fn tap_offloads(guest: u64) -> libc::c_uint {
    [
        (VIRTIO_NET_F_GUEST_CSUM, libc::TUN_F_CSUM),
        (VIRTIO_NET_F_GUEST_TSO4, libc::TUN_F_TSO4),
        (VIRTIO_NET_F_GUEST_TSO6, libc::TUN_F_TSO6),
        (VIRTIO_NET_F_GUEST_ECN, libc::TUN_F_TSO_ECN),
    ]
    .into_iter()
    .filter(|(feature, _)| guest & 1 << feature != 0)
    .fold(0, |offloads, (_, flag)| offloads | flag)
}

impl Worker {
    pub fn new(activation: Activation, tap: Tap, handle: NetHandle) -> io::Result<Worker> {
        let Activation {
            memory,
            queues,
            notifiers,
            accepted,
            interrupt,
        } = activation;
        let mut queues = queues.into_iter();
        let (Some(rx), Some(tx)) = (queues.next(), queues.next()) else {
            return Err(io::Error::other(
                "the NIC has no receive and transmit queues",
            ));
        };
        let ctrl = queues
            .next()
            .filter(|_| accepted & 1 << VIRTIO_NET_F_CTRL_VQ != 0);
        tap.set_offloads(tap_offloads(accepted))?;
        let mergeable = accepted & 1 << VIRTIO_NET_F_MRG_RXBUF != 0;
        // Receive buffers are not waited for until a frame lacks them
        // (ask_for_buffers): meanwhile the driver need not notify.
        let mut rx = rx;
        if let Err(error) = rx.disable_notification(&memory) {
            log::warn!("virtio-net: cannot set the receive ring's flags: {error}");
        }
        Ok(Worker {
            memory,
            tap,
            handle,
            interrupt,
            rx,
            rx_signal: UsedSignal::default(),
            tx,
            ctrl,
            notifiers,
            mergeable,
            frame: vec![0; FRAME_BUFFER],
            joins: mergeable && joins(accepted),
            held_frame: vec![0; FRAME_BUFFER],
            held: 0,
            pending: 0,
            starved: false,
            pause: ReceivePause::new()?,
            blocked: false,
            errors_logged: 0,
            tx_polling: AdaptivePoll::default(),
            tx_idle_since: None,
            tap_gone: false,
        })
    }

    /// Moves frames until `stop` is signalled.
    pub fn run(mut self, stop: EventFd) {
        self.receive();
        self.transmit();
        self.serve_ctrl();
        loop {
            let mut tap_events = 0;
            if self.may_receive() {
                tap_events |= libc::POLLIN;
            }
            if self.blocked {
                tap_events |= libc::POLLOUT;
            }
            // poll() skips a negative fd.
            let tap_fd = if self.tap_gone {
                -1
            } else {
                self.tap.as_raw_fd()
            };
            let wanted: Vec<_> = [
                (stop.as_raw_fd(), libc::POLLIN),
                (tap_fd, tap_events),
                (self.pause.fd(), libc::POLLIN),
            ]
            .into_iter()
            .chain(self.notifiers.iter().map(|n| (n.as_raw_fd(), libc::POLLIN)))
            .collect();
            let events = match wait_for(&wanted) {
                Ok(events) => events,
                Err(error) => {
                    log::error!("a NIC's thread cannot wait for work: {error}");
                    return;
                }
            };
            let fired = |i: usize| events.get(i).copied().unwrap_or(0);
            if fired(0) != 0 {
                return;
            }
            let tap = fired(1);
            if fired(2) != 0 {
                self.pause.end();
            }
            if fired(3) != 0 {
                let _ = self.notifiers[0].read();
                self.starved = false;
                let _ = self.rx.disable_notification(&self.memory);
            }
            if fired(4) != 0 || tap & libc::POLLOUT != 0 {
                let _ = self.notifiers[1].read();
                if let Some(since) = self.tx_idle_since.take() {
                    self.tx_polling.missed_by(since.elapsed());
                }
                self.blocked = false;
                self.transmit();
            }
            if fired(5) != 0 {
                let _ = self.notifiers[2].read();
                self.serve_ctrl();
            }
            // A tap whose interface was deleted reports an error.
            if tap & (libc::POLLERR | libc::POLLHUP) != 0 {
                self.lose_tap();
            }
            if self.may_receive() && !self.tap_gone {
                self.receive();
            }
        }
    }

    /// Whether the tap is to be read: the guest has buffers for what it
    /// holds, and is not answering a receive interrupt.
    fn may_receive(&self) -> bool {
        !self.starved && !self.pause.is_on()
    }

    /// Reads frames from the tap and hands each the filter passes to the
    /// guest, until the tap is empty or the guest has no buffers.
    fn receive(&mut self) {
        let mut delivered = false;
        loop {
            if self.pending == 0 {
                if self.held > 0 {
                    // The frame the last join read and did not take.
                    std::mem::swap(&mut self.frame, &mut self.held_frame);
                    self.pending = std::mem::take(&mut self.held);
                } else {
                    self.pending = match self.tap.file().read(&mut self.frame) {
                        Ok(len) => len,
                        Err(error) if error.kind() == io::ErrorKind::WouldBlock => break,
                        Err(error) if error.raw_os_error() == Some(libc::EBADFD) => {
                            self.lose_tap();
                            break;
                        }
                        Err(error) => {
                            log::warn!("virtio-net: cannot read from the tap: {error}");
                            self.starved = true;
                            break;
                        }
                    };
                }
                self.join_followers();
            }
            // The filter as it is when the guest can take the frame.
            let len = self.pending;
            let passes = len >= VNET_HDR_LEN + ETHERNET_HEADER
                && self
                    .handle
                    .state()
                    .filter
                    .accepts(&self.frame[VNET_HDR_LEN..len]);
            if !passes {
                NetCounters::count(&self.handle.counters().rx_dropped);
                self.pending = 0;
                continue;
            }
            match self.deliver() {
                Some(()) => {
                    self.pending = 0;
                    delivered = true;
                    NetCounters::count(&self.handle.counters().rx_frames);
                }
                None if self.ask_for_buffers() => {}
                None => {
                    self.starved = true;
                    break;
                }
            }
        }
        if delivered && self.signal(Which::Rx) {
            self.pause.begin(self.interrupt.response_time());
        }
    }

    /// Joins to the pending frame the segments of its TCP connection that
    /// wait behind it in the tap; the first that does not join is held for
    /// the next delivery.  A read that fails is left for the next read to
    /// report.
    fn join_followers(&mut self) {
        if !self.joins {
            return;
        }
        let Some(mut joined) = Joined::start(&self.frame[..self.pending]) else {
            return;
        };
        while joined.is_open() {
            let Ok(len) = self.tap.file().read(&mut self.held_frame) else {
                break;
            };
            if !joined.append(&mut self.frame, &mut self.pending, &self.held_frame[..len]) {
                self.held = len;
                break;
            }
        }
        joined.finish(&mut self.frame, self.pending);
    }

    /// Asks the driver to notify the receive queue when it adds a buffer
    /// beyond those it has offered so far (some may be too few for the
    /// frame, and not taken).  True if buffers came meanwhile.
    fn ask_for_buffers(&mut self) -> bool {
        let Ok(offered) = self.rx.avail_idx(&self.memory, Ordering::Acquire) else {
            return false;
        };
        let asked = if self.rx.event_idx_enabled() {
            // avail_event follows the used ring's entries.  virtio-queue's
            // enable_notification() would set it to the first buffer not
            // taken, which the driver has already passed.
            let at = self.rx.used_ring() + 4 + 8 * u64::from(self.rx.size());
            self.memory
                .store(offered.0.to_le(), GuestAddress(at), Ordering::Relaxed)
                .is_ok()
        } else {
            self.rx.enable_notification(&self.memory).is_ok()
        };
        fence(Ordering::SeqCst);
        asked
            && self
                .rx
                .avail_idx(&self.memory, Ordering::Acquire)
                .is_ok_and(|now| now != offered)
    }

    /// Puts the pending frame into receive buffers; `None` (and nothing
    /// taken) when there are not enough.
    fn deliver(&mut self) -> Option<()> {
        let memory = self.memory.clone();
        let len = self.pending;
        let start = self.rx.next_avail();
        let mut buffers = Vec::new();
        let mut room = 0;
        while room < len {
            let Some(chain) = self.rx.pop_descriptor_chain(&memory) else {
                self.rx.set_next_avail(start);
                return None;
            };
            let head = chain.head_index();
            match chain.writer(&memory) {
                Ok(writer) => {
                    room += writer.available_bytes();
                    buffers.push((head, writer));
                }
                // A chain outside guest memory holds nothing: it goes back
                // empty.
                Err(_) => {
                    if let Err(error) = self.rx.add_used(&memory, head, 0) {
                        log::warn!("virtio-net: cannot return a receive buffer: {error}");
                    }
                    continue;
                }
            }
            if !self.mergeable {
                break;
            }
        }
        if room < len {
            // One buffer too small for the frame: the frame is dropped.
            NetCounters::count(&self.handle.counters().rx_dropped);
        }
        let count = buffers.len() as u16;
        self.frame[NUM_BUFFERS..NUM_BUFFERS + 2].copy_from_slice(&count.to_le_bytes());
        let mut written = 0;
        let mut used = Vec::with_capacity(buffers.len());
        for (head, mut writer) in buffers {
            let part = writer.available_bytes().min(len.saturating_sub(written));
            let done = if room < len { 0 } else { part };
            if done > 0
                && writer
                    .write_all(&self.frame[written..written + done])
                    .is_err()
            {
                log::debug!("virtio-net: a receive buffer could not be written");
            }
            written += done;
            used.push((head, done as u32));
        }
        if let Err(error) = add_used_together(&mut self.rx, &memory, &used) {
            log::warn!("virtio-net: cannot return receive buffers: {error}");
        }
        Some(())
    }

    /// Sends what the guest queued, until the queue is empty or the tap is
    /// full.
    fn transmit(&mut self) {
        let memory = self.memory.clone();
        let mut sent = false;
        loop {
            if let Err(error) = self.tx.disable_notification(&memory) {
                log::warn!("virtio-net: cannot read the transmit ring: {error}");
                break;
            }
            while let Some(chain) = self.tx.pop_descriptor_chain(&memory) {
                let head = chain.head_index();
                if !self.send(chain) {
                    self.tx.go_to_previous_position();
                    self.blocked = true;
                    break;
                }
                if let Err(error) = self.tx.add_used(&memory, head, 0) {
                    log::warn!("virtio-net: cannot return a transmit buffer: {error}");
                }
                sent = true;
            }
            if self.blocked {
                break;
            }
            if sent {
                self.signal(Which::Tx);
                sent = false;
            }
            // Notifications still off, the ring is watched a while: a
            // driver that honours that adds frames without a notify exit.
            let (ring, guest) = (&self.tx, &self.memory);
            let started = Instant::now();
            if self.tx_polling.spin(|| {
                ring.avail_idx(guest, Ordering::Acquire)
                    .is_ok_and(|idx| idx.0 != ring.next_avail())
            }) {
                continue;
            }
            match self.tx.enable_notification(&memory) {
                Ok(true) => continue,
                Ok(false) => {
                    self.tx_idle_since = Some(started);
                    break;
                }
                Err(error) => {
                    log::warn!("virtio-net: cannot read the transmit ring: {error}");
                    break;
                }
            }
        }
        if sent {
            self.signal(Which::Tx);
        }
    }

    /// Writes one frame to the tap; false when the tap is full (the frame
    /// is sent again later).  A frame the tap refuses is dropped.
    fn send(&mut self, chain: Chain<'_>) -> bool {
        let segments = Segments(
            chain
                .take_while(|d| !d.is_write_only())
                .map(|d| Segment {
                    addr: d.addr(),
                    len: u64::from(d.len()),
                })
                .collect(),
        );
        let iovecs = segments.iovecs(&self.memory);
        let Some(iovecs) =
            iovecs.filter(|_| segments.len() >= (VNET_HDR_LEN + ETHERNET_HEADER) as u64)
        else {
            log::debug!("virtio-net: a transmit buffer that holds no frame");
            NetCounters::count(&self.handle.counters().tx_errors);
            return true;
        };
        // SAFETY: the iovecs name guest memory, which stays mapped while
        // `self.memory` lives; writev only reads it.
        let written = unsafe {
            libc::writev(
                self.tap.as_raw_fd(),
                iovecs.as_ptr(),
                iovecs.len().min(libc::c_int::MAX as usize) as libc::c_int,
            )
        };
        if written >= 0 {
            NetCounters::count(&self.handle.counters().tx_frames);
            return true;
        }
        let error = io::Error::last_os_error();
        if error.kind() == io::ErrorKind::WouldBlock {
            return false;
        }
        NetCounters::count(&self.handle.counters().tx_errors);
        self.errors_logged += 1;
        if self.errors_logged.is_power_of_two() {
            log::warn!(
                "virtio-net: the tap {} refused a frame ({error}); {} so far",
                self.tap.name(),
                self.errors_logged
            );
        }
        true
    }

    fn lose_tap(&mut self) {
        if !self.tap_gone {
            log::warn!(
                "virtio-net: the tap {} has gone; the NIC no longer receives, and what it sends is dropped",
                self.tap.name()
            );
            self.tap_gone = true;
        }
    }

    /// Carries out the control queue's commands.
    fn serve_ctrl(&mut self) {
        let memory = self.memory.clone();
        let Some(queue) = self.ctrl.as_mut() else {
            return;
        };
        let mut answered = false;
        loop {
            let Some(chain) = queue.pop_descriptor_chain(&memory) else {
                // With event indexes the driver notifies only past where
                // this says the device stopped.
                match queue.enable_notification(&memory) {
                    Ok(true) => continue,
                    Ok(false) => break,
                    Err(error) => {
                        log::warn!("virtio-net: cannot read the control ring: {error}");
                        break;
                    }
                }
            };
            let head = chain.head_index();
            let (status, effect) = command(&memory, chain.clone(), &self.handle);
            let ack = chain.writer(&memory).ok().and_then(|mut writer| {
                let at = writer.available_bytes().checked_sub(1)?;
                let mut rest = writer.split_at(at).ok()?;
                rest.write_all(&[status]).ok().map(|()| 1)
            });
            if let Err(error) = queue.add_used(&memory, head, ack.unwrap_or(0)) {
                log::warn!("virtio-net: cannot return a control buffer: {error}");
            }
            answered = true;
            if let Effect::Offloads(offloads) = effect {
                self.joins = self.mergeable && joins(offloads);
                if let Err(error) = self.tap.set_offloads(tap_offloads(offloads)) {
                    log::warn!("virtio-net: cannot set the tap's offloads: {error}");
                }
            }
        }
        if answered {
            self.signal(Which::Ctrl);
        }
    }

    /// Interrupts the driver for `which` queue's used buffers, unless it
    /// asked not to be; whether it was.
    fn signal(&mut self, which: Which) -> bool {
        let needed = match which {
            Which::Rx => self.rx_signal.needed(&self.rx, &self.memory),
            Which::Tx => self.tx.needs_notification(&self.memory),
            Which::Ctrl => match self.ctrl.as_mut() {
                Some(queue) => queue.needs_notification(&self.memory),
                None => return false,
            },
        };
        match needed {
            Ok(true) => {
                self.interrupt.used_buffers();
                true
            }
            Ok(false) => false,
            Err(error) => {
                log::warn!("virtio-net: cannot read a used event: {error}");
                false
            }
        }
    }
}

enum Which {
    Rx,
    Tx,
    Ctrl,
}

/// Reads and carries out one control command: its class and command, then
/// its data, all device-readable; the answer goes in the last writable byte.
fn command(memory: &GuestMemoryMmap, chain: Chain<'_>, handle: &NetHandle) -> (u8, Effect) {
    let mut bytes = Vec::new();
    let read = chain
        .reader(memory)
        .ok()
        .filter(|reader| reader.available_bytes() <= 64 * 1024)
        .and_then(|mut reader| reader.read_to_end(&mut bytes).ok());
    let (Some(_), [class, command, data @ ..]) = (read, bytes.as_slice()) else {
        return (VIRTIO_NET_ERR as u8, Effect::None);
    };
    match handle.change_filter(|filter| ctrl::execute(filter, *class, *command, data)) {
        Ok(effect) => (VIRTIO_NET_OK as u8, effect),
        Err(()) => (VIRTIO_NET_ERR as u8, Effect::None),
    }
}
