//! The virtio-mmio transport, version 2 (virtio 1.x): the register block
//! through which a driver negotiates features, sets up the queues and
//! notifies the device, and the ACPI node (`LNRO0005`) through which Linux
//! finds it.  Registers below 0x100 are 32-bit; the device's configuration
//! space follows at 0x100.

use acpi_tables::{aml, Aml, AmlSink};
use devices::{BusDevice, DescribeAcpi};
use virtio_bindings::virtio_config::{
    VIRTIO_CONFIG_S_DRIVER, VIRTIO_CONFIG_S_DRIVER_OK, VIRTIO_CONFIG_S_FEATURES_OK,
    VIRTIO_CONFIG_S_NEEDS_RESET, VIRTIO_F_VERSION_1,
};
use virtio_bindings::virtio_mmio::*;
use virtio_bindings::virtio_ring::VIRTIO_RING_F_EVENT_IDX;
use virtio_queue::{Queue, QueueT};
use vm_memory::GuestMemoryMmap;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::device::{Activation, Interrupt, VirtioDevice};

/// The size of a device's MMIO window.
pub const MMIO_WINDOW: u64 = 0x200;
const MAGIC: u32 = 0x7472_6976; // "virt"
const VERSION: u32 = 2;
/// QEMU's vendor ID ("QEMU"), which its virtio-mmio devices report.
const VENDOR: u32 = 0x554d_4551;

pub struct MmioTransport {
    device: Box<dyn VirtioDevice>,
    memory: GuestMemoryMmap,
    interrupt: Interrupt,
    /// Where the window is, and the device's number, for its ACPI node.
    base: u64,
    index: usize,
    /// The queues as the driver configures them; the device works on
    /// copies from DRIVER_OK on.
    queues: Vec<Queue>,
    /// Queues given a size they cannot have (not a power of two, or past
    /// their maximum): the device will not start with them.
    missized: Vec<usize>,
    /// One per queue, for the machine to register as ioeventfds at the
    /// notify register; a notify that reaches the transport signals it too.
    notifiers: Vec<EventFd>,
    queue_select: u32,
    device_features_select: u32,
    driver_features_select: u32,
    driver_features: u64,
    status: u32,
}

impl std::fmt::Debug for MmioTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MmioTransport")
            .field("device_type", &self.device.device_type())
            .field("base", &self.base)
            .field("status", &self.status)
            .finish_non_exhaustive()
    }
}

impl MmioTransport {
    /// The transport for `device`, whose window is at `base`; `index`
    /// numbers the virtio-mmio devices of a machine.
    pub fn new(
        device: Box<dyn VirtioDevice>,
        memory: GuestMemoryMmap,
        interrupt: Interrupt,
        base: u64,
        index: usize,
    ) -> Result<MmioTransport, String> {
        let queues = new_queues(device.as_ref())?;
        let notifiers = queues
            .iter()
            .map(|_| EventFd::new(EFD_NONBLOCK))
            .collect::<Result<_, _>>()
            .map_err(|e| format!("cannot create a queue notifier: {e}"))?;
        Ok(MmioTransport {
            device,
            memory,
            interrupt,
            base,
            index,
            queues,
            missized: Vec::new(),
            notifiers,
            queue_select: 0,
            device_features_select: 0,
            driver_features_select: 0,
            driver_features: 0,
            status: 0,
        })
    }

    /// The queue-notify register's address, for an ioeventfd.
    pub fn notify_address(&self) -> u64 {
        self.base + u64::from(VIRTIO_MMIO_QUEUE_NOTIFY)
    }

    /// Each queue's notifier, in queue order: an ioeventfd's datamatch is
    /// the queue's index.
    pub fn notifiers(&self) -> &[EventFd] {
        &self.notifiers
    }

    /// A notify that reached the transport rather than an ioeventfd.
    fn queue_notified(&mut self, index: u32) {
        let notifier = self.notifiers.get(index as usize);
        if let (true, Some(notifier)) = (self.active(), notifier) {
            if let Err(error) = notifier.write(1) {
                log::warn!("cannot pass on a queue notification: {error}");
            }
        }
    }

    fn offered_features(&self) -> u64 {
        self.device.features() | 1 << VIRTIO_F_VERSION_1
    }

    fn active(&self) -> bool {
        self.status & VIRTIO_CONFIG_S_DRIVER_OK != 0
            && self.status & VIRTIO_CONFIG_S_NEEDS_RESET == 0
    }

    /// The selected queue, while the driver may still configure it.
    fn configurable_queue(&mut self) -> Option<&mut Queue> {
        let configuring = self.status & VIRTIO_CONFIG_S_FEATURES_OK != 0
            && self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0;
        self.queues
            .get_mut(self.queue_select as usize)
            .filter(|queue| configuring && !queue.ready())
    }

    fn read_register(&self, offset: u32) -> u32 {
        let queue = self.queues.get(self.queue_select as usize);
        match offset {
            VIRTIO_MMIO_MAGIC_VALUE => MAGIC,
            VIRTIO_MMIO_VERSION => VERSION,
            VIRTIO_MMIO_DEVICE_ID => self.device.device_type(),
            VIRTIO_MMIO_VENDOR_ID => VENDOR,
            VIRTIO_MMIO_DEVICE_FEATURES => match self.device_features_select {
                0 => self.offered_features() as u32,
                1 => (self.offered_features() >> 32) as u32,
                _ => 0,
            },
            VIRTIO_MMIO_QUEUE_NUM_MAX => queue.map_or(0, |q| u32::from(q.max_size())),
            VIRTIO_MMIO_QUEUE_READY => queue.map_or(0, |q| u32::from(q.ready())),
            VIRTIO_MMIO_INTERRUPT_STATUS => self.interrupt.status(),
            VIRTIO_MMIO_STATUS => self.status,
            // No shared memory regions: their length reads as all ones.
            VIRTIO_MMIO_SHM_LEN_LOW | VIRTIO_MMIO_SHM_LEN_HIGH => u32::MAX,
            VIRTIO_MMIO_SHM_BASE_LOW | VIRTIO_MMIO_SHM_BASE_HIGH => u32::MAX,
            VIRTIO_MMIO_CONFIG_GENERATION => self.interrupt.config_generation(),
            _ => {
                log::debug!("virtio-mmio: read of register {offset:#x}, which has none");
                0
            }
        }
    }

    fn write_register(&mut self, offset: u32, value: u32) {
        match offset {
            VIRTIO_MMIO_DEVICE_FEATURES_SEL => self.device_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES_SEL => self.driver_features_select = value,
            VIRTIO_MMIO_DRIVER_FEATURES => self.set_driver_features(value),
            VIRTIO_MMIO_QUEUE_SEL => self.queue_select = value,
            VIRTIO_MMIO_QUEUE_NUM => {
                let index = self.queue_select as usize;
                if let Some(queue) = self.configurable_queue() {
                    let size = u16::try_from(value).unwrap_or(0);
                    let fits = queue.try_set_size(size).is_ok();
                    self.missized.retain(|&i| i != index);
                    if !fits {
                        self.missized.push(index);
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_READY => {
                let configuring = self.status & VIRTIO_CONFIG_S_DRIVER_OK == 0;
                if let Some(queue) = self.queues.get_mut(self.queue_select as usize) {
                    if configuring {
                        queue.set_ready(value == 1);
                    }
                }
            }
            VIRTIO_MMIO_QUEUE_DESC_LOW => {
                self.set_address(|q, v| q.set_desc_table_address(Some(v), None), value)
            }
            VIRTIO_MMIO_QUEUE_DESC_HIGH => {
                self.set_address(|q, v| q.set_desc_table_address(None, Some(v)), value)
            }
            VIRTIO_MMIO_QUEUE_AVAIL_LOW => {
                self.set_address(|q, v| q.set_avail_ring_address(Some(v), None), value)
            }
            VIRTIO_MMIO_QUEUE_AVAIL_HIGH => {
                self.set_address(|q, v| q.set_avail_ring_address(None, Some(v)), value)
            }
            VIRTIO_MMIO_QUEUE_USED_LOW => {
                self.set_address(|q, v| q.set_used_ring_address(Some(v), None), value)
            }
            VIRTIO_MMIO_QUEUE_USED_HIGH => {
                self.set_address(|q, v| q.set_used_ring_address(None, Some(v)), value)
            }
            VIRTIO_MMIO_QUEUE_NOTIFY => self.queue_notified(value),
            VIRTIO_MMIO_INTERRUPT_ACK => self.interrupt.acknowledge(value),
            VIRTIO_MMIO_STATUS => self.set_status(value),
            VIRTIO_MMIO_SHM_SEL => {}
            _ => log::debug!(
                "virtio-mmio: write of {value:#x} to register {offset:#x}, which has none"
            ),
        }
    }

    fn set_address(&mut self, set: impl FnOnce(&mut Queue, u32), value: u32) {
        if let Some(queue) = self.configurable_queue() {
            set(queue, value);
        }
    }

    fn set_driver_features(&mut self, value: u32) {
        let negotiating = self.status & VIRTIO_CONFIG_S_DRIVER != 0
            && self.status & VIRTIO_CONFIG_S_FEATURES_OK == 0;
        if !negotiating {
            return;
        }
        match self.driver_features_select {
            0 => self.driver_features = self.driver_features & !0xffff_ffff | u64::from(value),
            1 => self.driver_features = self.driver_features & 0xffff_ffff | u64::from(value) << 32,
            _ => {}
        }
    }

    fn set_status(&mut self, value: u32) {
        if value == 0 {
            self.reset();
            return;
        }
        let added = value & !self.status;
        // The driver only adds bits; anything else is ignored.
        if value & self.status != self.status {
            log::debug!(
                "virtio-mmio: status {value:#x} drops bits of {:#x}",
                self.status
            );
            return;
        }
        let mut status = value;
        if added & VIRTIO_CONFIG_S_FEATURES_OK != 0 {
            let unoffered = self.driver_features & !self.offered_features();
            let modern = self.driver_features & 1 << VIRTIO_F_VERSION_1 != 0;
            if unoffered != 0 || !modern {
                log::debug!(
                    "virtio-mmio: refusing features {:#x} (offered {:#x})",
                    self.driver_features,
                    self.offered_features()
                );
                status &= !VIRTIO_CONFIG_S_FEATURES_OK;
            }
        }
        if added & VIRTIO_CONFIG_S_DRIVER_OK != 0 {
            if status & VIRTIO_CONFIG_S_FEATURES_OK == 0 {
                return;
            }
            self.status = status;
            self.activate();
            return;
        }
        self.status = status;
    }

    fn activate(&mut self) {
        let invalid = self.queues.iter().enumerate().position(|(index, queue)| {
            queue.ready() && (!queue.is_valid(&self.memory) || self.missized.contains(&index))
        });
        // Each queue as the driver set it up, with the ring's notification
        // scheme the features chose.
        let event_idx = self.driver_features & 1 << VIRTIO_RING_F_EVENT_IDX != 0;
        let copies = self
            .queues
            .iter()
            .map(|queue| {
                let mut copy = Queue::try_from(queue.state())?;
                copy.set_event_idx(event_idx);
                Ok(copy)
            })
            .collect::<Result<Vec<_>, virtio_queue::Error>>();
        let notifiers = self
            .notifiers
            .iter()
            .map(EventFd::try_clone)
            .collect::<Result<Vec<_>, _>>();
        let result = match (invalid, copies, notifiers) {
            (Some(index), _, _) => Err(format!("queue {index} is not valid")),
            (None, Err(error), _) => Err(format!("a queue cannot be copied: {error}")),
            (None, _, Err(error)) => Err(format!("a queue notifier cannot be shared: {error}")),
            (None, Ok(queues), Ok(notifiers)) => self
                .device
                .activate(Activation {
                    memory: self.memory.clone(),
                    queues,
                    notifiers,
                    accepted: self.driver_features,
                    interrupt: self.interrupt.clone(),
                })
                .map_err(|e| e.0),
        };
        if let Err(error) = result {
            log::warn!(
                "virtio device {} at {:#x} cannot start: {error}",
                self.device.device_type(),
                self.base
            );
            self.status |= VIRTIO_CONFIG_S_NEEDS_RESET;
            self.interrupt.config_changed();
        }
    }

    /// Resets the device and the registers, as a driver writing status 0
    /// does (and a machine reset).
    pub fn reset(&mut self) {
        self.device.reset();
        for queue in &mut self.queues {
            queue.reset();
        }
        self.missized.clear();
        self.queue_select = 0;
        self.device_features_select = 0;
        self.driver_features_select = 0;
        self.driver_features = 0;
        self.status = 0;
        self.interrupt.reset();
    }
}

fn new_queues(device: &dyn VirtioDevice) -> Result<Vec<Queue>, String> {
    device
        .queue_max_sizes()
        .iter()
        .map(|&size| Queue::new(size).map_err(|e| format!("a queue of {size}: {e}")))
        .collect()
}

impl BusDevice for MmioTransport {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        let config = u64::from(VIRTIO_MMIO_CONFIG);
        if offset >= config {
            self.device.read_config(offset - config, data);
            return;
        }
        data.fill(0);
        let len = data.len();
        match (u32::try_from(offset), <&mut [u8; 4]>::try_from(data)) {
            (Ok(offset), Ok(data)) if offset % 4 == 0 => {
                *data = self.read_register(offset).to_le_bytes();
            }
            _ => log::debug!("virtio-mmio: a read of {len} bytes at {offset:#x}"),
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let config = u64::from(VIRTIO_MMIO_CONFIG);
        if offset >= config {
            self.device.write_config(offset - config, data);
            return;
        }
        match (u32::try_from(offset), <[u8; 4]>::try_from(data)) {
            (Ok(offset), Ok(value)) if offset % 4 == 0 => {
                self.write_register(offset, u32::from_le_bytes(value));
            }
            _ => log::debug!(
                "virtio-mmio: a write of {} bytes at {offset:#x}",
                data.len()
            ),
        }
    }
}

impl DescribeAcpi for MmioTransport {
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        // Below 4 GiB (the window is in the 32-bit MMIO hole).
        let base = self.base as u32;
        aml::Device::new(
            format!("_SB_.V{:03X}", self.index).as_str().into(),
            vec![
                &aml::Name::new("_HID".into(), &"LNRO0005"),
                &aml::Name::new("_UID".into(), &(self.index as u32)),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::Memory32Fixed::new(true, base, MMIO_WINDOW as u32),
                        &aml::Interrupt::new(true, true, false, false, self.interrupt.gsi()),
                    ]),
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}

#[cfg(test)]
mod tests;
