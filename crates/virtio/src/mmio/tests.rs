use std::sync::{Arc, Mutex};

use devices::IrqLine;
use vm_memory::GuestAddress;
use vmm_sys_util::eventfd::EventFd;

use virtio_bindings::virtio_config::VIRTIO_CONFIG_S_ACKNOWLEDGE;

use super::*;
use crate::ActivateError;

const BASE: u64 = 0xd000_0000;
const FEATURE: u64 = 1 << 5;

/// What the transport asked of the fake device.
#[derive(Debug, Default)]
struct Calls {
    activated: Option<(usize, u64)>,
    notifiers: Vec<EventFd>,
    resets: usize,
}

struct FakeDevice {
    calls: Arc<Mutex<Calls>>,
    refuse: bool,
}

impl VirtioDevice for FakeDevice {
    fn device_type(&self) -> u32 {
        2
    }
    fn queue_max_sizes(&self) -> &[u16] {
        &[16, 8]
    }
    fn features(&self) -> u64 {
        FEATURE
    }
    fn read_config(&self, offset: u64, data: &mut [u8]) {
        for (i, byte) in data.iter_mut().enumerate() {
            *byte = (offset as u8).wrapping_add(i as u8);
        }
    }
    fn activate(&mut self, activation: Activation) -> Result<(), ActivateError> {
        if self.refuse {
            return Err(ActivateError("refused".into()));
        }
        let mut calls = self.calls.lock().unwrap();
        calls.activated = Some((activation.queues.len(), activation.accepted));
        calls.notifiers = activation.notifiers;
        Ok(())
    }
    fn reset(&mut self) {
        self.calls.lock().unwrap().resets += 1;
    }
}

fn transport(refuse: bool) -> (MmioTransport, Arc<Mutex<Calls>>) {
    let calls = Arc::new(Mutex::new(Calls::default()));
    let memory = GuestMemoryMmap::from_ranges(&[(GuestAddress(0), 0x10_0000)]).unwrap();
    let device = FakeDevice {
        calls: calls.clone(),
        refuse,
    };
    let interrupt = Interrupt::new(IrqLine::new(5).unwrap());
    let transport = MmioTransport::new(Box::new(device), memory, interrupt, BASE, 0).unwrap();
    (transport, calls)
}

fn read(t: &mut MmioTransport, offset: u32) -> u32 {
    let mut data = [0xff; 4];
    t.read(u64::from(offset), &mut data);
    u32::from_le_bytes(data)
}

fn write(t: &mut MmioTransport, offset: u32, value: u32) {
    t.write(u64::from(offset), &value.to_le_bytes());
}

/// The driver's steps up to FEATURES_OK, accepting `features`.
fn negotiate(t: &mut MmioTransport, features: u64) {
    write(t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    write(
        t,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 0);
    write(t, VIRTIO_MMIO_DRIVER_FEATURES, features as u32);
    write(t, VIRTIO_MMIO_DRIVER_FEATURES_SEL, 1);
    write(t, VIRTIO_MMIO_DRIVER_FEATURES, (features >> 32) as u32);
    write(
        t,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER | VIRTIO_CONFIG_S_FEATURES_OK,
    );
}

/// Sets up queue `index` of `size` with its rings at `at` in guest memory.
fn set_up_queue(t: &mut MmioTransport, index: u32, size: u32, at: u64) {
    write(t, VIRTIO_MMIO_QUEUE_SEL, index);
    write(t, VIRTIO_MMIO_QUEUE_NUM, size);
    write(t, VIRTIO_MMIO_QUEUE_DESC_LOW, at as u32);
    write(t, VIRTIO_MMIO_QUEUE_DESC_HIGH, (at >> 32) as u32);
    write(t, VIRTIO_MMIO_QUEUE_AVAIL_LOW, (at + 0x1000) as u32);
    write(t, VIRTIO_MMIO_QUEUE_AVAIL_HIGH, 0);
    write(t, VIRTIO_MMIO_QUEUE_USED_LOW, (at + 0x2000) as u32);
    write(t, VIRTIO_MMIO_QUEUE_USED_HIGH, 0);
    write(t, VIRTIO_MMIO_QUEUE_READY, 1);
}

fn driver_ok(t: &mut MmioTransport) {
    let status = read(t, VIRTIO_MMIO_STATUS);
    write(t, VIRTIO_MMIO_STATUS, status | VIRTIO_CONFIG_S_DRIVER_OK);
}

const MODERN: u64 = 1 << VIRTIO_F_VERSION_1;

/// The whole set-up: modern features, queue 0 of 16, DRIVER_OK.
fn start(t: &mut MmioTransport) {
    negotiate(t, MODERN);
    set_up_queue(t, 0, 16, 0x1_0000);
    driver_ok(t);
}

#[test]
fn identity_registers_read_as_the_spec_says() {
    let (mut t, _) = transport(false);
    assert_eq!(read(&mut t, VIRTIO_MMIO_MAGIC_VALUE), 0x7472_6976);
    assert_eq!(read(&mut t, VIRTIO_MMIO_VERSION), 2);
    assert_eq!(read(&mut t, VIRTIO_MMIO_DEVICE_ID), 2);
    assert_eq!(read(&mut t, VIRTIO_MMIO_VENDOR_ID), 0x554d_4551);
    write(&mut t, VIRTIO_MMIO_QUEUE_SEL, 1);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_NUM_MAX), 8);
    write(&mut t, VIRTIO_MMIO_QUEUE_SEL, 2);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_NUM_MAX), 0, "no third queue");
    write(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 0);
    assert_eq!(read(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), FEATURE as u32);
    write(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 1);
    assert_eq!(read(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), 1, "VERSION_1");
    write(&mut t, VIRTIO_MMIO_DEVICE_FEATURES_SEL, 7);
    assert_eq!(read(&mut t, VIRTIO_MMIO_DEVICE_FEATURES), 0);
}

#[test]
fn features_ok_holds_only_for_offered_modern_features() {
    let (mut t, _) = transport(false);
    negotiate(&mut t, MODERN | FEATURE);
    assert_ne!(
        read(&mut t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK,
        0
    );

    for refused in [FEATURE, MODERN | 1 << 6] {
        let (mut t, _) = transport(false);
        negotiate(&mut t, refused);
        assert_eq!(
            read(&mut t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_FEATURES_OK,
            0,
            "{refused:#x}"
        );
        driver_ok(&mut t);
        assert_eq!(
            read(&mut t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_DRIVER_OK,
            0
        );
    }
}

#[test]
fn driver_ok_activates_the_device_and_notifications_reach_it() {
    let (mut t, calls) = transport(false);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    negotiate(&mut t, MODERN | FEATURE);
    set_up_queue(&mut t, 0, 16, 0x1_0000);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_eq!(t.notifiers()[0].read().ok(), None, "before DRIVER_OK");
    driver_ok(&mut t);
    assert_eq!(calls.lock().unwrap().activated, Some((2, MODERN | FEATURE)));
    write(&mut t, VIRTIO_MMIO_QUEUE_SEL, 0);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_READY), 1);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 1);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 9);
    let calls = calls.lock().unwrap();
    assert_eq!(calls.notifiers[1].read().ok(), Some(2));
    assert_eq!(calls.notifiers[0].read().ok(), None);
}

#[test]
fn queues_outside_guest_memory_or_of_bad_size_need_a_reset() {
    for (size, at) in [(16, 0xfff_0000), (16, 0x8_0000_0000), (12, 0x1_0000)] {
        let (mut t, calls) = transport(false);
        negotiate(&mut t, MODERN);
        set_up_queue(&mut t, 0, size, at);
        driver_ok(&mut t);
        assert!(
            calls.lock().unwrap().activated.is_none(),
            "{size} at {at:#x}"
        );
        let status = read(&mut t, VIRTIO_MMIO_STATUS);
        assert_ne!(status & VIRTIO_CONFIG_S_NEEDS_RESET, 0);
        assert_eq!(
            read(&mut t, VIRTIO_MMIO_INTERRUPT_STATUS),
            VIRTIO_MMIO_INT_CONFIG
        );
        assert_eq!(read(&mut t, VIRTIO_MMIO_CONFIG_GENERATION), 1);
        write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
        assert_eq!(t.notifiers()[0].read().ok(), None);
    }
}

#[test]
fn a_device_that_cannot_start_needs_a_reset() {
    let (mut t, _) = transport(true);
    start(&mut t);
    assert_ne!(
        read(&mut t, VIRTIO_MMIO_STATUS) & VIRTIO_CONFIG_S_NEEDS_RESET,
        0
    );
}

#[test]
fn queue_registers_are_fixed_once_the_driver_is_ok() {
    let (mut t, _) = transport(false);
    start(&mut t);
    write(&mut t, VIRTIO_MMIO_QUEUE_READY, 0);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_READY), 1);
    write(&mut t, VIRTIO_MMIO_QUEUE_SEL, 1);
    write(&mut t, VIRTIO_MMIO_QUEUE_READY, 1);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_READY), 0);
}

#[test]
fn writing_status_zero_resets_device_and_registers() {
    let (mut t, calls) = transport(false);
    start(&mut t);
    t.interrupt.used_buffers();
    write(&mut t, VIRTIO_MMIO_STATUS, 0);
    assert_eq!(calls.lock().unwrap().resets, 1);
    assert_eq!(read(&mut t, VIRTIO_MMIO_STATUS), 0);
    assert_eq!(read(&mut t, VIRTIO_MMIO_INTERRUPT_STATUS), 0);
    assert_eq!(read(&mut t, VIRTIO_MMIO_QUEUE_READY), 0);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_eq!(t.notifiers()[0].read().ok(), None);
    // And it can be set up again.
    start(&mut t);
    write(&mut t, VIRTIO_MMIO_QUEUE_NOTIFY, 0);
    assert_eq!(t.notifiers()[0].read().ok(), Some(1));
}

#[test]
fn interrupts_are_acknowledged_reason_by_reason() {
    let (mut t, _) = transport(false);
    t.interrupt.used_buffers();
    t.interrupt.config_changed();
    assert_eq!(read(&mut t, VIRTIO_MMIO_INTERRUPT_STATUS), 3);
    write(&mut t, VIRTIO_MMIO_INTERRUPT_ACK, VIRTIO_MMIO_INT_VRING);
    assert_eq!(
        read(&mut t, VIRTIO_MMIO_INTERRUPT_STATUS),
        VIRTIO_MMIO_INT_CONFIG
    );
}

#[test]
fn odd_accesses_neither_panic_nor_change_state() {
    let (mut t, _) = transport(false);
    let mut byte = [0xff; 1];
    t.read(0, &mut byte);
    assert_eq!(byte, [0]);
    let mut wide = [0xff; 8];
    t.read(u64::from(VIRTIO_MMIO_MAGIC_VALUE), &mut wide);
    assert_eq!(wide, [0; 8]);
    t.write(u64::from(VIRTIO_MMIO_STATUS), &[1]);
    t.write(u64::from(VIRTIO_MMIO_STATUS) + 2, &[1, 0, 0, 0]);
    assert_eq!(read(&mut t, VIRTIO_MMIO_STATUS), 0);
    // Status bits cannot be taken back, only reset.
    write(
        &mut t,
        VIRTIO_MMIO_STATUS,
        VIRTIO_CONFIG_S_ACKNOWLEDGE | VIRTIO_CONFIG_S_DRIVER,
    );
    write(&mut t, VIRTIO_MMIO_STATUS, VIRTIO_CONFIG_S_ACKNOWLEDGE);
    assert_eq!(read(&mut t, VIRTIO_MMIO_STATUS), 3);
    // Configuration space passes through at any width.
    let mut config = [0; 3];
    t.read(0x102, &mut config);
    assert_eq!(config, [2, 3, 4]);
    for offset in [0x1fc, 0xfff_ffff_ffff] {
        t.read(offset, &mut wide);
    }
}

#[test]
fn the_acpi_node_names_the_window_and_interrupt() {
    let (t, _) = transport(false);
    let mut aml = Vec::new();
    t.append_aml(&mut aml);
    let text = String::from_utf8_lossy(&aml);
    assert!(text.contains("LNRO0005"));
    assert!(aml.windows(4).any(|w| w == (BASE as u32).to_le_bytes()));
}
