//! Throughput as `bench blk` and `bench net` report it: items (requests,
//! frames) per second, bytes per second, and the VMM's CPU time per item
//! — the time of every VMM thread but the vCPUs, whose time is mostly the
//! guest's instructions, the same code under both VMMs.  Over rounds, the
//! VMMs take turns at going first, and the table shows the medians.

use std::path::Path;
use std::process::{Child, ChildStdout, Command, Stdio};
use std::time::Duration;

use kvmon_tests::test_guest;
use kvmon_tests::testhost::TestHost;

use super::stats::vmm_cpu_between;
use super::table::{record, rows, Measure, HEADER};

/// One half of a benchmark: its report, quick (fewer rounds, less work)
/// or not.
pub type Part = fn(bool) -> Result<String, String>;

/// `cargo xtask bench NAME [firmware|linux] [--quick] [--record]`: the
/// firmware half on this host's KVM, the Linux half in the test host, or
/// both; `--record` puts a full run of both into docs/benchmarks.md.
pub fn run(name: &str, args: &[String], firmware: Part, linux: Part) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let part = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .map(String::as_str);
    if !matches!(part, None | Some("firmware" | "linux")) {
        return Err(format!(
            "usage: cargo xtask bench {name} [firmware|linux] [--quick] [--record]"
        ));
    }
    crate::process::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "kvmon"],
        &[],
    )?;
    let mut report = String::new();
    if part != Some("linux") {
        report.push_str(&firmware(quick)?);
    }
    if part != Some("firmware") {
        if !report.is_empty() {
            report.push('\n');
        }
        report.push_str(&linux(quick)?);
    }
    println!("\n{report}");
    if record_it && !quick && part.is_none() {
        record(name, &report)?;
    }
    Ok(())
}

/// One kind of work: how the report names it, how the guest is told to
/// do it, and the bytes each item moves.
pub struct Mode {
    pub label: &'static str,
    pub guest: &'static str,
    pub bytes: u64,
}

/// One mode's figures for one VMM, from one run or the medians of several.
#[derive(Debug, Default, Clone, Copy)]
pub struct Figures {
    per_s: f64,
    bytes_per_s: f64,
    cpu_us_each: f64,
}

impl Figures {
    pub fn new(items: u64, bytes_each: u64, elapsed: Duration, vmm_cpu: Duration) -> Figures {
        let seconds = elapsed.as_secs_f64().max(1e-9);
        Figures {
            per_s: items as f64 / seconds,
            bytes_per_s: (items * bytes_each) as f64 / seconds,
            cpu_us_each: vmm_cpu.as_secs_f64() * 1e6 / items.max(1) as f64,
        }
    }
}

/// How a report names the items and shows the bytes.
pub struct Units {
    /// "request", "frame": the rows say "requests/s" and "VMM CPU per request".
    pub item: &'static str,
    /// Whether to show items per second (not when an item is a MiB).
    pub rate: bool,
    /// Mbit/s (networks) rather than MiB/s (disks).
    pub bits: bool,
}

/// Starts `program` on this host's KVM (`machine`: its own arguments)
/// with `ram_mib` of RAM, the test guest playing `append`, and `devices`;
/// returns it and its serial port, a pipe.
pub fn start_test_guest(
    program: &Path,
    machine: &[&str],
    ram_mib: &str,
    append: &str,
    devices: &[&str],
) -> Result<(Child, ChildStdout), String> {
    let mut child = Command::new(program)
        .args(machine)
        .args(["-m", ram_mib, "-nodefaults", "-display", "none"])
        .args(["-serial", "stdio", "-kernel"])
        .arg(test_guest())
        .args(["-append", append])
        .args(devices)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.display()))?;
    let serial = child.stdout.take().ok_or("no stdout")?;
    Ok((child, serial))
}

/// Measures kvmon, then QEMU, or QEMU first when `qemu_first`: over the
/// rounds each VMM goes first as often, so that both see the same host.
/// Returns (kvmon's, QEMU's).
pub fn in_turn<V, T>(
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
pub fn table(
    modes: &[Mode],
    units: &Units,
    ours: &[Vec<Figures>],
    theirs: &[Vec<Figures>],
) -> String {
    let mut table = HEADER.to_string();
    for (index, mode) in modes.iter().enumerate() {
        let ours = median(ours.iter().map(|round| round[index]).collect());
        let theirs = median(theirs.iter().map(|round| round[index]).collect());
        let mut measures = Vec::new();
        if units.rate {
            measures.push(
                Measure {
                    more_is_better: true,
                    ..Measure::new(
                        format!("{}: {}s/s", mode.label, units.item),
                        |f: &Figures| f.per_s,
                        |v| format!("{v:.0}"),
                    )
                }
                .target(1.0, "≥ QEMU"),
            );
        }
        let volume = match units.bits {
            true => Measure::new(
                format!("{}: Mbit/s", mode.label),
                |f: &Figures| f.bytes_per_s * 8.0 / 1e6,
                |v| format!("{v:.1}"),
            ),
            false => Measure::new(
                format!("{}: MiB/s", mode.label),
                |f: &Figures| f.bytes_per_s / f64::from(1 << 20),
                |v| format!("{v:.1}"),
            ),
        };
        measures.push(
            Measure {
                more_is_better: true,
                ..volume
            }
            .target(1.0, "≥ QEMU"),
        );
        measures.push(
            Measure::new(
                format!("{}: VMM CPU per {}", mode.label, units.item),
                |f: &Figures| f.cpu_us_each,
                |v| format!("{v:.1} µs"),
            )
            .target(1.0, "≤ QEMU"),
        );
        table.push_str(&rows(&measures, &ours, Some(&theirs)));
    }
    table
}

/// Each round's figures, a mode each.
pub type Rounds = Vec<Vec<Figures>>;

/// Failed rounds in the test host, over a whole benchmark, before it
/// gives up.
const MAX_FAILURES: usize = 2;

/// A VMM as the test host runs it: its program, machine and globals.
pub struct TestHostVmm {
    pub program: &'static str,
    pub machine: &'static [&'static str],
    pub globals: &'static [&'static str],
}

impl TestHostVmm {
    /// Its arguments for Debian's kernel (PVH vmlinux) on one CPU
    /// ([`super::linux::guest_args`]).
    pub fn linux_args<'a>(&self, ram_mib: &'a str, append: &'a str) -> Vec<&'a str> {
        let guest = super::linux::guest_args(ram_mib, "1", "vmlinux", append);
        [self.machine, self.globals, &guest].concat()
    }
}

const KVMON_IN_TEST_HOST: TestHostVmm = TestHostVmm {
    program: "kvmon",
    machine: &[],
    globals: &[],
};

/// QEMU's microvm offers the legacy virtio-mmio transport unless told
/// otherwise; kvmon offers the modern one.
pub const MODERN_MMIO: &[&str] = &["-global", "virtio-mmio.force-legacy=false"];

const QEMU_IN_TEST_HOST: TestHostVmm = TestHostVmm {
    program: super::linux::QEMU,
    machine: super::linux::MICROVM,
    globals: MODERN_MMIO,
};

/// `runs` rounds of `measure` for both VMMs, each round in a freshly
/// booted test host, the VMMs taking turns at going first.  Guests in the
/// emulated test host hang now and then, under either VMM (RCU stalls):
/// such a round is told and done again, up to [`MAX_FAILURES`] times.
pub fn rounds_in_test_hosts(
    runs: usize,
    mut measure: impl FnMut(&mut TestHost, &TestHostVmm) -> Result<Vec<Figures>, String>,
) -> Result<(Rounds, Rounds), String> {
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    let mut failures = 0;
    while ours.len() < runs {
        let round = ours.len() + 1;
        let mut host = TestHost::fresh();
        match in_turn(
            round % 2 == 0,
            &KVMON_IN_TEST_HOST,
            &QEMU_IN_TEST_HOST,
            |vmm| measure(&mut host, vmm),
        ) {
            Ok((a, b)) => {
                println!("linux, round {round}: kvmon {a:?}\n  QEMU {b:?}");
                ours.push(a);
                theirs.push(b);
            }
            Err(error) if failures < MAX_FAILURES => {
                failures += 1;
                println!("linux, round {round} failed, once more: {error}");
            }
            Err(error) => return Err(error),
        }
    }
    Ok((ours, theirs))
}

/// From the notes of a run in the test host ([`Run::noted`]: each line
/// with the VMM's thread times then), the job whose lines hold `begin` and
/// `end`: the time between the end line's `start=` and `end=` (the guest's
/// uptimes) and the VMM's CPU time between the two lines.  The end line's
/// `status=` must be 0.
///
/// [`Run::noted`]: kvmon_tests::testhost::Run::noted
pub fn guest_timed(
    notes: &[(String, String)],
    begin: &str,
    end: &str,
) -> Result<(Duration, Duration), String> {
    let note = |needle: &str| {
        notes
            .iter()
            .find(|(line, _)| line.contains(needle))
            .ok_or_else(|| format!("no line {needle:?} was noted"))
    };
    let (_, before) = note(begin)?;
    let (line, after) = note(end)?;
    let field = |name: &str| {
        line.split_whitespace()
            .find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or_default()
    };
    if field("status") != "0" {
        return Err(format!("the guest's job failed: {line}"));
    }
    let uptime = |name| {
        field(name)
            .parse::<f64>()
            .map_err(|_| format!("no {name} time in {line:?}"))
    };
    let elapsed = Duration::from_secs_f64((uptime("end")? - uptime("start")?).max(0.0));
    Ok((elapsed, vmm_cpu_between(before, after)?))
}

fn median(mut figures: Vec<Figures>) -> Figures {
    let middle = figures.len() / 2;
    let mut pick = |key: fn(&Figures) -> f64| {
        figures.sort_by(|a, b| key(a).total_cmp(&key(b)));
        key(&figures[middle])
    };
    Figures {
        per_s: pick(|f| f.per_s),
        bytes_per_s: pick(|f| f.bytes_per_s),
        cpu_us_each: pick(|f| f.cpu_us_each),
    }
}
