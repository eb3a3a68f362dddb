//! QEMU's ISA pvpanic device: one I/O port whose read tells the events it
//! supports and whose write reports one — a panic, a panic with a crash
//! kernel loaded, or a shutdown — to the machine.  Its ACPI node
//! (`QEMU0001`) is what Linux's pvpanic-mmio driver binds to.

use std::sync::Arc;

use acpi_tables::{aml, Aml, AmlSink};

use crate::{ByteRegisters, DescribeAcpi, DeviceRequest, MachineControl, PanicEvent};

/// QEMU's default port.
pub const PVPANIC_PORT: u16 = 0x505;
/// The events QEMU 10 announces: panicked, crash loaded, shutdown.
pub const PVPANIC_EVENTS: u8 = 0x07;

const PANICKED: u8 = 1 << 0;
const CRASH_LOADED: u8 = 1 << 1;
const SHUTDOWN: u8 = 1 << 2;

pub struct PvPanic {
    port: u16,
    events: u8,
    machine: Arc<dyn MachineControl>,
    warned: bool,
}

impl PvPanic {
    pub fn new(port: u16, events: u8, machine: Arc<dyn MachineControl>) -> PvPanic {
        PvPanic {
            port,
            events,
            machine,
            warned: false,
        }
    }
}

impl ByteRegisters for PvPanic {
    fn read_byte(&mut self, _offset: u8) -> u8 {
        self.events
    }

    /// As QEMU: the first event set, in the order panicked, crash loaded,
    /// shutdown; whatever `events` announced.
    fn write_byte(&mut self, _offset: u8, value: u8) {
        if value & !(PANICKED | CRASH_LOADED | SHUTDOWN) != 0 && !self.warned {
            self.warned = true;
            log::warn!("pvpanic: unknown event {value:#x}");
        }
        let event = if value & PANICKED != 0 {
            PanicEvent::Panicked
        } else if value & CRASH_LOADED != 0 {
            PanicEvent::CrashLoaded
        } else if value & SHUTDOWN != 0 {
            PanicEvent::Shutdown
        } else {
            return;
        };
        log::info!("the guest reports {event:?} through pvpanic");
        self.machine.request(DeviceRequest::Panic(event));
    }
}

impl DescribeAcpi for PvPanic {
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        aml::Device::new(
            "_SB_.PEVT".into(),
            vec![
                &aml::Name::new("_HID".into(), &"QEMU0001"),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![&aml::IO::new(self.port, self.port, 1, 1)]),
                ),
                &aml::Name::new("_STA".into(), &0x0fu8),
            ],
        )
        .to_aml_bytes(sink);
    }
}

impl std::fmt::Debug for PvPanic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PvPanic")
            .field("port", &self.port)
            .field("events", &self.events)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::Recorded;

    #[test]
    fn reads_its_events_and_reports_the_first_event_written() {
        let recorded = Arc::new(Recorded::default());
        let mut pvpanic = PvPanic::new(PVPANIC_PORT, PVPANIC_EVENTS, recorded.clone());
        assert_eq!(pvpanic.read_byte(0), 7);
        for value in [1, 3, 2, 6, 4, 0, 8] {
            pvpanic.write_byte(0, value);
        }
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [
                DeviceRequest::Panic(PanicEvent::Panicked),
                DeviceRequest::Panic(PanicEvent::Panicked),
                DeviceRequest::Panic(PanicEvent::CrashLoaded),
                DeviceRequest::Panic(PanicEvent::CrashLoaded),
                DeviceRequest::Panic(PanicEvent::Shutdown),
            ]
        );
    }

    #[test]
    fn its_acpi_node_names_qemu0001_and_its_port() {
        let pvpanic = PvPanic::new(0x506, 1, Arc::new(Recorded::default()));
        let mut aml = Vec::new();
        pvpanic.append_aml(&mut aml);
        let has = |needle: &[u8]| aml.windows(needle.len()).any(|w| w == needle);
        assert!(has(b"QEMU0001"));
        assert!(
            has(&[0x47, 0x01, 0x06, 0x05, 0x06, 0x05, 0x01, 0x01]),
            "{aml:x?}"
        );
    }
}
