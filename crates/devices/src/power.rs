//! How devices ask the machine to reset or power off (the reset and sleep
//! registers, the keyboard controller's reset line).

/// What a device asks of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PowerRequest {
    /// The guest reset the machine.
    Reset,
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
}

/// Carries requests from the vCPU thread that ran the device to the machine.
pub trait PowerControl: Send + Sync {
    fn request(&self, request: PowerRequest);
}

/// What the devices asked, for their tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorded(pub std::sync::Mutex<Vec<PowerRequest>>);

#[cfg(test)]
impl PowerControl for Recorded {
    fn request(&self, request: PowerRequest) {
        self.0.lock().unwrap().push(request);
    }
}
