//! `cargo xtask bench blk [firmware|linux] [--quick] [--record]`: kvmon
//! beside QEMU's microvm, a virtio-blk disk on the same raw image with
//! cache=none, in two settings:
//!
//! - firmware: on this host's KVM, the test guest drives the disk itself,
//!   one request at a time — sequential 64 KiB and random 4 KiB reads and
//!   writes;
//! - linux: in the test host (real KVM), Debian's kernel with its own
//!   virtio_blk driver, and dd with O_DIRECT — sequential 64 KiB and 4 KiB
//!   reads and writes.
//!
//! For each: requests/s, MiB/s, and the VMM's CPU time per request
//! (bench/throughput.rs).

mod firmware;
mod linux;

use super::throughput::Units;

/// The image both VMMs use, in each setting.
const IMAGE_BYTES: u64 = 256 << 20;

const UNITS: Units = Units {
    item: "request",
    rate: true,
    bits: false,
};

pub fn run(args: &[String]) -> Result<(), String> {
    super::throughput::run("blk", args, firmware::part, linux::part)
}
