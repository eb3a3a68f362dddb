//! The balloon's thread while the driver runs it: it waits for the queues'
//! notifiers, the polling timer and its stop signal, and serves each queue
//! as its role asks — inflated pages released, deflated ones taken back,
//! statistics kept (their buffer held until fresh ones are wanted), and
//! free pages the guest reports released.

use std::io;
use std::os::fd::AsRawFd;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use devices::DeviceTimer;
use virtio_queue::{DescriptorChain, Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use super::pages::{release_frames, release_range};
use super::stats::ENTRY_LEN;
use super::{BalloonHandle, F_REPORTING, F_STATS_VQ};
use crate::device::{Activation, Interrupt};
use crate::wait_for;

type Chain<'m> = DescriptorChain<&'m GuestMemoryMmap>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Inflate,
    Deflate,
    Stats,
    Reporting,
}

struct Served {
    role: Role,
    queue: Queue,
    notifier: EventFd,
}

pub(super) struct Worker {
    memory: GuestMemoryMmap,
    handle: BalloonHandle,
    interrupt: Interrupt,
    queues: Vec<Served>,
    polling_changed: EventFd,
    /// When to ask the guest for fresh statistics, and every how many
    /// seconds (as last seen; 0 for never).
    polling: DeviceTimer,
    interval: u32,
    /// The statistics buffer the guest gave, held until fresh statistics
    /// are wanted: returning it is the request.
    held_stats: Option<u16>,
}

impl Worker {
    pub fn new(
        activation: Activation,
        handle: BalloonHandle,
        polling_changed: EventFd,
    ) -> io::Result<Worker> {
        let Activation {
            memory,
            queues,
            notifiers,
            accepted,
            interrupt,
        } = activation;
        // The queues a driver sets up are the ones its features call for,
        // in this order (a driver without the stats queue reports on the
        // third).
        let mut roles = vec![Role::Inflate, Role::Deflate];
        if accepted & 1 << F_STATS_VQ != 0 {
            roles.push(Role::Stats);
        }
        if accepted & 1 << F_REPORTING != 0 {
            roles.push(Role::Reporting);
        }
        let queues = roles
            .into_iter()
            .zip(queues.into_iter().zip(notifiers))
            .map(|(role, (queue, notifier))| Served {
                role,
                queue,
                notifier,
            })
            .collect();
        Ok(Worker {
            memory,
            handle,
            interrupt,
            queues,
            polling_changed,
            polling: DeviceTimer::new()?,
            interval: 0,
            held_stats: None,
        })
    }

    /// Serves the queues until `stop` is signalled.
    pub fn run(mut self, stop: EventFd) {
        self.polling_interval_changed();
        for index in 0..self.queues.len() {
            self.serve_queue(index);
        }
        loop {
            let wanted: Vec<_> = [
                stop.as_raw_fd(),
                self.polling_changed.as_raw_fd(),
                self.polling.fd(),
            ]
            .into_iter()
            .chain(self.queues.iter().map(|q| q.notifier.as_raw_fd()))
            .map(|fd| (fd, libc::POLLIN))
            .collect();
            let fired = match wait_for(&wanted) {
                Ok(fired) => fired,
                Err(error) => {
                    log::error!("the balloon's thread cannot wait for work: {error}");
                    return;
                }
            };
            let readable = |i: usize| fired[i] != 0;
            if readable(0) {
                return;
            }
            if readable(1) {
                let _ = self.polling_changed.read();
                self.polling_interval_changed();
            }
            if readable(2) {
                self.polling.acknowledge();
                self.request_stats();
            }
            for index in 0..self.queues.len() {
                if readable(3 + index) {
                    let _ = self.queues[index].notifier.read();
                    self.serve_queue(index);
                }
            }
        }
    }

    /// Takes every buffer the driver made available in queue `index`.
    fn serve_queue(&mut self, index: usize) {
        let memory = self.memory.clone();
        let role = self.queues[index].role;
        let mut used = false;
        loop {
            let queue = &mut self.queues[index].queue;
            if let Err(error) = queue.disable_notification(&memory) {
                log::warn!("virtio-balloon: cannot read the available ring: {error}");
                break;
            }
            while let Some(chain) = self.queues[index].queue.pop_descriptor_chain(&memory) {
                let head = chain.head_index();
                let keep = self.serve(role, chain);
                if !keep {
                    self.complete(index, head);
                    used = true;
                }
            }
            match self.queues[index].queue.enable_notification(&memory) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    log::warn!("virtio-balloon: cannot read the available ring: {error}");
                    break;
                }
            }
        }
        if used {
            self.interrupt.used_buffers();
        }
    }

    /// Serves one buffer; true when the device keeps it (statistics).
    fn serve(&mut self, role: Role, chain: Chain<'_>) -> bool {
        match role {
            Role::Inflate => self.inflate(chain),
            Role::Deflate => log::trace!(
                "virtio-balloon: deflated {} pages",
                frames(&self.memory, chain).count()
            ),
            Role::Reporting => self.free_pages_reported(chain),
            Role::Stats => {
                self.stats_received(chain);
                return true;
            }
        }
        false
    }

    fn inflate(&self, chain: Chain<'_>) {
        let released = release_frames(&self.memory, frames(&self.memory, chain));
        if released.outside > 0 {
            log::debug!(
                "virtio-balloon: {} inflated pages are not guest RAM",
                released.outside
            );
        }
    }

    /// Each device-writable buffer is free memory the guest reports; it is
    /// released unless the guest poisons free pages.
    fn free_pages_reported(&self, chain: Chain<'_>) {
        if self.handle.state().poison_value != 0 {
            return;
        }
        for descriptor in chain.filter(|d| d.is_write_only()) {
            if !release_range(&self.memory, descriptor.addr(), u64::from(descriptor.len())) {
                log::debug!("virtio-balloon: a reported free range is not guest RAM");
            }
        }
    }

    /// Fresh statistics: kept, with their time, and the buffer held.
    fn stats_received(&mut self, chain: Chain<'_>) {
        let head = chain.head_index();
        if let Some(old) = self.held_stats.take() {
            // A driver that follows the spec never sends a second buffer.
            self.complete_held(old);
        }
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |t| t.as_secs() as i64);
        match chain.reader(&self.memory) {
            Ok(mut reader) => {
                let mut state = self.handle.state();
                while let Ok(entry) = reader.read_obj::<[u8; ENTRY_LEN]>() {
                    state.stats.record(entry);
                }
                state.stats.last_update = now;
            }
            Err(error) => log::debug!("virtio-balloon: unreadable statistics: {error}"),
        }
        self.held_stats = Some(head);
        self.arm_polling();
    }

    /// The polling timer fired: the held buffer goes back, which asks the
    /// guest for fresh statistics.
    fn request_stats(&mut self) {
        match self.held_stats.take() {
            Some(head) => {
                self.complete_held(head);
                self.interrupt.used_buffers();
            }
            None => self.arm_polling(),
        }
    }

    fn complete_held(&mut self, head: u16) {
        if let Some(index) = self.queues.iter().position(|q| q.role == Role::Stats) {
            self.complete(index, head);
        }
    }

    /// As QEMU: polling stops at 0, starts at once from 0, and otherwise
    /// counts the new interval from now.
    fn polling_interval_changed(&mut self) {
        let interval = self.handle.polling_interval();
        match (std::mem::replace(&mut self.interval, interval), interval) {
            (_, 0) => self.polling.disarm(),
            (0, _) => self.polling.arm(Duration::ZERO),
            _ => self.arm_polling(),
        }
    }

    fn arm_polling(&mut self) {
        let seconds = self.handle.polling_interval();
        if seconds > 0 {
            self.polling.arm(Duration::from_secs(u64::from(seconds)));
        }
    }

    /// Returns a buffer to the driver, having written nothing into it.
    fn complete(&mut self, index: usize, head: u16) {
        if let Err(error) = self.queues[index].queue.add_used(&self.memory, head, 0) {
            log::warn!("virtio-balloon: cannot return a buffer: {error}");
        }
    }
}

/// The page frame numbers a buffer holds (none if any of it is not guest
/// memory).
fn frames<'m>(memory: &'m GuestMemoryMmap, chain: Chain<'m>) -> impl Iterator<Item = u32> + 'm {
    let mut reader = match chain.reader(memory) {
        Ok(reader) => Some(reader),
        Err(error) => {
            log::debug!("virtio-balloon: an unreadable page list: {error}");
            None
        }
    };
    std::iter::from_fn(move || reader.as_mut()?.read_obj::<u32>().ok().map(u32::from_le))
}
