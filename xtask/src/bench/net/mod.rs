//! `cargo xtask bench net [firmware] [--quick] [--record]`: kvmon beside
//! QEMU's microvm, each with a virtio-net-device on a tap it creates; on
//! this host's KVM, the test guest streams frames out through the tap, or
//! counts frames this host sends in through it — 1514-byte and 60-byte
//! frames each way: frames/s, Mbit/s and the VMM's CPU time per frame.
//! (A Linux half, a TCP stream in the test host, is still to come.)

mod firmware;

pub fn run(args: &[String]) -> Result<(), String> {
    super::throughput::run("net", args, firmware::part, None)
}
