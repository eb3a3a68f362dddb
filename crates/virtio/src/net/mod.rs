//! virtio-net on a tap: the device (identity, features, the configuration
//! space with the MAC and link status), the receive filter the driver
//! sets, the control queue's commands, the tap, and the thread that moves
//! frames between the tap and the guest.  [`NetHandle`] is the machine's
//! side: the link (`set_link`), the filter (`query-rx-filter`) and when a
//! change of it is announced (NIC_RX_FILTER_CHANGED).

mod coalesce;
mod ctrl;
mod filter;
mod pause;
mod tap;
mod used_together;
mod worker;

#[cfg(test)]
mod tests;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use virtio_bindings::virtio_ids::VIRTIO_ID_NET;
use virtio_bindings::virtio_net::*;
use virtio_bindings::virtio_ring::{VIRTIO_RING_F_EVENT_IDX, VIRTIO_RING_F_INDIRECT_DESC};

pub use filter::{mac_text, Mac, RxFilter};
pub use tap::{inherited_fd, Tap, VNET_HDR_LEN};

use crate::device::{read_config_space, ActivateError, Activation, Interrupt, VirtioDevice};
use crate::DeviceThread;
use ctrl::Effect;
use worker::Worker;

/// QEMU's queue sizes: receive, transmit, control.
const QUEUE_SIZES: [u16; 3] = [256, 256, 64];
/// mac and status, as QEMU's configuration space without multiqueue.
const CONFIG_LEN: usize = 8;

/// The features offered: checksums and TCP segmentation both ways,
/// mergeable receive buffers, the link status and the control queue with
/// every receive-filter command.
const FEATURES: [u32; 20] = [
    VIRTIO_NET_F_CSUM,
    VIRTIO_NET_F_GUEST_CSUM,
    VIRTIO_NET_F_CTRL_GUEST_OFFLOADS,
    VIRTIO_NET_F_MAC,
    VIRTIO_NET_F_GUEST_TSO4,
    VIRTIO_NET_F_GUEST_TSO6,
    VIRTIO_NET_F_GUEST_ECN,
    VIRTIO_NET_F_HOST_TSO4,
    VIRTIO_NET_F_HOST_TSO6,
    VIRTIO_NET_F_HOST_ECN,
    VIRTIO_NET_F_MRG_RXBUF,
    VIRTIO_NET_F_STATUS,
    VIRTIO_NET_F_CTRL_VQ,
    VIRTIO_NET_F_CTRL_RX,
    VIRTIO_NET_F_CTRL_VLAN,
    VIRTIO_NET_F_CTRL_RX_EXTRA,
    VIRTIO_NET_F_GUEST_ANNOUNCE,
    VIRTIO_NET_F_CTRL_MAC_ADDR,
    VIRTIO_RING_F_INDIRECT_DESC,
    VIRTIO_RING_F_EVENT_IDX,
];

/// Frames and errors, for the log and the tests.
#[derive(Debug, Default)]
pub struct NetCounters {
    pub rx_frames: AtomicU64,
    pub tx_frames: AtomicU64,
    /// Frames the filter or a lack of buffers kept from the guest.
    pub rx_dropped: AtomicU64,
    /// Frames the tap would not take (the interface gone, ...).
    pub tx_errors: AtomicU64,
}

impl NetCounters {
    pub fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

struct State {
    filter: RxFilter,
    link_up: bool,
    /// Whether the next filter change is announced (QEMU: until a client
    /// asks for the filter again).
    announce_filter: bool,
    /// While the driver runs the device: how to tell it of a new status.
    interrupt: Option<Interrupt>,
}

struct Shared {
    mac: Mac,
    state: Mutex<State>,
    counters: NetCounters,
    /// Announces a change of the receive filter (NIC_RX_FILTER_CHANGED).
    on_filter_change: Box<dyn Fn() + Send + Sync>,
}

/// The machine's hold on a NIC.
#[derive(Clone)]
pub struct NetHandle(Arc<Shared>);

impl std::fmt::Debug for NetHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetHandle")
            .field("mac", &mac_text(&self.0.mac))
            .finish_non_exhaustive()
    }
}

impl NetHandle {
    fn state(&self) -> MutexGuard<'_, State> {
        devices::lock(&self.0.state)
    }

    /// `set_link`: the status in the configuration space, and a
    /// configuration interrupt when it changes.
    pub fn set_link(&self, up: bool) {
        let state = &mut *self.state();
        if std::mem::replace(&mut state.link_up, up) != up {
            if let Some(interrupt) = &state.interrupt {
                interrupt.config_changed();
            }
        }
    }

    pub fn link_up(&self) -> bool {
        self.state().link_up
    }

    /// The filter as `query-rx-filter` reports it; asking for it allows
    /// the next change to be announced.
    pub fn query_filter(&self) -> RxFilter {
        let mut state = self.state();
        state.announce_filter = true;
        state.filter.clone()
    }

    pub fn counters(&self) -> &NetCounters {
        &self.0.counters
    }

    /// Runs a control command on the filter (a refused one changes
    /// nothing), announcing a change if one may be announced.
    fn change_filter(
        &self,
        change: impl FnOnce(&mut RxFilter) -> Result<Effect, ()>,
    ) -> Result<Effect, ()> {
        let (result, announce) = {
            let mut state = self.state();
            let result = change(&mut state.filter);
            let changed = result == Ok(Effect::FilterChanged);
            (
                result,
                changed && std::mem::replace(&mut state.announce_filter, false),
            )
        };
        if announce {
            (self.0.on_filter_change)();
        }
        result
    }
}

/// A virtio-net device on a tap.
pub struct Net {
    tap: Tap,
    handle: NetHandle,
    worker: Option<DeviceThread>,
}

impl std::fmt::Debug for Net {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Net")
            .field("tap", &self.tap.name())
            .field("running", &self.worker.is_some())
            .finish()
    }
}

impl Net {
    /// A NIC with address `mac` on `tap`; `on_filter_change` announces
    /// changes of its receive filter.
    pub fn new(tap: Tap, mac: Mac, on_filter_change: Box<dyn Fn() + Send + Sync>) -> Net {
        let shared = Shared {
            mac,
            state: Mutex::new(State {
                filter: RxFilter::new(mac),
                link_up: true,
                announce_filter: true,
                interrupt: None,
            }),
            counters: NetCounters::default(),
            on_filter_change,
        };
        Net {
            tap,
            handle: NetHandle(Arc::new(shared)),
            worker: None,
        }
    }

    pub fn handle(&self) -> NetHandle {
        self.handle.clone()
    }

    fn stop_worker(&mut self) {
        if let Some(worker) = self.worker.take() {
            worker.stop();
        }
        self.handle.state().interrupt = None;
    }
}

impl Drop for Net {
    fn drop(&mut self) {
        self.stop_worker();
    }
}

impl VirtioDevice for Net {
    fn device_type(&self) -> u32 {
        VIRTIO_ID_NET
    }

    fn queue_max_sizes(&self) -> &[u16] {
        &QUEUE_SIZES
    }

    fn features(&self) -> u64 {
        FEATURES.iter().fold(0, |features, bit| features | 1 << bit)
    }

    fn read_config(&self, offset: u64, data: &mut [u8]) {
        let state = self.handle.state();
        let mut config = [0u8; CONFIG_LEN];
        config[..6].copy_from_slice(&state.filter.mac);
        let status = if state.link_up {
            VIRTIO_NET_S_LINK_UP
        } else {
            0
        } as u16;
        config[6..8].copy_from_slice(&status.to_le_bytes());
        read_config_space(&config, offset, data);
    }

    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        self.stop_worker();
        let interrupt = activation.interrupt.clone();
        let accepted = activation.accepted;
        self.handle
            .state()
            .filter
            .set_vlan_filtering(accepted & 1 << VIRTIO_NET_F_CTRL_VLAN != 0);
        let tap = self
            .tap
            .try_clone()
            .map_err(|e| ActivateError(format!("cannot share the tap: {e}")))?;
        let worker = Worker::new(activation, tap, self.handle.clone())
            .map_err(|e| ActivateError(format!("cannot start the NIC: {e}")))?;
        let name = format!("virtio-net {}", self.tap.name());
        self.worker = Some(DeviceThread::spawn(name, |stop| worker.run(stop))?);
        self.handle.state().interrupt = Some(interrupt);
        Ok(())
    }

    /// As QEMU's reset: the filter back to promiscuous with the NIC's own
    /// address and empty tables; the link stays as it is.
    fn reset(&mut self) {
        self.stop_worker();
        self.handle.state().filter = RxFilter::new(self.handle.0.mac);
    }
}
