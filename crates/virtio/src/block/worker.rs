//! A block device's I/O thread: it owns the device's queue while the
//! driver has it running, waits for the queue's notifier (an ioeventfd the
//! guest's notify write signals directly), carries out each request on the
//! drive and completes it.  Disk I/O never runs on the main loop or a vCPU.
//!
//! A request that fails under the `stop` policy is kept; the thread takes
//! no new requests until the drive is told to retry (on `cont`), so the
//! guest's writes reach the disk in the order it made them.

use std::collections::VecDeque;
use std::io;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Instant;

use virtio_bindings::virtio_blk::{VIRTIO_BLK_S_IOERR, VIRTIO_BLK_S_OK, VIRTIO_BLK_S_UNSUPP};
use virtio_queue::{Queue, QueueT};
use vm_memory::{Bytes, GuestAddress, GuestMemoryMmap};
use vmm_sys_util::eventfd::EventFd;

use super::drive::Drive;
use super::options::ErrorAction;
use super::request::{little_endian, Kind, Malformed, Request};
use super::stats::Operation;
use super::{IoError, IoErrorSink, MAX_DISCARD_SECTORS, SECTOR};
use crate::{AdaptivePoll, Interrupt};

/// The bytes of one discard or write-zeroes range.
const RANGE_LEN: u64 = 16;
/// The only flag a write-zeroes range may carry.
const RANGE_UNMAP: u32 = 1;
/// What GET_ID returns at most.
pub const ID_BYTES: usize = 20;

pub(super) struct Worker {
    pub memory: GuestMemoryMmap,
    pub queue: Queue,
    pub notifier: EventFd,
    /// Signalled when the device is reset or dropped.
    pub stop: EventFd,
    pub interrupt: Interrupt,
    pub drive: Arc<Drive>,
    pub errors: Arc<dyn IoErrorSink>,
    pub serial: [u8; ID_BYTES],
    pub qom_path: String,
    /// Requests waiting to be retried, oldest first, with their chain heads.
    pub parked: VecDeque<(u16, Request)>,
    /// How long to poll for the next notify before sleeping.
    pub polling: AdaptivePoll,
}

/// How a request ended.
enum Outcome {
    /// A status for the guest, and how many bytes the device wrote before it.
    Complete { status: u32, written: u64 },
    /// The host failed it with `errno`.
    Failed {
        operation: Operation,
        errno: i32,
        started: Instant,
    },
}

fn complete(status: u32) -> Outcome {
    Outcome::Complete { status, written: 0 }
}

impl Worker {
    /// Serves the queue until the device stops.
    pub fn run(mut self) {
        loop {
            if self.parked.is_empty() {
                self.serve_queue();
            }
            match self.wait() {
                Ok(true) => return,
                Ok(false) => {}
                Err(error) => {
                    log::error!("a block device's I/O thread cannot wait for work: {error}");
                    return;
                }
            }
        }
    }

    /// Waits (polling a while, then asleep) until there is something to
    /// do; true when the device stops.
    fn wait(&mut self) -> io::Result<bool> {
        let retry = self.drive.retry_signal();
        let mut fds = [&self.stop, &self.notifier, retry].map(|event| libc::pollfd {
            fd: event.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        });
        if let Err(error) = self.polling.wait(&mut fds) {
            return match error.kind() {
                io::ErrorKind::Interrupted => Ok(false),
                _ => Err(error),
            };
        }
        if fds[0].revents != 0 {
            return Ok(true);
        }
        if fds[1].revents != 0 {
            let _ = self.notifier.read();
        }
        if fds[2].revents != 0 {
            let _ = retry.read();
            self.retry();
        }
        Ok(false)
    }

    /// Carries out the parked requests again, in order.
    fn retry(&mut self) {
        while let Some((head, request)) = self.parked.pop_front() {
            if !self.serve(head, request) {
                break;
            }
        }
        self.signal_used();
    }

    fn serve_queue(&mut self) {
        loop {
            if let Err(error) = self.queue.disable_notification(&self.memory) {
                log::warn!("virtio-blk: cannot read the available ring: {error}");
                return;
            }
            while let Some(chain) = self.queue.pop_descriptor_chain(&self.memory) {
                let head = chain.head_index();
                let served = match Request::parse(chain, &self.memory) {
                    Ok(request) => self.serve(head, request),
                    Err((malformed, status)) => {
                        self.refuse(head, malformed, status);
                        true
                    }
                };
                if !served {
                    self.signal_used();
                    return;
                }
            }
            match self.queue.enable_notification(&self.memory) {
                Ok(true) => continue,
                Ok(false) => break,
                Err(error) => {
                    log::warn!("virtio-blk: cannot read the available ring: {error}");
                    break;
                }
            }
        }
        self.signal_used();
    }

    fn signal_used(&mut self) {
        match self.queue.needs_notification(&self.memory) {
            Ok(true) => self.interrupt.used_buffers(),
            Ok(false) => {}
            Err(error) => log::warn!("virtio-blk: cannot read the used event: {error}"),
        }
    }

    /// A chain that is no request: IOERR if there is a status byte.
    fn refuse(&mut self, head: u16, malformed: Malformed, status: Option<GuestAddress>) {
        log::debug!("virtio-blk: a malformed request ({malformed:?})");
        match status {
            Some(status) => self.finish(head, status, VIRTIO_BLK_S_IOERR, 0),
            None => self.used(head, 0),
        }
    }

    /// Carries out one request; false when it was parked for a retry.
    fn serve(&mut self, head: u16, request: Request) -> bool {
        match self.carry_out(&request) {
            Outcome::Complete { status, written } => {
                self.finish(head, request.status, status, written);
                true
            }
            Outcome::Failed {
                operation,
                errno,
                started,
            } => {
                let policy = match operation {
                    Operation::Read => self.drive.options().on_read_error,
                    _ => self.drive.options().on_write_error,
                };
                let action = policy.action(errno);
                if action == ErrorAction::Stop {
                    self.drive.set_io_error(errno);
                }
                self.errors.io_error(&IoError {
                    qom_path: self.qom_path.clone(),
                    device: self.drive.options().id.clone(),
                    node_name: self.drive.options().node_name.clone(),
                    write: operation != Operation::Read,
                    action,
                    errno,
                });
                match action {
                    ErrorAction::Stop => {
                        self.parked.push_back((head, request));
                        return false;
                    }
                    ErrorAction::Report => {
                        self.drive.stats().failed(operation);
                        self.finish(head, request.status, VIRTIO_BLK_S_IOERR, 0);
                    }
                    ErrorAction::Ignore => {
                        self.drive.stats().done(operation, 0, started.elapsed());
                        self.finish(head, request.status, VIRTIO_BLK_S_OK, 0);
                    }
                }
                true
            }
        }
    }

    fn carry_out(&self, request: &Request) -> Outcome {
        match request.kind {
            Kind::Read | Kind::Write => self.transfer(request),
            Kind::Flush => {
                let started = Instant::now();
                self.timed(Operation::Flush, 0, started, self.drive.flush())
            }
            Kind::GetId => match request.data.write(&self.memory, &self.serial) {
                Some(written) => Outcome::Complete {
                    status: VIRTIO_BLK_S_OK,
                    written,
                },
                None => complete(VIRTIO_BLK_S_IOERR),
            },
            Kind::Discard | Kind::WriteZeroes => self.zero_or_discard(request),
            Kind::Unsupported(kind) => {
                log::debug!("virtio-blk: request type {kind} is not supported");
                complete(VIRTIO_BLK_S_UNSUPP)
            }
        }
    }

    /// A read or a write: whole sectors inside the disk, in guest memory.
    fn transfer(&self, request: &Request) -> Outcome {
        let write = request.kind == Kind::Write;
        let operation = if write {
            Operation::Write
        } else {
            Operation::Read
        };
        let len = request.data.len();
        let offset = self
            .disk_offset(request.sector, len)
            .filter(|_| len.is_multiple_of(SECTOR));
        let buffers = request.data.iovecs(&self.memory);
        let (Some(offset), Some(mut buffers)) = (offset, buffers) else {
            self.drive.stats().invalid(operation);
            return complete(VIRTIO_BLK_S_IOERR);
        };
        let end = offset + len;
        let started = Instant::now();
        // SAFETY: the iovecs name guest memory, which stays mapped while
        // this thread holds `self.memory`.
        let result = unsafe {
            match write {
                true => self.drive.write(&mut buffers, offset),
                false => self.drive.read(&mut buffers, offset),
            }
        };
        if write && result.is_ok() {
            self.drive.stats().wrote_up_to(end);
        }
        match self.timed(operation, len, started, result) {
            Outcome::Complete { status, .. } if !write => Outcome::Complete {
                status,
                written: len,
            },
            outcome => outcome,
        }
    }

    /// Discard and write zeroes: one range of whole sectors inside the disk.
    fn zero_or_discard(&self, request: &Request) -> Outcome {
        let zeroes = request.kind == Kind::WriteZeroes;
        let operation = if zeroes {
            Operation::Write
        } else {
            Operation::Unmap
        };
        // One range per request, as the configuration space says.
        if request.data.len() != RANGE_LEN {
            return complete(VIRTIO_BLK_S_UNSUPP);
        }
        let Some(range) = request.data.read(&self.memory) else {
            return complete(VIRTIO_BLK_S_IOERR);
        };
        let sector = little_endian(&range[..8]);
        let sectors = little_endian(&range[8..12]);
        let flags = little_endian(&range[12..16]) as u32;
        let allowed = if zeroes { RANGE_UNMAP } else { 0 };
        if flags & !allowed != 0 {
            return complete(VIRTIO_BLK_S_UNSUPP);
        }
        let len = sectors * SECTOR;
        let offset = self
            .disk_offset(sector, len)
            .filter(|_| sectors <= MAX_DISCARD_SECTORS);
        let Some(offset) = offset else {
            self.drive.stats().invalid(operation);
            return complete(VIRTIO_BLK_S_IOERR);
        };
        let started = Instant::now();
        let result = match zeroes {
            true => self
                .drive
                .write_zeroes(offset, len, flags & RANGE_UNMAP != 0),
            false => self.drive.discard(offset, len),
        };
        if zeroes && result.is_ok() {
            self.drive.stats().wrote_up_to(offset + len);
        }
        self.timed(operation, len, started, result)
    }

    /// The byte offset of `len` bytes from `sector`, if they lie inside the
    /// disk.
    fn disk_offset(&self, sector: u64, len: u64) -> Option<u64> {
        let offset = sector.checked_mul(SECTOR)?;
        let end = offset.checked_add(len)?;
        (end <= self.drive.size()).then_some(offset)
    }

    /// Accounts a finished host operation.
    fn timed(
        &self,
        operation: Operation,
        bytes: u64,
        started: Instant,
        result: io::Result<()>,
    ) -> Outcome {
        match result {
            Ok(()) => {
                self.drive.stats().done(operation, bytes, started.elapsed());
                complete(VIRTIO_BLK_S_OK)
            }
            Err(error) => Outcome::Failed {
                operation,
                errno: error.raw_os_error().unwrap_or(libc::EIO),
                started,
            },
        }
    }

    /// Writes the status byte and returns the chain.
    fn finish(&mut self, head: u16, status_at: GuestAddress, status: u32, written: u64) {
        if self.memory.write_obj(status as u8, status_at).is_err() {
            log::debug!("virtio-blk: the status byte is outside guest memory");
        }
        let used = u32::try_from(written + 1).unwrap_or(u32::MAX);
        self.used(head, used);
    }

    fn used(&mut self, head: u16, len: u32) {
        if let Err(error) = self.queue.add_used(&self.memory, head, len) {
            log::warn!("virtio-blk: cannot return a request: {error}");
        }
    }
}
