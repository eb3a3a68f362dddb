//! The Linux half of `bench blk`: in the test host (real KVM), Debian's
//! kernel under kvmon and under QEMU's microvm, each with the same
//! initramfs, RAM and CPU, and dd with O_DIRECT on /dev/vda through
//! Linux's own virtio_blk driver (the guest init's `dd-bench` scenario).
//!
//! The image lives on an ext2 file system on a loop device in the test
//! host, since the test host's tmpfs takes no O_DIRECT and both VMMs are
//! given cache=none.  The guest times each dd by its own clock; the VMM's
//! thread times are read in the test host as the guest's lines announcing
//! a dd and reporting it done pass through.

use std::time::Duration;

use kvmon_tests::testhost::TestHost;

use super::{IMAGE_BYTES, UNITS};
use crate::bench::linux;
use crate::bench::stats::thread_times_command;
use crate::bench::throughput::{
    guest_timed, rounds_in_test_hosts, table, Figures, Mode, TestHostVmm,
};

const MODES: [Mode; 4] = [
    Mode {
        label: "dd, 64 KiB reads",
        guest: "read:64k",
        bytes: 64 << 10,
    },
    Mode {
        label: "dd, 64 KiB writes",
        guest: "write:64k",
        bytes: 64 << 10,
    },
    Mode {
        label: "dd, 4 KiB reads",
        guest: "read:4k",
        bytes: 4 << 10,
    },
    Mode {
        label: "dd, 4 KiB writes",
        guest: "write:4k",
        bytes: 4 << 10,
    },
];
const RAM_MIB: &str = "256";
/// How long one boot with its four dd runs may take in the test host.
const TIMEOUT: Duration = Duration::from_secs(180);

pub fn part(quick: bool) -> Result<String, String> {
    let (runs, requests) = if quick { (1, 100) } else { (5, 2000) };
    let (ours, theirs) = rounds_in_test_hosts(runs, |host, vmm| measure(host, vmm, requests))?;
    Ok(format!(
        "Linux in the test host: Debian's kernel (PVH vmlinux), `-m {RAM_MIB} -smp 1`, its \
         virtio_blk driver, `dd` with O_DIRECT on /dev/vda, {requests} requests per run, median \
         of {runs} run(s) per VMM, each round in a freshly booted test host; cache=none on a {} \
         MiB image on ext2.\n\n{}",
        IMAGE_BYTES >> 20,
        table(&MODES, &UNITS, &ours, &theirs)
    ))
}

/// One boot of `vmm` in `host` that runs each mode's dd: its figures.
fn measure(host: &mut TestHost, vmm: &TestHostVmm, requests: u64) -> Result<Vec<Figures>, String> {
    let image = "/mnt/disk.img";
    // Made once per test host, and written back before each VMM starts: a
    // VMM's O_DIRECT writes would otherwise first wait for dirty pages the
    // image was made with, or its predecessor left.
    host.shell(&format!(
        "[ -e {image} ] || {{ dd if=/dev/zero of=/tmp/fs.img bs=1M count=0 seek={fs} \
         2>/dev/null && losetup /dev/loop0 /tmp/fs.img && mke2fs -q -b 4096 /dev/loop0 >/dev/null && \
         mkdir -p /mnt && mount -t ext2 /dev/loop0 /mnt && \
         dd if=/dev/zero of={image} bs=1M count={mib} 2>/dev/null; }}; \
         sync && echo 3 >/proc/sys/vm/drop_caches",
        fs = (IMAGE_BYTES >> 20) + 64,
        mib = IMAGE_BYTES >> 20,
    ));
    let jobs: Vec<String> = MODES
        .iter()
        .map(|mode| format!("{}:{requests}", mode.guest))
        .collect();
    let append = format!(
        "console=ttyS0 quiet scenario=dd-bench dd={}",
        jobs.join(",")
    );
    let drive = format!("file={image},format=raw,if=none,id=disk0,cache=none");
    let mut args = vmm.linux_args(RAM_MIB, &append);
    args.extend_from_slice(&["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"]);
    let note_threads = format!("read pid <$run/pid; {}", thread_times_command("$pid"));
    let mut run = host.start_noting(vmm.program, &args, "testhost-guest: dd ", &note_threads);
    // The guest powers off after the last dd.
    run.try_wait_for_output(linux::POWERED_DOWN, 1, TIMEOUT)
        .map_err(|e| format!("{}: {e}", vmm.program))?;
    let notes = run.noted();
    let mut figures = Vec::new();
    for (mode, job) in MODES.iter().zip(&jobs) {
        let (elapsed, cpu) =
            guest_timed(&notes, &format!("dd begin {job}"), &format!("dd end {job}"))
                .map_err(|e| format!("{}: {e}", vmm.program))?;
        figures.push(Figures::new(requests, mode.bytes, elapsed, cpu));
    }
    Ok(figures)
}
