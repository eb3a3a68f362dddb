//! The power button of a hardware-reduced ACPI machine: a Generic Event
//! Device (`ACPI0013`) whose interrupt makes the guest's OSPM run `_EVT`,
//! which reads the event register and notifies the power button device.
//! The register reads as the pending events and clears them, as QEMU's GED.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;

use acpi_tables::aml::{self, FieldAccessType, FieldEntry, FieldLockRule, FieldUpdateRule};
use acpi_tables::{Aml, AmlSink};

use crate::{BusDevice, DescribeAcpi, IrqLine};

/// The event register: one 32-bit I/O port.
pub const GED_PORT: u64 = 0x604;
/// The power-button event's bit (QEMU's ACPI_GED_PWR_DOWN_EVT).
const POWER_BUTTON: u32 = 1 << 1;

pub struct GenericEventDevice {
    pending: Arc<AtomicU32>,
    irq: IrqLine,
}

impl GenericEventDevice {
    pub const LEN: u64 = 4;

    pub fn new(irq: IrqLine) -> GenericEventDevice {
        GenericEventDevice {
            pending: Arc::new(AtomicU32::new(0)),
            irq,
        }
    }

    /// Forgets pending events (a system reset).
    pub fn reset(&self) {
        self.pending.store(0, Ordering::SeqCst);
    }

    /// Presses the power button: the guest is interrupted and sees the event.
    pub fn press_power_button(&self) {
        self.pending.fetch_or(POWER_BUTTON, Ordering::SeqCst);
        if let Err(error) = self.irq.trigger() {
            log::error!("cannot raise the power button's interrupt: {error}");
        }
    }
}

impl BusDevice for GenericEventDevice {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if offset == 0 && data.len() == 4 {
            let events = self.pending.swap(0, Ordering::SeqCst);
            data.copy_from_slice(&events.to_le_bytes());
        }
    }

    fn write(&mut self, _offset: u64, _data: &[u8]) {}
}

impl DescribeAcpi for GenericEventDevice {
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        let port = GED_PORT as u16;
        aml::Device::new(
            "_SB_.GED_".into(),
            vec![
                &aml::Name::new("_HID".into(), &"ACPI0013"),
                &aml::Name::new("_UID".into(), &aml::ZERO),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![&aml::Interrupt::new(
                        true,
                        true,
                        false,
                        false,
                        self.irq.gsi(),
                    )]),
                ),
                &aml::OpRegion::new(
                    "EREG".into(),
                    aml::OpRegionSpace::SystemIO,
                    &port,
                    &(Self::LEN as u8),
                ),
                &aml::Field::new(
                    "EREG".into(),
                    FieldAccessType::DWord,
                    FieldLockRule::NoLock,
                    FieldUpdateRule::WriteAsZeroes,
                    vec![FieldEntry::Named(*b"ESEL", 32)],
                ),
                &aml::Method::new(
                    "_EVT".into(),
                    1,
                    true,
                    vec![
                        &aml::Store::new(&aml::Local(0), &aml::Path::new("ESEL")),
                        &aml::If::new(
                            &aml::Equal::new(
                                &aml::And::new(&aml::ZERO, &aml::Local(0), &POWER_BUTTON),
                                &POWER_BUTTON,
                            ),
                            vec![&aml::Notify::new(&aml::Path::new("\\_SB_.PWRB"), &0x80u8)],
                        ),
                    ],
                ),
            ],
        )
        .to_aml_bytes(sink);
        aml::Device::new(
            "_SB_.PWRB".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0C0C")),
                &aml::Name::new("_UID".into(), &aml::ZERO),
            ],
        )
        .to_aml_bytes(sink);
    }
}

impl std::fmt::Debug for GenericEventDevice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GenericEventDevice").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_button_interrupts_and_its_event_reads_once() {
        let irq = IrqLine::new(9).unwrap();
        let mut ged = GenericEventDevice::new(irq.clone());
        ged.press_power_button();
        assert_eq!(irq.event().read().unwrap(), 1, "one interrupt");
        let mut data = [0u8; 4];
        ged.read(0, &mut data);
        assert_eq!(u32::from_le_bytes(data), POWER_BUTTON);
        ged.read(0, &mut data);
        assert_eq!(u32::from_le_bytes(data), 0, "read clears");
    }

    #[test]
    fn its_aml_names_the_ged_and_the_button() {
        let ged = GenericEventDevice::new(IrqLine::new(9).unwrap());
        let mut aml = Vec::new();
        ged.append_aml(&mut aml);
        let has = |needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"ACPI0013"));
        assert!(has(b"_EVT"));
        assert!(
            has(&[0x89, 6, 0, 0b11, 1, 9, 0, 0, 0]),
            "edge, consumer, GSI 9"
        );
    }
}
