//! The i8042 keyboard controller, for the one thing guests use it for on a
//! machine without a keyboard: command 0xFE pulses the CPU reset line.

use std::sync::Arc;

use vm_superio::I8042Device;

use crate::{BusDevice, PowerControl, PowerRequest};

/// The controller's reset line, wired to the machine.
struct ResetLine(Arc<dyn PowerControl>);

impl vm_superio::Trigger for ResetLine {
    type E = std::convert::Infallible;

    fn trigger(&self) -> Result<(), Self::E> {
        self.0.request(PowerRequest::Reset);
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

    pub fn new(power: Arc<dyn PowerControl>) -> I8042 {
        I8042 {
            controller: I8042Device::new(ResetLine(power)),
        }
    }
}

impl BusDevice for I8042 {
    fn read(&mut self, offset: u64, data: &mut [u8]) {
        data.fill(0);
        if let (Ok(offset), Some(first)) = (u8::try_from(offset), data.first_mut()) {
            *first = self.controller.read(offset);
        }
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        if let (Ok(offset), Some(&value)) = (u8::try_from(offset), data.first()) {
            // The only error is the reset trigger's, which cannot fail.
            let _ = self.controller.write(offset, value);
        }
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
    use std::sync::Mutex;

    #[derive(Default)]
    struct Requests(Mutex<Vec<PowerRequest>>);

    impl PowerControl for Requests {
        fn request(&self, request: PowerRequest) {
            self.0.lock().unwrap().push(request);
        }
    }

    #[test]
    fn command_0xfe_resets_and_others_do_not() {
        let requests = Arc::new(Requests::default());
        let mut i8042 = I8042::new(requests.clone());
        i8042.write(4, &[0x20]); // read the command byte
        let mut status = [0u8];
        i8042.read(4, &mut status);
        assert!(requests.0.lock().unwrap().is_empty());
        i8042.write(4, &[0xfe]);
        assert_eq!(*requests.0.lock().unwrap(), [PowerRequest::Reset]);
    }
}
