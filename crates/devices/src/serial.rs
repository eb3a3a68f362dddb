//! COM1: a 16550 UART (vm-superio's) whose output goes to a chardev sink
//! and whose input the main loop feeds from the chardev.

use std::io::{self, Write};

use acpi_tables::{aml, Aml, AmlSink};
use vm_superio::serial::NoEvents;

use crate::{ByteRegisters, DescribeAcpi, IrqLine};

pub const COM1_PORT: u64 = 0x3f8;
pub const COM1_IRQ: u32 = 4;

/// Where the guest's output goes: a writer that never fails the guest (a
/// failed write is logged once and the byte dropped, as when nobody listens).
pub struct Sink {
    out: Box<dyn Write + Send>,
    failed: bool,
}

impl Write for Sink {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        match self.out.write_all(data) {
            Ok(()) => self.failed = false,
            Err(error) if !self.failed => {
                log::warn!("serial output lost: {error}");
                self.failed = true;
            }
            Err(_) => {}
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        let _ = self.out.flush();
        Ok(())
    }
}

pub struct Serial {
    uart: vm_superio::Serial<IrqLine, NoEvents, Sink>,
    irq: IrqLine,
}

impl Serial {
    pub fn new(irq: IrqLine, out: Box<dyn Write + Send>) -> Serial {
        let sink = Sink { out, failed: false };
        Serial {
            uart: vm_superio::Serial::new(irq.clone(), sink),
            irq,
        }
    }

    /// Returns the UART to its power-on state (a system reset); the output
    /// keeps its chardev.
    pub fn reset(&mut self) {
        let idle = Sink {
            out: Box::new(io::sink()),
            failed: false,
        };
        let sink = std::mem::replace(self.uart.writer_mut(), idle);
        self.uart = vm_superio::Serial::new(self.irq.clone(), sink);
    }

    /// Input from the chardev; returns how many bytes the FIFO took (what
    /// it has no room for waits with the caller).
    pub fn enqueue(&mut self, input: &[u8]) -> usize {
        let room = input.len().min(self.uart.fifo_capacity());
        if room == 0 {
            return 0;
        }
        match self.uart.enqueue_raw_bytes(&input[..room]) {
            Ok(taken) => taken,
            Err(error) => {
                log::warn!("serial input dropped: {error:?}");
                0
            }
        }
    }
}

impl ByteRegisters for Serial {
    fn read_byte(&mut self, offset: u8) -> u8 {
        self.uart.read(offset)
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        if let Err(error) = self.uart.write(offset, value) {
            log::warn!("serial: {error:?}");
        }
    }
}

impl DescribeAcpi for Serial {
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        let port = COM1_PORT as u16;
        aml::Device::new(
            "_SB_.COM1".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0501")),
                &aml::Name::new("_UID".into(), &aml::ZERO),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::IO::new(port, port, 1, 8),
                        &aml::Interrupt::new(true, true, false, false, self.irq.gsi()),
                    ]),
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}

impl std::fmt::Debug for Serial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Serial").finish_non_exhaustive()
    }
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BusDevice;
    use std::sync::{Arc, Mutex};

    /// A sink the test can read.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_reset_clears_the_registers_and_keeps_the_output() {
        let out = Shared::default();
        let mut serial = Serial::new(IrqLine::new(4).unwrap(), Box::new(out.clone()));
        let line_control = 3;
        serial.write(line_control, &[0x80]); // DLAB on
        let mut value = [0u8];
        serial.read(line_control, &mut value);
        assert_eq!(value[0], 0x80);
        serial.reset();
        serial.read(line_control, &mut value);
        assert_eq!(value[0] & 0x80, 0, "DLAB off after the reset");
        serial.write(0, b"k");
        assert_eq!(*out.0.lock().unwrap(), b"k");
    }
}
