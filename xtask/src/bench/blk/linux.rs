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

use super::{in_turn, table, Figures, Mode, IMAGE_BYTES, MODERN_MMIO};
use crate::bench::linux;
use crate::bench::stats::{thread_times_command, vmm_cpu_between};

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
/// Failed rounds, over the whole benchmark, before it gives up.
const MAX_FAILURES: usize = 2;

struct Vmm {
    program: &'static str,
    machine: &'static [&'static str],
    globals: &'static [&'static str],
}

const KVMON: Vmm = Vmm {
    program: "kvmon",
    machine: &[],
    globals: &[],
};
const QEMU: Vmm = Vmm {
    program: linux::QEMU,
    machine: linux::MICROVM,
    globals: MODERN_MMIO,
};

pub fn part(quick: bool) -> Result<String, String> {
    let (runs, requests) = if quick { (1, 100) } else { (5, 2000) };
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    let mut failures = 0;
    while ours.len() < runs {
        let round = ours.len() + 1;
        // Each round in a test host of its own, the VMMs taking turns at
        // going first.
        let mut host = TestHost::fresh();
        match in_turn(round % 2 == 0, &KVMON, &QEMU, |vmm| {
            measure(&mut host, vmm, requests)
        }) {
            Ok((a, b)) => {
                println!("linux, round {round}: kvmon {a:?}\n  QEMU {b:?}");
                ours.push(a);
                theirs.push(b);
            }
            // Guests in the emulated test host hang now and then, under
            // either VMM (RCU stalls): such a round is told and done again.
            Err(error) if failures < MAX_FAILURES => {
                failures += 1;
                println!("linux, round {round} failed, once more: {error}");
            }
            Err(error) => return Err(error),
        }
    }
    Ok(format!(
        "Linux in the test host: Debian's kernel (PVH vmlinux), `-m {RAM_MIB} -smp 1`, its \
         virtio_blk driver, `dd` with O_DIRECT on /dev/vda, {requests} requests per run, median \
         of {runs} run(s) per VMM, each round in a freshly booted test host; cache=none on a {} \
         MiB image on ext2.\n\n{}",
        IMAGE_BYTES >> 20,
        table(&MODES, &ours, &theirs)
    ))
}

/// One boot of `vmm` in `host` that runs each mode's dd: its figures.
fn measure(host: &mut TestHost, vmm: &Vmm, requests: u64) -> Result<Vec<Figures>, String> {
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
    let mut args: Vec<&str> = [vmm.machine, vmm.globals].concat();
    args.extend_from_slice(&[
        "-m",
        RAM_MIB,
        "-smp",
        "1",
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        "vmlinux",
        "-initrd",
        "initramfs.cpio",
        "-append",
        &append,
        "-drive",
        &drive,
        "-device",
        "virtio-blk-device,drive=disk0",
    ]);
    let note_threads = format!("read pid <$run/pid; {}", thread_times_command("$pid"));
    let mut run = host.start_noting(vmm.program, &args, "testhost-guest: dd ", &note_threads);
    // The guest powers off after the last dd.
    run.try_wait_for_output(linux::POWERED_DOWN, 1, TIMEOUT)
        .map_err(|e| format!("{}: {e}", vmm.program))?;
    let notes = run.noted();
    let mut figures = Vec::new();
    for (mode, job) in MODES.iter().zip(&jobs) {
        let note = |what: &str| {
            let needle = format!("dd {what} {job}");
            notes
                .iter()
                .find(|(line, _)| line.contains(&needle))
                .ok_or_else(|| format!("{}: no line {needle:?} was noted", vmm.program))
        };
        let (_, before) = note("begin")?;
        let (line, after) = note("end")?;
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
                .unwrap_or_default()
        };
        if field("status") != "0" {
            return Err(format!("{}: dd failed: {line}", vmm.program));
        }
        let uptime = |name| {
            field(name)
                .parse::<f64>()
                .map_err(|_| format!("{}: no {name} time in {line:?}", vmm.program))
        };
        let elapsed = Duration::from_secs_f64((uptime("end")? - uptime("start")?).max(0.0));
        figures.push(Figures::new(
            requests,
            mode.bytes,
            elapsed,
            vmm_cpu_between(before, after).map_err(|e| format!("{}: {e}", vmm.program))?,
        ));
    }
    Ok(figures)
}
