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
//! For each: requests/s, MiB/s, and the VMM's CPU time per request — the
//! time of every VMM thread but the vCPUs (whose time is mostly the guest's
//! instructions, emulated here, the same code under both VMMs).

mod firmware;
mod linux;

use std::time::Duration;

use super::table::{record, rows, Measure, HEADER};

/// One kind of request: how the report names it, how the guest is told
/// to make it, and the bytes it moves.
pub struct Mode {
    label: &'static str,
    guest: &'static str,
    bytes: u64,
}

/// QEMU's microvm offers the legacy virtio-mmio transport unless told
/// otherwise; kvmon offers the modern one.
const MODERN_MMIO: &[&str] = &["-global", "virtio-mmio.force-legacy=false"];

/// The image both VMMs use, in each setting.
const IMAGE_BYTES: u64 = 256 << 20;

/// One mode's figures for one VMM, from one run or the medians of several.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    requests_per_s: f64,
    mib_per_s: f64,
    cpu_us_per_request: f64,
}

impl Figures {
    fn new(requests: u64, bytes_each: u64, elapsed: Duration, vmm_cpu: Duration) -> Figures {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Figures {
            requests_per_s: requests as f64 / seconds,
            mib_per_s: (requests * bytes_each) as f64 / seconds / f64::from(1 << 20),
            cpu_us_per_request: vmm_cpu.as_secs_f64() * 1e6 / requests.max(1) as f64,
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let part = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str);
    if !matches!(part, None | Some("firmware" | "linux")) {
        return Err("usage: cargo xtask bench blk [firmware|linux] [--quick] [--record]".into());
    }
    crate::process::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "kvmon"],
        &[],
    )?;
    let mut report = String::new();
    if part != Some("linux") {
        report.push_str(&firmware::part(quick)?);
    }
    if part != Some("firmware") {
        if !report.is_empty() {
            report.push('\n');
        }
        report.push_str(&linux::part(quick)?);
    }
    println!("\n{report}");
    if record_it && !quick && part.is_none() {
        record("blk", &report)?;
    }
    Ok(())
}

/// Measures kvmon, then QEMU, or QEMU first when `qemu_first`: over the
/// rounds each VMM goes first as often, so that both see the same host.
/// Returns (kvmon's, QEMU's).
fn in_turn<V, T>(
    qemu_first: bool,
    kvmon: V,
    qemu: V,
    mut measure: impl FnMut(V) -> Result<T, String>,
) -> Result<(T, T), String> {
    if qemu_first {
        let theirs = measure(qemu)?;
        Ok((measure(kvmon)?, theirs))
    } else {
        let ours = measure(kvmon)?;
        Ok((ours, measure(qemu)?))
    }
}

/// Per mode, the medians of the rounds' figures: kvmon's and QEMU's rows
/// with their ratios and the target (kvmon ≥ QEMU on every figure).
fn table(modes: &[Mode], ours: &[Vec<Figures>], theirs: &[Vec<Figures>]) -> String {
    let mut table = HEADER.to_string();
    for (index, mode) in modes.iter().enumerate() {
        let ours = median(ours.iter().map(|round| round[index]).collect());
        let theirs = median(theirs.iter().map(|round| round[index]).collect());
        let measures = [
            Measure {
                more_is_better: true,
                ..Measure::new(
                    format!("{}: requests/s", mode.label),
                    |f: &Figures| f.requests_per_s,
                    |v| format!("{v:.0}"),
                )
                .target(1.0, "≥ QEMU")
            },
            Measure {
                more_is_better: true,
                ..Measure::new(
                    format!("{}: MiB/s", mode.label),
                    |f: &Figures| f.mib_per_s,
                    |v| format!("{v:.1}"),
                )
                .target(1.0, "≥ QEMU")
            },
            Measure::new(
                format!("{}: VMM CPU per request", mode.label),
                |f: &Figures| f.cpu_us_per_request,
                |v| format!("{v:.1} µs"),
            )
            .target(1.0, "≤ QEMU"),
        ];
        table.push_str(&rows(&measures, &ours, Some(&theirs)));
    }
    table
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
