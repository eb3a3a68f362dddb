//! The machine's virtio devices: each behind a virtio-mmio transport with
//! its window on the MMIO bus, an interrupt line, an ioeventfd per queue
//! at its notify register, and an ACPI node.

use std::sync::{Arc, Mutex};

use devices::{Bus, IrqLine};
use events::{BalloonChangeEvent, NicRxFilterChangedEvent, Publisher};
use kvm_ioctls::{IoEventAddress, VmFd};
use virtio::balloon::Balloon;
use virtio::block::{Block, IoError, IoErrorSink};
use virtio::net::Net;
use virtio::{Interrupt, MmioTransport, VirtioDevice, MMIO_WINDOW};
use vm_memory::GuestMemoryMmap;

use super::kvm_error;
use super::layout::{VIRTIO_GSI_BASE, VIRTIO_MMIO_BASE, VIRTIO_SLOTS};
use super::requests::Requests;
use crate::{BalloonConfig, BalloonDevice, BlockDevice, NetDevice, Nic, Request};

impl IoErrorSink for Requests {
    fn io_error(&self, error: &IoError) {
        self.send(Request::IoError(error.clone()));
    }
}

/// Puts each device on the MMIO bus, in order, and connects its
/// notifications and interrupt.
pub fn attach(
    vm: &VmFd,
    memory: &GuestMemoryMmap,
    mmio: &mut Bus,
    irq: &dyn Fn(u32) -> Result<IrqLine, String>,
    devices: Vec<Box<dyn VirtioDevice>>,
) -> Result<Vec<Arc<Mutex<MmioTransport>>>, String> {
    if devices.len() > VIRTIO_SLOTS as usize {
        return Err(format!("kvmon has room for {VIRTIO_SLOTS} virtio devices"));
    }
    let mut transports = Vec::new();
    for (index, device) in devices.into_iter().enumerate() {
        let base = VIRTIO_MMIO_BASE + index as u64 * MMIO_WINDOW;
        let interrupt = Interrupt::new(irq(VIRTIO_GSI_BASE + index as u32)?);
        let transport = MmioTransport::new(device, memory.clone(), interrupt, base, index)?;
        for (queue, notifier) in transport.notifiers().iter().enumerate() {
            let address = IoEventAddress::Mmio(transport.notify_address());
            vm.register_ioevent(notifier, &address, queue as u32)
                .map_err(kvm_error("connect a queue notifier"))?;
        }
        let transport = Arc::new(Mutex::new(transport));
        mmio.insert(base, MMIO_WINDOW, transport.clone())
            .map_err(|e| format!("cannot place a virtio device: {e}"))?;
        transports.push(transport);
    }
    Ok(transports)
}

/// The block devices as virtio devices reporting errors to `requests`.
pub fn block_devices(disks: &[BlockDevice], requests: &Requests) -> Vec<Box<dyn VirtioDevice>> {
    let errors: Arc<dyn IoErrorSink> = Arc::new(requests.clone());
    disks
        .iter()
        .map(|disk| {
            let block = Block::new(disk.drive.clone(), errors.clone(), disk.qom_path.clone());
            Box::new(block) as Box<dyn VirtioDevice>
        })
        .collect()
}

/// The balloon, whose size changes are published as BALLOON_CHANGE.
pub fn balloon(
    config: &BalloonConfig,
    ram_size: u64,
    events: Publisher,
) -> Result<(Box<dyn VirtioDevice>, BalloonDevice), String> {
    let on_change = Box::new(move |actual| events.publish(BalloonChangeEvent { actual }));
    let balloon = Balloon::new(config.options, ram_size, on_change)
        .map_err(|e| format!("cannot create the balloon: {e}"))?;
    let device = BalloonDevice {
        handle: balloon.handle(),
        qom_path: config.qom_path.clone(),
    };
    Ok((Box::new(balloon), device))
}

/// The NICs; a change of a receive filter is published as
/// NIC_RX_FILTER_CHANGED with the device's path (QEMU's virtio-net-device
/// never names the NIC in it).
pub fn nics(nics: Vec<Nic>, events: &Publisher) -> (Vec<Box<dyn VirtioDevice>>, Vec<NetDevice>) {
    nics.into_iter()
        .map(|Nic { config, tap }| {
            let (events, path) = (events.clone(), config.qom_path.clone());
            let announce = Box::new(move || {
                events.publish(NicRxFilterChangedEvent {
                    name: None,
                    path: path.clone(),
                })
            });
            let net = Net::new(tap, config.mac, announce);
            let device = NetDevice {
                handle: net.handle(),
                name: config.name,
                netdev: config.netdev,
                qom_path: config.qom_path,
            };
            (Box::new(net) as Box<dyn VirtioDevice>, device)
        })
        .unzip()
}
