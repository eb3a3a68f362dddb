//! The Linux half of `bench net`: in the test host (real KVM), Debian's
//! kernel under kvmon and under QEMU's microvm, each with a
//! virtio-net-device on a tap it creates, and Linux's own virtio_net
//! driver.  The guest (the guest init's `nc-bench` scenario) sends a TCP
//! stream to the test host with busybox nc, then takes one from it, and
//! times each by its own clock; the VMM's thread times are read in the
//! test host as the guest's lines announcing a stream and reporting it
//! done pass through.

use std::time::Duration;

use kvmon_tests::testhost::TestHost;

use crate::bench::linux;
use crate::bench::stats::thread_times_command;
use crate::bench::throughput::{
    guest_timed, rounds_in_test_hosts, table, Figures, Mode, TestHostVmm, Units,
};

const MODES: [Mode; 2] = [
    Mode {
        label: "TCP, guest→host",
        guest: "tx",
        bytes: 1 << 20,
    },
    Mode {
        label: "TCP, host→guest",
        guest: "rx",
        bytes: 1 << 20,
    },
];
const UNITS: Units = Units {
    item: "MiB",
    rate: false,
    bits: true,
};
const RAM_MIB: &str = "256";
/// How long one boot with both streams may take in the test host.
const TIMEOUT: Duration = Duration::from_secs(240);
/// The test host's listener, then its end of the tap: the guest's pings
/// answer only once the listener is there.
const HOST_SETUP: &str =
    "{ nc -l -p 5000 -e sh -c 'cat >/dev/null' </dev/null >/dev/null 2>&1 & }; \
     until ip link show ktap0 >/dev/null 2>&1; do usleep 10000; done; \
     ip addr add 169.254.10.1/24 dev ktap0 && ip link set ktap0 up";

pub fn part(quick: bool) -> Result<String, String> {
    let (runs, mib) = if quick { (1, 4) } else { (5, 32) };
    let (ours, theirs) = rounds_in_test_hosts(runs, |host, vmm| measure(host, vmm, mib))?;
    Ok(format!(
        "Linux in the test host: Debian's kernel (PVH vmlinux), `-m {RAM_MIB} -smp 1`, its \
         virtio_net driver, a tap in the test host; a {mib} MiB TCP stream each way with busybox \
         nc, median of {runs} run(s) per VMM, each round in a freshly booted test host.\n\n{}",
        table(&MODES, &UNITS, &ours, &theirs)
    ))
}

/// One boot of `vmm` in `host` that streams each way: its figures.
fn measure(host: &mut TestHost, vmm: &TestHostVmm, mib: u64) -> Result<Vec<Figures>, String> {
    let append = format!("console=ttyS0 quiet scenario=nc-bench mib={mib}");
    let mut args = vmm.linux_args(RAM_MIB, &append);
    args.extend_from_slice(&[
        "-netdev",
        "tap,id=n0,ifname=ktap0,script=no,downscript=no",
        "-device",
        "virtio-net-device,netdev=n0",
    ]);
    let note_threads = format!("read pid <$run/pid; {}", thread_times_command("$pid"));
    let mut run = host.start_noting(vmm.program, &args, "testhost-guest: nc ", &note_threads);
    run.shell(HOST_SETUP);
    let failed = |e: String| format!("{}: {e}", vmm.program);
    run.try_wait_for_output("testhost-guest: nc begin rx", 1, TIMEOUT)
        .map_err(failed)?;
    // The guest's listener may not be bound yet when it says so.
    run.try_shell(&format!(
        "for i in $(seq 50); do \
           dd if=/dev/zero bs=64k count={} 2>/dev/null | nc 169.254.10.2 5001 2>/dev/null && break; \
           usleep 100000; \
         done",
        mib * 16
    ))
    .map_err(failed)?;
    run.try_wait_for_output(linux::POWERED_DOWN, 1, TIMEOUT)
        .map_err(failed)?;
    let notes = run.noted();
    MODES
        .iter()
        .map(|mode| {
            let (elapsed, cpu) = guest_timed(
                &notes,
                &format!("nc begin {}", mode.guest),
                &format!("nc end {}", mode.guest),
            )
            .map_err(failed)?;
            Ok(Figures::new(mib, mode.bytes, elapsed, cpu))
        })
        .collect()
}
