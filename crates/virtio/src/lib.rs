//! kvmon's virtio devices and the transport that carries them: a device
//! implements [`VirtioDevice`] (identity, features, configuration space,
//! the work on its queues) and knows nothing of its transport; the
//! virtio-mmio transport ([`MmioTransport`]) gives it a register window on
//! the MMIO bus and an ACPI node through which the guest finds it.
//! Virtqueues are the virtio-queue crate's, which checks every descriptor a
//! guest writes.

pub mod balloon;
pub mod block;
mod device;
mod device_thread;
mod mmio;
pub mod net;
mod polling;
mod response_time;
mod segments;
#[cfg(test)]
mod testing;

pub use device::{ActivateError, Activation, Interrupt, VirtioDevice};
pub(crate) use device_thread::{wait_for, DeviceThread};
pub use mmio::{MmioTransport, MMIO_WINDOW};
pub(crate) use polling::AdaptivePoll;

/// The C library's text for an error, without Rust's "(os error N)".
pub fn os_text(error: &std::io::Error) -> String {
    let text = error.to_string();
    match text.split(" (os error").next() {
        Some(text) => text.to_string(),
        None => text,
    }
}
