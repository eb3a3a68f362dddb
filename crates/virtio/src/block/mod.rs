//! virtio-blk over a raw image: the device (identity, features, its
//! configuration space), the parsing of requests from descriptor chains,
//! the drive that carries them out on the image file, and the I/O thread
//! between the two.

mod drive;
mod lock;
mod options;
mod request;
mod stats;
mod worker;

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::sync::Arc;

use virtio_bindings::virtio_blk::*;
use virtio_bindings::virtio_ids::VIRTIO_ID_BLOCK;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

pub use drive::{Drive, IoStatus};
pub use options::{Cache, DriveOptions, ErrorAction, ErrorPolicy};
pub use stats::{Counters, Operation, Stats};

use crate::device::{read_config_space, ActivateError, Activation, VirtioDevice};
use crate::{AdaptivePoll, DeviceThread};
use worker::{Worker, ID_BYTES};

/// virtio-blk counts in 512-byte sectors, whatever the block size.
pub const SECTOR: u64 = 512;
/// As QEMU: a queue of 256, and two descriptors of each request are the
/// header and the status.
const QUEUE_SIZE: u16 = 256;
const SEG_MAX: u32 = QUEUE_SIZE as u32 - 2;
/// The most sectors one discard or write-zeroes request may cover (QEMU's).
pub const MAX_DISCARD_SECTORS: u64 = 0x3f_ffff;
/// The configuration space, up to the write-zeroes fields.
const CONFIG_LEN: usize = 60;

/// A request the host failed, as management hears of it (BLOCK_IO_ERROR).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IoError {
    /// The device's QOM path.
    pub qom_path: String,
    /// The drive's name (empty for a `-blockdev` node) and node name.
    pub device: String,
    pub node_name: String,
    pub write: bool,
    pub action: ErrorAction,
    pub errno: i32,
}

impl IoError {
    pub fn nospace(&self) -> bool {
        self.errno == libc::ENOSPC
    }

    /// The C library's text for the error.
    pub fn reason(&self) -> String {
        crate::os_text(&std::io::Error::from_raw_os_error(self.errno))
    }
}

/// Where a block device reports failed requests: the machine publishes
/// them, and stops the VM in io-error when the action is `Stop`.
pub trait IoErrorSink: Send + Sync {
    fn io_error(&self, error: &IoError);
}

/// A virtio-blk device on a drive.
pub struct Block {
    drive: Arc<Drive>,
    qom_path: String,
    errors: Arc<dyn IoErrorSink>,
    /// The I/O thread while the driver has the device running.
    worker: Option<DeviceThread>,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("drive", &self.drive.options().id)
            .field("running", &self.worker.is_some())
            .finish()
    }
}

impl Block {
    pub fn new(drive: Arc<Drive>, errors: Arc<dyn IoErrorSink>, qom_path: String) -> Block {
        Block {
            drive,
            qom_path,
            errors,
            worker: None,
        }
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
        self.drive.set_config_interrupt(None);
    }

    fn serial(&self) -> [u8; ID_BYTES] {
        let mut serial = [0u8; ID_BYTES];
        if let Some(given) = &self.drive.options().serial {
            let len = given.len().min(ID_BYTES);
            serial[..len].copy_from_slice(&given.as_bytes()[..len]);
        }
        serial
    }
}

impl Drop for Block {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

impl VirtioDevice for Block {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BLOCK
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &[QUEUE_SIZE]
    }

    fn features(&self) -> u64 {
        let mut features = [
            VIRTIO_BLK_F_SEG_MAX,
            VIRTIO_BLK_F_BLK_SIZE,
            VIRTIO_BLK_F_FLUSH,
            VIRTIO_BLK_F_DISCARD,
            VIRTIO_BLK_F_WRITE_ZEROES,
            VIRTIO_RING_F_INDIRECT_DESC,
            VIRTIO_RING_F_EVENT_IDX,
        ]
        .iter()
        .fold(0u64, |features, bit| features | 1 << bit);
        if self.drive.options().read_only {
            features |= 1 << VIRTIO_BLK_F_RO;
        }
        features
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let unmap = u8::from(self.drive.options().discard);
        let mut config = [0u8; CONFIG_LEN];
        let mut put = |at: usize, bytes: &[u8]| config[at..at + bytes.len()].copy_from_slice(bytes);
        put(0, &(self.drive.size() / SECTOR).to_le_bytes());
        put(12, &SEG_MAX.to_le_bytes());
        put(20, &(SECTOR as u32).to_le_bytes());
        put(36, &(MAX_DISCARD_SECTORS as u32).to_le_bytes());
        put(40, &1u32.to_le_bytes());
        put(44, &1u32.to_le_bytes());
        put(48, &(MAX_DISCARD_SECTORS as u32).to_le_bytes());
        put(52, &1u32.to_le_bytes());
        put(56, &[unmap]);
        read_config_space(&config, offset, data);
    }

    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        self.stop_worker();
        let Activation {
            memory,
            queues,
            notifiers,
            interrupt,
            ..
        } = activation;
        let (Some(queue), Some(notifier)) =
            (queues.into_iter().next(), notifiers.into_iter().next())
        else {
            return Err(ActivateError("the block device has no queue".into()));
        };
        let (drive, errors) = (self.drive.clone(), self.errors.clone());
        let (serial, qom_path) = (self.serial(), self.qom_path.clone());
        let device_interrupt = interrupt.clone();
        let name = match self.drive.options().id.as_str() {
            "" => "virtio-blk".to_string(),
            id => format!("virtio-blk {id}"),
        };
        let worker = move |stop| {
            let worker = Worker {
                memory,
                queue,
                notifier,
                stop,
                interrupt: device_interrupt,
                drive,
                errors,
                serial,
                qom_path,
                parked: VecDeque::new(),
                polling: AdaptivePoll::default(),
            };
            worker.run()
        };
        self.worker = Some(DeviceThread::spawn(name, worker)?);
        self.drive.set_config_interrupt(Some(interrupt));
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
    }
}
