//! The end-to-end harness: start kvmon (or QEMU, the reference) as a real
//! process in a private directory, and talk QMP to it over real sockets.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

pub mod client;
pub mod process;
pub mod testhost;

pub use client::{cont, event, events_within, named, normalize, query_status, with_data, Client};
pub use process::{
    default_firmware, kvmon_bin, qemu_bin, run_kvmon, test_guest, TempDir, Vmm, QEMU_KVM,
};
