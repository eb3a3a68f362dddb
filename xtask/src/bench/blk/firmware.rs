//! The firmware half of `bench blk`: kvmon and QEMU's microvm, both on this
//! host's KVM, with the test guest driving the disk itself, one request at
//! a time (`blk-bench MODE COUNT`), sequentially or at random offsets.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::time::Instant;

use kvmon_tests::QEMU_KVM;

use super::{IMAGE_BYTES, UNITS};
use crate::bench::stats::{thread_times, vmm_cpu_between};
use crate::bench::throughput::{in_turn, start_test_guest, table, Figures, Mode, MODERN_MMIO};

const MODES: [Mode; 4] = [
    Mode {
        label: "sequential 64 KiB reads",
        guest: "seq-read",
        bytes: 64 << 10,
    },
    Mode {
        label: "sequential 64 KiB writes",
        guest: "seq-write",
        bytes: 64 << 10,
    },
    Mode {
        label: "random 4 KiB reads",
        guest: "rand-read",
        bytes: 4 << 10,
    },
    Mode {
        label: "random 4 KiB writes",
        guest: "rand-write",
        bytes: 4 << 10,
    },
];

pub fn part(quick: bool) -> Result<String, String> {
    let (runs, requests) = if quick { (1, 300) } else { (5, 3000) };
    let dir = crate::root().join("target/bench-blk");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Written out, not sparse: a first write that allocates the file's
    // blocks would favour whichever VMM comes second.
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![0u8; IMAGE_BYTES as usize])
        .map_err(|e| format!("cannot create {}: {e}", image.display()))?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    // The VMMs take turns, each going first every other round, so that
    // both see the same host.
    for number in 0..runs {
        let (a, b) = round(&image, &MODES, requests, number % 2 == 1)?;
        println!("firmware, round {}: kvmon {a:?}\n  QEMU {b:?}", number + 1);
        ours.push(a);
        theirs.push(b);
    }
    Ok(format!(
        "Firmware test guest on this host's KVM, one request at a time, {requests} requests \
         per run, median of {runs} run(s) per VMM, cache=none on a {} MiB image.\n\n{}",
        IMAGE_BYTES >> 20,
        table(&MODES, &UNITS, &ours, &theirs)
    ))
}

/// Each mode's figures from one run of each VMM: (kvmon, QEMU).
fn round(
    image: &Path,
    modes: &[Mode],
    requests: u64,
    qemu_first: bool,
) -> Result<(Vec<Figures>, Vec<Figures>), String> {
    let kvmon = crate::root().join("target/release/kvmon");
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let qemu_machine = qemu_args();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for mode in modes {
        let (a, b) = in_turn(
            qemu_first,
            (&kvmon, &[][..]),
            (&qemu, &qemu_machine[..]),
            |(program, machine)| measure(program, machine, image, mode, requests),
        )?;
        ours.push(a);
        theirs.push(b);
    }
    Ok((ours, theirs))
}

/// QEMU's microvm on KVM with the modern virtio-mmio transport kvmon has.
fn qemu_args() -> Vec<&'static str> {
    [QEMU_KVM, MODERN_MMIO].concat()
}

fn measure(
    program: &Path,
    machine: &[&str],
    image: &Path,
    mode: &Mode,
    requests: u64,
) -> Result<Figures, String> {
    let drive = format!(
        "file={},format=raw,if=none,id=disk0,cache=none",
        image.display()
    );
    let (mut child, stdout) = start_test_guest(
        program,
        machine,
        "256",
        &format!("blk-bench {} {requests}", mode.guest),
        &["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"],
    )?;
    let pid = child.id();
    let mut begin = None;
    let mut result = Err(format!(
        "{} never finished {}",
        program.display(),
        mode.guest
    ));
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("cannot read the serial port: {e}"))?;
        if line.contains("blk-bench begin") {
            begin = Some((Instant::now(), thread_times(pid)));
        } else if line.contains("blk-bench end") {
            let Some((started, threads_before)) = begin.take() else {
                break;
            };
            let elapsed = started.elapsed();
            let cpu = match vmm_cpu_between(&threads_before, &thread_times(pid)) {
                Ok(cpu) => cpu,
                Err(error) => {
                    result = Err(error);
                    break;
                }
            };
            if !line.contains("failed=0") {
                result = Err(format!("requests failed: {line}"));
                break;
            }
            result = Ok(Figures::new(requests, mode.bytes, elapsed, cpu));
        } else if line.contains("kvmon-test: error") {
            result = Err(line);
            break;
        }
    }
    // The guest powers off at the end; anything left is stopped.
    let _ = child.kill();
    let _ = child.wait();
    result
}
