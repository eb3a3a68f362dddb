//! The i8042 keyboard controller, for the one thing guests use it for on a
//! machine without a keyboard: command 0xFE pulses the CPU reset line.

use std::sync::Arc;

use vm_superio::I8042Device;

use crate::{ByteRegisters, DeviceRequest, MachineControl};

/// The controller's reset line, wired to the machine.
struct ResetLine(Arc<dyn MachineControl>);

impl vm_superio::Trigger for ResetLine {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        log::debug!("the guest resets the machine through the keyboard controller");
        self.0.request(DeviceRequest::Reset);
        Ok(())
    }
}

/// Ports 0x60 (data) and 0x64 (status and command): offsets 0 and 4.
pub struct I8042 {
    controller: I8042Device<ResetLine>,
}

impl I8042 {
    pub const PORT: u64 = 0x60;
    pub const LEN: u64 = 5;

    pub fn new(power: Arc<dyn MachineControl>) -> I8042 {
        I8042 {
            controller: I8042Device::new(ResetLine(power)),
        }
    }
}

impl ByteRegisters for I8042 {
    fn read_byte(&mut self, offset: u8) -> u8 {
        self.controller.read(offset)
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        // The only error is the reset trigger's, which cannot fail.
        let _ = self.controller.write(offset, value);
    }
}

impl std::fmt::Debug for I8042 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("I8042").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::Recorded;
    use crate::BusDevice;

    #[test]
    fn command_0xfe_resets_and_others_do_not() {
        let requests = Arc::new(Recorded::default());
        let mut i8042 = I8042::new(requests.clone());
        i8042.write(4, &[0x20]); // read the command byte
        let mut status = [0u8];
        i8042.read(4, &mut status);
        assert!(requests.0.lock().unwrap().is_empty());
        i8042.write(4, &[0xfe]);
        assert_eq!(*requests.0.lock().unwrap(), [DeviceRequest::Reset]);
    }
}
