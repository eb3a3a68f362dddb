//! COM1: a 16550 UART (vm-superio's) whose output goes to a chardev sink
//! and whose input the main loop feeds from the chardev.

use std::io::{self, Write};

use acpi_tables::{aml, Aml, AmlSink};
use vm_superio::serial::NoEvents;

use crate::{BusDevice, DescribeAcpi, IrqLine};

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

impl BusDevice for Serial {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Ok(offset), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.uart.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) {
            if let Err(error) = self.uart.write(offset, value) {
                log::warn!("serial: {error:?}");
            }
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
