//! What a virtio device offers its transport: an identity, features,
//! configuration space and queues, and the work it does once the driver
//! has set it up.  Devices never know which transport carries them.

use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use devices::IrqLine;
use virtio_bindings::virtio_mmio::{VIRTIO_MMIO_INT_CONFIG, VIRTIO_MMIO_INT_VRING};
use virtio_queue::Queue;
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::EventFd;

use crate::response_time::ResponseTime;

/// A virtio device behind a transport.
pub trait VirtioDevice: Send {
    /// The virtio device ID (2 for a block device).
    fn device_type(&self) -> u32;

    /// The largest size of each of its queues; their number is its queue count.
    fn queue_max_sizes(&self) -> &[u16];

    /// The feature bits it offers (the transport adds VIRTIO_F_VERSION_1).
    fn features(&self) -> u64;

    /// Reads its configuration space at `offset`; bytes past its end read 0.
    fn read_config(&self, offset: u64, data: &mut [u8]);

    /// Writes its configuration space; most devices ignore such writes.
    fn write_config(&mut self, _offset: u64, _data: &[u8]) {}

    /// The driver has set DRIVER_OK: from now on the device serves `queues`
    /// (with the features the driver `accepted`) and signals `interrupt`.
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError>;

    /// The driver reset the device: it drops its queues and returns to its
    /// state before activation.
    fn reset(&mut self);
}

/// The part of a configuration space `config` that `offset` and `len`
/// name, clamped to it: (start, end) in it.
pub(crate) fn config_window(config: &[u8], offset: u64, len: usize) -> (usize, usize) {
    let start = usize::try_from(offset)
        .unwrap_or(config.len())
        .min(config.len());
    (start, start.saturating_add(len).min(config.len()))
}

/// Reads `data` from configuration space `config` at `offset`; bytes past
/// its end read 0.
pub(crate) fn read_config_space(config: &[u8], offset: u64, data: &mut [u8]) {
    let (start, end) = config_window(config, offset, data.len());
    data.fill(0);
    data[..end - start].copy_from_slice(&config[start..end]);
}

/// What an activated device works with.
#[derive(Debug)]
pub struct Activation {
    pub memory: GuestMemoryMmap,
    pub queues: Vec<Queue>,
    /// One per queue: signalled when the driver makes buffers available in
    /// it (KVM signals it directly, as an ioeventfd).
    pub notifiers: Vec<EventFd>,
    pub accepted: u64,
    pub interrupt: Interrupt,
}

/// Why a device could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActivateError(pub String);

impl fmt::Display for ActivateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A device's interrupt: the reasons pending in its InterruptStatus
/// register, the line that tells the guest to read it, the generation
/// of its configuration space, which each change advances, and how long
/// the driver takes to answer.
#[derive(Debug, Clone)]
pub struct Interrupt {
    status: Arc<AtomicU32>,
    generation: Arc<AtomicU32>,
    line: IrqLine,
    response: Arc<ResponseTime>,
}

impl Interrupt {
    pub fn new(line: IrqLine) -> Interrupt {
        Interrupt {
            status: Arc::new(AtomicU32::new(0)),
            generation: Arc::new(AtomicU32::new(0)),
            line,
            response: Arc::default(),
        }
    }

    /// The device has put buffers in a used ring.
    pub fn used_buffers(&self) {
        self.raise(VIRTIO_MMIO_INT_VRING);
    }

    /// The device has changed its configuration space.
    pub fn config_changed(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
        self.raise(VIRTIO_MMIO_INT_CONFIG);
    }

    fn raise(&self, reason: u32) {
        if self.status.fetch_or(reason, Ordering::SeqCst) == 0 {
            self.response.raised();
        }
        if let Err(error) = self.line.trigger() {
            log::warn!("cannot raise a virtio interrupt: {error}");
        }
    }

    /// The pending reasons.
    pub fn status(&self) -> u32 {
        self.status.load(Ordering::SeqCst)
    }

    /// The driver has handled `reasons`.
    pub fn acknowledge(&self, reasons: u32) {
        self.status.fetch_and(!reasons, Ordering::SeqCst);
        self.response.answered();
    }

    /// How long the driver takes, on average, from the line being raised
    /// to its acknowledgement.
    pub fn response_time(&self) -> Duration {
        self.response.mean()
    }

    pub fn config_generation(&self) -> u32 {
        self.generation.load(Ordering::SeqCst)
    }

    pub fn gsi(&self) -> u32 {
        self.line.gsi()
    }

    /// Drops every pending reason (a device reset).
    pub(crate) fn reset(&self) {
        self.status.store(0, Ordering::SeqCst);
    }
}
