//! `cargo xtask bench linux`: in the test host (real KVM), kvmon and QEMU
//! boot Debian's kernel with the same initramfs, command line, RAM and CPUs,
//! each in every configuration it offers (PVH vmlinux or bzImage; QEMU's
//! microvm and pc), and are measured:
//!
//! - start → the guest init's ready line on the serial port;
//! - start → exit, when init powers off at once (both by the test host's
//!   clock, from when its shell starts the VMM, so that the harness's own
//!   round trips do not count);
//! - VM exits taken from start to the ready line (KVM's own counter);
//! - the VMM's resident memory at the ready line, without guest RAM.
//!
//! Each boot has a freshly booted test host of its own, and the
//! configurations take turns, run by run: in a test host that has already
//! run guests, the emulator must first invalidate the code it translated
//! for recycled pages, and the same boot measured 0.35 s to 2.8 s for
//! loading its kernel alone.  The headline compares kvmon's best
//! configuration with QEMU's best.

use std::time::{Duration, Instant};

use kvmon_tests::testhost::TestHost;

use super::stats::{percentile, rss_without_guest_ram};
use super::table::{record, render, Measure};

const RAM_MIB: u64 = 512;
/// How long a boot may take in the test host.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// Failed runs a configuration may have before the benchmark gives up.
const MAX_FAILURES: usize = 2;
const READY: &str = "testhost-guest: ready";
/// The guest kernel's last line before it powers off.
pub(super) const POWERED_DOWN: &str = "reboot: Power down";
pub(super) const QEMU: &str = "qemu-system-x86_64";
pub(super) const MICROVM: &[&str] = &["-M", "microvm", "-accel", "kvm", "-cpu", "host"];
const PC: &[&str] = &["-M", "pc", "-accel", "kvm", "-cpu", "host"];

/// A VMM and kernel combination.
struct Config {
    name: &'static str,
    program: &'static str,
    machine: &'static [&'static str],
    kernel: &'static str,
}

const CONFIGS: &[Config] = &[
    Config {
        name: "kvmon, PVH vmlinux",
        program: "kvmon",
        machine: &[],
        kernel: "vmlinux",
    },
    Config {
        name: "kvmon, bzImage",
        program: "kvmon",
        machine: &[],
        kernel: "vmlinuz",
    },
    Config {
        name: "QEMU microvm, PVH vmlinux",
        program: QEMU,
        machine: MICROVM,
        kernel: "vmlinux",
    },
    Config {
        name: "QEMU microvm, bzImage",
        program: QEMU,
        machine: MICROVM,
        kernel: "vmlinuz",
    },
    Config {
        name: "QEMU pc, PVH vmlinux",
        program: QEMU,
        machine: PC,
        kernel: "vmlinux",
    },
    Config {
        name: "QEMU pc, bzImage",
        program: QEMU,
        machine: PC,
        kernel: "vmlinuz",
    },
];

/// One run's figures, or the medians of several.
#[derive(Debug, Clone, Default)]
struct Figures {
    ready: Duration,
    poweroff_exit: Duration,
    exits: u64,
    vmm_rss_kib: u64,
}

impl Figures {
    fn median(runs: Vec<Figures>) -> Figures {
        let mut ready: Vec<Duration> = runs.iter().map(|s| s.ready).collect();
        let mut poweroff: Vec<Duration> = runs.iter().map(|s| s.poweroff_exit).collect();
        let mut exits: Vec<u64> = runs.iter().map(|s| s.exits).collect();
        let mut rss: Vec<u64> = runs.iter().map(|s| s.vmm_rss_kib).collect();
        exits.sort_unstable();
        rss.sort_unstable();
        Figures {
            ready: percentile(&mut ready, 50.0),
            poweroff_exit: percentile(&mut poweroff, 50.0),
            exits: exits[exits.len() / 2],
            vmm_rss_kib: rss[rss.len() / 2],
        }
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let runs = if quick { 1 } else { 3 };
    // The quick run keeps one configuration of each VMM working.
    let configs: Vec<&Config> = if quick {
        vec![&CONFIGS[0], &CONFIGS[2]]
    } else {
        CONFIGS.iter().collect()
    };
    let mut runs_of: Vec<Vec<Figures>> = configs.iter().map(|_| Vec::new()).collect();
    let mut release = None;
    for round in 1..=runs {
        for (config, done) in configs.iter().zip(&mut runs_of) {
            let figures = measure(config, &mut release)?;
            println!(
                "{}, run {round} of {runs}: ready {}, exit {}, {} VM exits, {} KiB",
                config.name,
                seconds(figures.ready),
                seconds(figures.poweroff_exit),
                figures.exits,
                figures.vmm_rss_kib
            );
            done.push(figures);
        }
    }
    let measured: Vec<(&Config, Figures)> = configs
        .iter()
        .zip(runs_of)
        .map(|(config, runs)| (*config, Figures::median(runs)))
        .collect();
    let best = |program: &str| {
        measured
            .iter()
            .filter(|(config, _)| config.program == program)
            .min_by_key(|(_, results)| results.ready)
            .map(|(config, results)| (config.name, results.clone()))
            .ok_or_else(|| format!("no {program} results"))
    };
    let (ours_name, ours) = best("kvmon")?;
    let (theirs_name, theirs) = best(QEMU)?;
    let mut report = format!(
        "Debian's kernel {}, `-m {RAM_MIB} -smp 2`, the test host's initramfs; p50 of {runs}, \
         each boot in a freshly booted test host.\n\n",
        release.unwrap_or_default()
    );
    report.push_str(&configurations(&measured));
    report.push_str(&format!(
        "\nBest against best: kvmon ({ours_name}) and QEMU ({theirs_name}).\n\n"
    ));
    report.push_str(&summary(&ours, &theirs));
    println!("\n{report}");
    if record_it && !quick {
        record("linux", &report)?;
    }
    Ok(())
}

/// One run of a configuration: a boot to the ready line and one to the
/// exit, each in a fresh test host; a failed run is done again, up to
/// MAX_FAILURES times.  Notes the test host's kernel release.
fn measure(config: &Config, release: &mut Option<String>) -> Result<Figures, String> {
    let mut failures = 0;
    loop {
        let run = boot_to_ready(&mut TestHost::fresh(), config, release).and_then(
            |(ready, exits, vmm_rss_kib)| {
                Ok(Figures {
                    ready,
                    poweroff_exit: boot_to_poweroff(&mut TestHost::fresh(), config)?,
                    exits,
                    vmm_rss_kib,
                })
            },
        );
        match run {
            Ok(sample) => return Ok(sample),
            // Guests in the emulated test host hang now and then, under
            // either VMM (RCU stalls): such a run is told and done again.
            Err(error) if failures < MAX_FAILURES => {
                failures += 1;
                println!("{}: a run failed, once more: {error}", config.name);
            }
            Err(error) => return Err(error),
        }
    }
}

fn arguments(config: &Config, scenario: &str) -> Vec<String> {
    let ram = RAM_MIB.to_string();
    let append = format!("console=ttyS0 quiet scenario={scenario}");
    config
        .machine
        .iter()
        .chain(&guest_args(&ram, "2", config.kernel, &append))
        .map(|a| a.to_string())
        .collect()
}

/// A VMM's arguments, after its machine's, for Debian's `kernel` and the
/// guest initramfs with `append`, on `cpus` CPUs with `ram_mib` of RAM,
/// the serial port on stdout, and no default devices.
pub(super) fn guest_args<'a>(
    ram_mib: &'a str,
    cpus: &'a str,
    kernel: &'a str,
    append: &'a str,
) -> [&'a str; 15] {
    [
        "-m",
        ram_mib,
        "-smp",
        cpus,
        "-nodefaults",
        "-display",
        "none",
        "-serial",
        "stdio",
        "-kernel",
        kernel,
        "-initrd",
        "initramfs.cpio",
        "-append",
        append,
    ]
}

/// Start → ready line, the VM exits until then, and the VMM's memory.
fn boot_to_ready(
    host: &mut TestHost,
    config: &Config,
    release: &mut Option<String>,
) -> Result<(Duration, u64, u64), String> {
    if release.is_none() {
        *release = Some(host.shell("uname -r").trim().to_string());
    }
    let exits_before = kvm_exits(host.shell(KVM_EXITS))?;
    let args = arguments(config, "idle");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let mut run = host.start_timed(config.program, &args, READY);
    // Watched from here, in the output file: asking the test host would
    // take CPU time from the boot being measured.
    run.try_wait_for_output(READY, 1, BOOT_TIMEOUT)
        .map_err(|e| format!("{}: {e}", config.name))?;
    let ready = run
        .time_to_needle()
        .ok_or_else(|| format!("{}: the test host noted no ready line", config.name))?;
    let exits = kvm_exits(run.shell(KVM_EXITS))?;
    let smaps = run.shell(&format!("cat /proc/{}/smaps", run.pid()));
    Ok((
        ready,
        exits - exits_before,
        rss_without_guest_ram(&smaps, RAM_MIB << 20),
    ))
}

/// Start → exit, with a guest whose init powers off at once.
fn boot_to_poweroff(host: &mut TestHost, config: &Config) -> Result<Duration, String> {
    let args = arguments(config, "poweroff");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let deadline = Instant::now() + BOOT_TIMEOUT;
    let mut run = host.start(config.program, &args);
    // As above: the test host is asked only once the guest is done.
    run.try_wait_for_output(POWERED_DOWN, 1, BOOT_TIMEOUT)
        .map_err(|e| format!("{}: {e}", config.name))?;
    loop {
        if let Some(exit) = run.time_to_exit() {
            return Ok(exit);
        }
        if Instant::now() > deadline {
            return Err(format!("{}: it did not exit", config.name));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// KVM's count of VM exits in the test host (all VMs, since it booted).
const KVM_EXITS: &str = "cat /sys/kernel/debug/kvm/exits";

fn kvm_exits(text: String) -> Result<u64, String> {
    text.trim()
        .parse()
        .map_err(|e| format!("KVM's exit counter: {e}"))
}

fn seconds(duration: Duration) -> String {
    format!("{:.2} s", duration.as_secs_f64())
}

/// Every configuration's figures.
fn configurations(measured: &[(&Config, Figures)]) -> String {
    let mut out = String::from(
        "| Configuration | start → ready line | start → exit after poweroff | VM exits to ready | VMM RSS without guest RAM |\n|---|---|---|---|---|\n",
    );
    for (config, r) in measured {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} KiB |\n",
            config.name,
            seconds(r.ready),
            seconds(r.poweroff_exit),
            r.exits,
            r.vmm_rss_kib
        ));
    }
    out
}

fn summary(kvmon: &Figures, qemu: &Figures) -> String {
    let s = |value: f64| format!("{value:.2} s");
    let count = |value: f64| format!("{value:.0}");
    let kib = |value: f64| format!("{value:.0} KiB");
    let measures = [
        Measure::new(
            "start → guest init's ready line",
            |r: &Figures| r.ready.as_secs_f64(),
            s,
        )
        .target(1.0 / 0.6, "≤ 0.6× QEMU's"),
        Measure::new(
            "start → exit after the guest powers off",
            |r: &Figures| r.poweroff_exit.as_secs_f64(),
            s,
        ),
        Measure::new(
            "VM exits, start → ready line",
            |r: &Figures| r.exits as f64,
            count,
        ),
        Measure::new(
            "VMM RSS without guest RAM",
            |r: &Figures| r.vmm_rss_kib as f64,
            kib,
        )
        .target(4.0, "≤ 1/4 of QEMU's"),
    ];
    render(&measures, kvmon, Some(qemu))
}
