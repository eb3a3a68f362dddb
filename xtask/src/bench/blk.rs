//! `cargo xtask bench blk`: kvmon and QEMU's microvm, both on this host's
//! KVM, with the same test guest driving a virtio-blk disk on the same image
//! (cache=none): sequential 64 KiB and random 4 KiB reads and writes, one
//! request at a time.  For each: requests/s and MiB/s between the guest's
//! `begin` and `end` lines, and the VMM's CPU time per request — the time
//! of every VMM thread but the vCPUs (whose time here is mostly the host
//! emulating the guest's instructions, the same code under both VMMs).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kvmon_tests::{test_guest, QEMU_KVM};

use super::table::{record, render, Measure};

const MODES: [(&str, u64); 4] = [
    ("seq-read", 64 << 10),
    ("seq-write", 64 << 10),
    ("rand-read", 4 << 10),
    ("rand-write", 4 << 10),
];
const IMAGE_BYTES: u64 = 256 << 20;

/// One mode's figures for one VMM (medians over the runs).
#[derive(Debug, Default, Clone, Copy)]
struct Figures {
    requests_per_s: f64,
    mib_per_s: f64,
    cpu_us_per_request: f64,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let (runs, requests) = if quick { (1, 300) } else { (5, 3000) };
    crate::process::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "kvmon"],
        &[],
    )?;
    let dir = crate::root().join("target/bench-blk");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    // Written out, not sparse: a first write that allocates the file's
    // blocks would favour whichever VMM comes second.
    let image = dir.join("disk.img");
    std::fs::write(&image, vec![0u8; IMAGE_BYTES as usize])
        .map_err(|e| format!("cannot create {}: {e}", image.display()))?;
    let kvmon = crate::root().join("target/release/kvmon");
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for (mode, len) in MODES {
        let (mut a, mut b) = (Vec::new(), Vec::new());
        // The VMMs take turns, each going first every other round, so
        // that both see the same host.
        for round in 0..runs {
            let ours = || measure(&kvmon, &[], &image, mode, len, requests);
            let theirs = || measure(&qemu, &qemu_args(), &image, mode, len, requests);
            if round % 2 == 0 {
                a.push(ours()?);
                b.push(theirs()?);
            } else {
                b.push(theirs()?);
                a.push(ours()?);
            }
        }
        let (a, b) = (median(a), median(b));
        println!("{mode}: kvmon {a:?}\n{mode}: QEMU  {b:?}");
        ours.push(a);
        theirs.push(b);
    }
    let report = report(&ours, &theirs, runs, requests);
    println!("\n{report}");
    if record_it && !quick {
        record("blk", &report)?;
    }
    Ok(())
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
    mode: &str,
    len: u64,
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
        .args(["-append", &format!("blk-bench {mode} {requests}")])
        .args(["-drive", &drive, "-device", "virtio-blk-device,drive=disk0"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let pid = child.id();
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let mut begin = None;
    let mut result = Err(format!("{} never finished {mode}", program.display()));
    for line in BufReader::new(stdout).lines() {
        let line = line.map_err(|e| format!("cannot read the serial port: {e}"))?;
        if line.contains("blk-bench begin") {
            begin = Some((Instant::now(), vmm_cpu(pid)));
        } else if line.contains("blk-bench end") {
            let Some((started, cpu_before)) = begin.take() else {
                break;
            };
            let elapsed = started.elapsed().as_secs_f64();
            let cpu = cpu_since(&cpu_before, &vmm_cpu(pid));
            if !line.contains("failed=0") {
                result = Err(format!("requests failed: {line}"));
                break;
            }
            result = Ok(Figures {
                requests_per_s: requests as f64 / elapsed,
                mib_per_s: (requests * len) as f64 / elapsed / f64::from(1 << 20),
                cpu_us_per_request: cpu.as_secs_f64() * 1e6 / requests as f64,
            });
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

/// CPU time so far of each thread of process `pid` but its vCPUs (named
/// "CPU n/KVM" by both VMMs), by thread id.
fn vmm_cpu(pid: u32) -> HashMap<String, Duration> {
    let mut times = HashMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return times;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if name.starts_with("CPU ") {
            continue;
        }
        // schedstat: nanoseconds on a CPU, first.
        let on_cpu = std::fs::read_to_string(path.join("schedstat"))
            .ok()
            .and_then(|text| text.split_whitespace().next()?.parse::<u64>().ok());
        if let Some(ns) = on_cpu {
            let tid = task.file_name().to_string_lossy().into_owned();
            times.insert(tid, Duration::from_nanos(ns));
        }
    }
    times
}

/// What the threads used between two snapshots (threads started in
/// between count from zero).
fn cpu_since(before: &HashMap<String, Duration>, after: &HashMap<String, Duration>) -> Duration {
    after
        .iter()
        .map(|(tid, &now)| now.saturating_sub(before.get(tid).copied().unwrap_or_default()))
        .sum()
}

fn median(mut figures: Vec<Figures>) -> Figures {
    let middle = figures.len() / 2;
    let mut pick = |key: fn(&Figures) -> f64| {
        figures.sort_by(|a, b| key(a).total_cmp(&key(b)));
        key(&figures[middle])
    };
    Figures {
        requests_per_s: pick(|f| f.requests_per_s),
        mib_per_s: pick(|f| f.mib_per_s),
        cpu_us_per_request: pick(|f| f.cpu_us_per_request),
    }
}

/// Per mode and measure, one row: kvmon, QEMU, ratio, target (≥ QEMU).
fn report(ours: &[Figures], theirs: &[Figures], runs: usize, requests: u64) -> String {
    type Results = Vec<Figures>;
    let mut measures: Vec<Measure<Results>> = Vec::new();
    macro_rules! rows {
        ($index:literal, $mode:literal) => {
            measures.push(Measure {
                more_is_better: true,
                ..Measure::new(
                    concat!($mode, ": requests/s"),
                    |r: &Results| r[$index].requests_per_s,
                    |v| format!("{v:.0}"),
                )
                .target(1.0, "≥ QEMU")
            });
            measures.push(Measure {
                more_is_better: true,
                ..Measure::new(
                    concat!($mode, ": MiB/s"),
                    |r: &Results| r[$index].mib_per_s,
                    |v| format!("{v:.1}"),
                )
                .target(1.0, "≥ QEMU")
            });
            measures.push(
                Measure::new(
                    concat!($mode, ": VMM CPU per request"),
                    |r: &Results| r[$index].cpu_us_per_request,
                    |v| format!("{v:.1} µs"),
                )
                .target(1.0, "≤ QEMU"),
            );
        };
    }
    rows!(0, "sequential 64 KiB reads");
    rows!(1, "sequential 64 KiB writes");
    rows!(2, "random 4 KiB reads");
    rows!(3, "random 4 KiB writes");
    let table = render(&measures, &ours.to_vec(), Some(&theirs.to_vec()));
    format!(
        "Firmware test guest, one request at a time, {requests} requests per run, \
         median of {runs} run(s) per VMM, cache=none on a {} MiB image.\n\n{table}",
        IMAGE_BYTES >> 20
    )
}
