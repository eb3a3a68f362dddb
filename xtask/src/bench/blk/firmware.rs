//! The firmware half of `bench blk`: kvmon and QEMU's microvm, both on this
//! host's KVM, with the test guest driving the disk itself, one request at
//! a time (`blk-bench MODE COUNT`), sequentially or at random offsets.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use kvmon_tests::{test_guest, QEMU_KVM};

use super::{Figures, Mode};
use crate::bench::stats::{thread_times, vmm_cpu_between};

/// Each mode's figures from one run of each VMM: (kvmon, QEMU).
pub fn round(
    image: &Path,
    modes: &[Mode],
    requests: u64,
    qemu_first: bool,
) -> Result<(Vec<Figures>, Vec<Figures>), String> {
    let kvmon = crate::root().join("target/release/kvmon");
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for mode in modes {
        let ours_now = || measure(&kvmon, &[], image, mode, requests);
        let theirs_now = || measure(&qemu, &qemu_args(), image, mode, requests);
        if qemu_first {
            theirs.push(theirs_now()?);
            ours.push(ours_now()?);
        } else {
            ours.push(ours_now()?);
            theirs.push(theirs_now()?);
        }
    }
    Ok((ours, theirs))
}

/// QEMU's microvm on KVM with the modern virtio-mmio transport kvmon has.
fn qemu_args() -> Vec<&'static str> {
    let mut args = QEMU_KVM.to_vec();
    args.extend_from_slice(&["-global", "virtio-mmio.force-legacy=false"]);
    args
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
    let mut child = Command::new(program)
        .args(machine)
        .args(["-m", "256", "-nodefaults", "-display", "none"])
        .args(["-serial", "stdio", "-kernel"])
        .arg(test_guest())
        .args(["-append", &format!("blk-bench {} {requests}", mode.guest)])
        .args(["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
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
            let cpu = vmm_cpu_between(&threads_before, &thread_times(pid));
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
