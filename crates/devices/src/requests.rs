//! How devices ask the machine for what only it can do: reset or power
//! off (the reset and sleep registers, the keyboard controller's reset
//! line), act on an expired watchdog, or on a guest's panic report.

/// What a device asks of the machine.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceRequest {
    /// The guest reset the machine.
    Reset,
    /// The guest powered the machine off (ACPI S5).
    PowerOff,
    /// The watchdog's timer ran out.
    WatchdogExpired,
    /// The guest reported an event through pvpanic.
    Panic(PanicEvent),
}

/// The events of QEMU's pvpanic device, one bit each on its port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PanicEvent {
    /// The guest panicked.
    Panicked,
    /// The guest panicked and has loaded a crash kernel.
    CrashLoaded,
    /// The guest shut down (pvpanic's "shutdown" bit).
    Shutdown,
}

/// Carries requests from the thread that ran the device to the machine.
pub trait MachineControl: Send + Sync {
    fn request(&self, request: DeviceRequest);
}

/// What the devices asked, for their tests.
#[cfg(test)]
#[derive(Debug, Default)]
pub struct Recorded(pub std::sync::Mutex<Vec<DeviceRequest>>);

#[cfg(test)]
impl MachineControl for Recorded {
    fn request(&self, request: DeviceRequest) {
        self.0.lock().unwrap().push(request);
    }
}
