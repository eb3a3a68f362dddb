//! A device's interrupt line: an eventfd that the machine registers with
//! KVM as an irqfd for the line's GSI, so raising it needs no ioctl.

use std::io;
use std::sync::Arc;

use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

/// An edge on a GSI of the in-kernel I/O APIC.
#[derive(Debug, Clone)]
pub struct IrqLine {
    gsi: u32,
    event: Arc<EventFd>,
}

impl IrqLine {
    pub fn new(gsi: u32) -> io::Result<IrqLine> {
        Ok(IrqLine {
            gsi,
            event: Arc::new(EventFd::new(EFD_NONBLOCK)?),
        })
    }

    pub fn gsi(&self) -> u32 {
        self.gsi
    }

    /// The eventfd to register as the GSI's irqfd.
    pub fn event(&self) -> &EventFd {
        &self.event
    }

    /// Raises the interrupt (an edge: the irqfd asserts and deasserts).
    pub fn trigger(&self) -> io::Result<()> {
        self.event.write(1)
    }
}

impl vm_superio::Trigger for IrqLine {
    type E = io::Error;

    fn trigger(&self) -> io::Result<()> {
        IrqLine::trigger(self)
    }
}
