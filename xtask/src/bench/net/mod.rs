//! `cargo xtask bench net [firmware|linux] [--quick] [--record]`: kvmon
//! beside QEMU's microvm, each with a virtio-net-device on a tap it
//! creates, in two settings:
//!
//! - firmware: on this host's KVM, the test guest streams frames out
//!   through the tap, or counts frames this host sends in through it —
//!   1514-byte and 60-byte frames each way: frames/s, Mbit/s and the VMM's
//!   CPU time per frame;
//! - linux: in the test host (real KVM), Debian's kernel with its own
//!   virtio_net driver and a TCP stream each way between guest and test
//!   host (busybox nc): Mbit/s and the VMM's CPU time per MiB.

mod firmware;
mod linux;

pub fn run(args: &[String]) -> Result<(), String> {
    super::throughput::run("net", args, firmware::part, linux::part)
}
