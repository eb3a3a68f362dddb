//! virtio-balloon: the host sets a target, the guest inflates the balloon
//! with pages it gives up (which the host releases) or deflates it to take
//! them back, and reports how many pages the balloon holds and its memory
//! statistics.  [`BalloonHandle`] is the machine's side: the target
//! (`balloon`), the size (`query-balloon`), the statistics and their
//! polling interval (`qom-get`/`qom-set`).

mod pages;
mod stats;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, MutexGuard};

use virtio_bindings::virtio_ids::VIRTIO_ID_BALLOON;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

pub use pages::{release_frames, release_range, Released, PAGE_SHIFT, PAGE_SIZE};
pub use stats::{GuestStats, STAT_NAMES};

use crate::device::{
    config_window, read_config_space, ActivateError, Activation, Interrupt, VirtioDevice,
};
use crate::DeviceThread;
use worker::Worker;

/// Feature bits (virtio 1.2, 5.5.3).
const F_STATS_VQ: u32 = 1;
const F_DEFLATE_ON_OOM: u32 = 2;
const F_PAGE_POISON: u32 = 4;
const F_REPORTING: u32 = 5;

/// QEMU's queue sizes: inflate, deflate and stats, then page reporting.
const QUEUE_SIZES: [u16; 4] = [128, 128, 128, 32];
/// The configuration space: num_pages, actual, free_page_hint_cmd_id
/// (unused: no free page hinting) and poison_val.
const CONFIG_LEN: usize = 16;
const ACTUAL: usize = 4;
const POISON_VALUE: usize = 12;

/// `-device virtio-balloon-device`'s properties.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BalloonOptions {
    /// The guest may take pages back from the balloon when it runs out.
    pub deflate_on_oom: bool,
    /// The guest reports free pages, which the host releases.
    pub free_page_reporting: bool,
    /// `guest-stats-polling-interval`, in seconds (0: no polling).
    pub stats_polling_interval: u32,
}

/// A polling interval as QEMU checks it: seconds that fit 32 bits.
pub fn polling_interval(seconds: i64) -> Result<u32, &'static str> {
    u32::try_from(seconds).map_err(|_| match seconds < 0 {
        true => "timer value must be greater than zero",
        false => "timer value is too big",
    })
}

/// What the device and the machine share.
struct State {
    /// The pages the host wants in the balloon (`num_pages`).
    target_pages: u32,
    /// The pages the guest says the balloon holds (`actual`).
    actual_pages: u32,
    /// The value the guest fills free pages with; reported pages are kept
    /// when it is not zero, since releasing them would zero them.
    poison_value: u32,
    stats: GuestStats,
    /// Seconds between requests for fresh statistics; 0 for none.
    polling_interval: u32,
    /// While the driver runs the device: how to tell it of a new target.
    interrupt: Option<Interrupt>,
}

struct Shared {
    ram_size: u64,
    state: Mutex<State>,
    /// Wakes the device's thread when the polling interval changes.
    polling_changed: EventFd,
    /// Called with the guest's new memory size when `actual` changes.
    on_change: Box<dyn Fn(i64) + Send + Sync>,
}

/// The machine's hold on the balloon.
#[derive(Clone)]
pub struct BalloonHandle(Arc<Shared>);

impl std::fmt::Debug for BalloonHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BalloonHandle")
            .field("ram_size", &self.0.ram_size)
            .finish_non_exhaustive()
    }
}

impl BalloonHandle {
    fn state(&self) -> MutexGuard<'_, State> {
        devices::lock(&self.0.state)
    }

    /// Asks the guest to leave itself `bytes` of RAM (at most all of it),
    /// as QEMU's virtio_balloon_to_target.
    pub fn set_target(&self, bytes: u64) {
        let ram_size = self.0.ram_size;
        let pages = (ram_size - bytes.min(ram_size)) >> PAGE_SHIFT;
        let mut state = self.state();
        state.target_pages = u32::try_from(pages).unwrap_or(u32::MAX);
        if let Some(interrupt) = &state.interrupt {
            interrupt.config_changed();
        }
    }

    /// The guest's RAM with the balloon taken out, in bytes: negative if
    /// the guest claims a balloon larger than its RAM, as QEMU reports it.
    pub fn actual(&self) -> i64 {
        self.actual_for(self.state().actual_pages)
    }

    fn actual_for(&self, pages: u32) -> i64 {
        let ram_size = i64::try_from(self.0.ram_size).unwrap_or(i64::MAX);
        ram_size - (i64::from(pages) << PAGE_SHIFT)
    }

    pub fn stats(&self) -> GuestStats {
        self.state().stats
    }

    /// The machine was reset: the statistics are forgotten (as QEMU 10
    /// does); the target and the size are kept.
    pub fn machine_reset(&self) {
        self.state().stats = GuestStats::default();
    }

    pub fn polling_interval(&self) -> u32 {
        self.state().polling_interval
    }

    /// Asks the guest for statistics every `seconds` (0: never).
    pub fn set_polling_interval(&self, seconds: u32) {
        self.state().polling_interval = seconds;
        if let Err(error) = self.0.polling_changed.write(1) {
            log::warn!("virtio-balloon: cannot pass on the polling interval: {error}");
        }
    }
}

/// A virtio-balloon device.
pub struct Balloon {
    options: BalloonOptions,
    handle: BalloonHandle,
    /// The device's thread while the driver runs it.
    worker: Option<DeviceThread>,
}

impl std::fmt::Debug for Balloon {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Balloon")
            .field("options", &self.options)
            .field("running", &self.worker.is_some())
            .finish()
    }
}

impl Balloon {
    /// A balloon in a guest of `ram_size` bytes; `on_change` hears the
    /// guest's new size (BALLOON_CHANGE's `actual`).
    pub fn new(
        options: BalloonOptions,
        ram_size: u64,
        on_change: Box<dyn Fn(i64) + Send + Sync>,
    ) -> std::io::Result<Balloon> {
        let shared = Shared {
            ram_size,
            state: Mutex::new(State {
                target_pages: 0,
                actual_pages: 0,
                poison_value: 0,
                stats: GuestStats::default(),
                polling_interval: options.stats_polling_interval,
                interrupt: None,
            }),
            polling_changed: EventFd::new(EFD_NONBLOCK)?,
            on_change,
        };
        Ok(Balloon {
            options,
            handle: BalloonHandle(Arc::new(shared)),
            worker: None,
        })
    }

    pub fn handle(&self) -> BalloonHandle {
        self.handle.clone()
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
        self.handle.state().interrupt = None;
    }

    fn config(&self) -> [u8; CONFIG_LEN] {
        let state = self.handle.state();
        let mut config = [0u8; CONFIG_LEN];
        config[..4].copy_from_slice(&state.target_pages.to_le_bytes());
        config[ACTUAL..ACTUAL + 4].copy_from_slice(&state.actual_pages.to_le_bytes());
        config[POISON_VALUE..].copy_from_slice(&state.poison_value.to_le_bytes());
        config
    }
}

impl Drop for Balloon {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

fn word(config: &[u8; CONFIG_LEN], at: usize) -> u32 {
    u32::from_le_bytes([config[at], config[at + 1], config[at + 2], config[at + 3]])
}

impl VirtioDevice for Balloon {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_BALLOON
    }

    fn queue_max_sizes(&self) -> &[u16] {
        match self.options.free_page_reporting {
            true => &QUEUE_SIZES,
            false => &QUEUE_SIZES[..3],
        }
    }

    /// As QEMU: the stats queue and page poisoning always, the rest as
    /// asked.
    fn features(&self) -> u64 {
        let mut features = 1 << F_STATS_VQ | 1 << F_PAGE_POISON;
        if self.options.deflate_on_oom {
            features |= 1 << F_DEFLATE_ON_OOM;
        }
        if self.options.free_page_reporting {
            features |= 1 << F_REPORTING;
        }
        features
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        read_config_space(&self.config(), offset, data);
    }

    /// The driver writes `actual` as it inflates and deflates (and
    /// poison_val); a change of `actual` is reported.
    fn write_config(&mut self, offset: u64, data: &[u8]) {
        let mut config = self.config();
        let (start, end) = config_window(&config, offset, data.len());
        config[start..end].copy_from_slice(&data[..end - start]);
        let actual_pages = word(&config, ACTUAL);
        let changed = {
            let mut state = self.handle.state();
            state.poison_value = word(&config, POISON_VALUE);
            std::mem::replace(&mut state.actual_pages, actual_pages) != actual_pages
        };
        if changed {
            (self.handle.0.on_change)(self.handle.actual_for(actual_pages));
        }
    }

    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        self.stop_worker();
        let error = |what: &str, e: std::io::Error| ActivateError(format!("cannot {what}: {e}"));
        let polling_changed = self
            .handle
            .0
            .polling_changed
            .try_clone()
            .map_err(|e| error("share an event", e))?;
        let interrupt = activation.interrupt.clone();
        let worker = Worker::new(activation, self.handle.clone(), polling_changed)
            .map_err(|e| error("start the balloon", e))?;
        self.worker = Some(DeviceThread::spawn("virtio-balloon".into(), |stop| {
            worker.run(stop)
        })?);
        self.handle.state().interrupt = Some(interrupt);
        Ok(())
    }

    fn reset(&mut self) {
        self.stop_worker();
        self.handle.state().poison_value = 0;
    }
}
