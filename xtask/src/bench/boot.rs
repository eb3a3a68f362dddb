//! `cargo xtask bench boot`: kvmon and QEMU's microvm, both on this host's
//! KVM, booting the same firmware ELF with the same command line:
//!
//! - process start → QMP greeting received;
//! - process start → the default firmware's banner on the serial port;
//! - process start → exit, when the guest powers off at once (the test
//!   guest's `poweroff` scenario);
//! - `stop` → STOP received, while a vCPU runs guest code (the test guest's
//!   `count` scenario), then `cont`;
//! - the VMM's own resident memory: VmRSS without the guest RAM mapping.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use kvmon_tests::{default_firmware, test_guest, TempDir, QEMU_KVM};

use super::stats::{percentile, rss_without_guest_ram};
use super::table::{record, render, Measure};

/// Guest RAM for every run.
const RAM_MIB: u64 = 256;

#[derive(Debug, Default)]
struct Results {
    greeting: Duration,
    banner: Duration,
    poweroff_exit: Duration,
    stop_p50: Duration,
    stop_p99: Duration,
    vmm_rss_kib: u64,
}

/// A VMM binary and the arguments that make it kvmon's machine.
struct Vmm {
    program: PathBuf,
    machine: Vec<&'static str>,
}

impl Vmm {
    fn command(&self, dir: &TempDir, kernel: &Path, extra: &[&str]) -> Command {
        let mut command = Command::new(&self.program);
        command
            .args(&self.machine)
            .args([
                "-m",
                &RAM_MIB.to_string(),
                "-nodefaults",
                "-display",
                "none",
            ])
            .args(["-serial", "stdio", "-qmp"])
            .arg(format!(
                "unix:{},server=on,wait=off",
                dir.join("qmp.sock").display()
            ))
            .arg("-kernel")
            .arg(kernel)
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        command
    }
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let runs = if quick { 3 } else { 20 };
    let stops = if quick { 10 } else { 100 };
    crate::process::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "kvmon"],
        &[],
    )?;
    let kvmon = Vmm {
        program: crate::root().join("target/release/kvmon"),
        machine: vec![],
    };
    println!("measuring kvmon ...");
    let ours = measure(&kvmon, runs, stops)?;
    let theirs = if Path::new("/usr/bin/qemu-system-x86_64").exists() {
        println!("measuring QEMU ...");
        let qemu = Vmm {
            program: PathBuf::from("/usr/bin/qemu-system-x86_64"),
            machine: QEMU_KVM.to_vec(),
        };
        Some(measure(&qemu, runs, stops)?)
    } else {
        println!("QEMU is not installed: kvmon alone");
        None
    };
    let report = report(&ours, theirs.as_ref(), runs, stops);
    println!("\n{report}");
    if record_it && !quick {
        record("boot", &report)?;
    }
    Ok(())
}

fn measure(vmm: &Vmm, runs: usize, stops: usize) -> Result<Results, String> {
    let mut greetings = Vec::new();
    let mut banners = Vec::new();
    let mut exits = Vec::new();
    let mut rss = Vec::new();
    for _ in 0..runs {
        let (greeting, banner, vmm_rss) = boot_to_banner(vmm)?;
        greetings.push(greeting);
        banners.push(banner);
        rss.push(vmm_rss);
        exits.push(boot_to_poweroff(vmm)?);
    }
    let mut stop_times = stop_latencies(vmm, stops)?;
    rss.sort_unstable();
    Ok(Results {
        greeting: percentile(&mut greetings, 50.0),
        banner: percentile(&mut banners, 50.0),
        poweroff_exit: percentile(&mut exits, 50.0),
        stop_p50: percentile(&mut stop_times, 50.0),
        stop_p99: percentile(&mut stop_times, 99.0),
        vmm_rss_kib: rss[rss.len() / 2],
    })
}

/// Start → greeting and start → banner in one run, then the VMM's memory.
fn boot_to_banner(vmm: &Vmm) -> Result<(Duration, Duration, u64), String> {
    let dir = TempDir::new();
    let started = Instant::now();
    let mut child = spawn(vmm.command(&dir, &default_firmware(), &[]))?;
    let banner = watch_serial(&mut child, started, "kvmon firmware");
    let mut qmp = connect(&dir.join("qmp.sock"), &mut child)?;
    let mut greeting = String::new();
    BufReader::new(&mut qmp)
        .read_line(&mut greeting)
        .map_err(|e| format!("no greeting: {e}"))?;
    let greeting_at = started.elapsed();
    let banner_at = banner
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the firmware's banner never came".to_string())?;
    let rss = vmm_rss_kib(child.id())?;
    end(child);
    Ok((greeting_at, banner_at, rss))
}

/// Start → exit, with a guest that powers off at once.
fn boot_to_poweroff(vmm: &Vmm) -> Result<Duration, String> {
    let dir = TempDir::new();
    let started = Instant::now();
    let mut child = spawn(vmm.command(&dir, &test_guest(), &["-append", "poweroff"]))?;
    let status = child.wait().map_err(|e| format!("cannot wait: {e}"))?;
    let took = started.elapsed();
    if !status.success() {
        return Err(format!("{} exited with {status}", vmm.program.display()));
    }
    Ok(took)
}

/// `stop` → STOP, `stops` times, with a vCPU busy in guest code.
fn stop_latencies(vmm: &Vmm, stops: usize) -> Result<Vec<Duration>, String> {
    let dir = TempDir::new();
    let mut child = spawn(vmm.command(&dir, &test_guest(), &["-append", "count"]))?;
    let ticking = watch_serial(&mut child, Instant::now(), "tick n=2");
    let stream = connect(&dir.join("qmp.sock"), &mut child)?;
    let mut reader = BufReader::new(stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    let mut line = String::new();
    reader.read_line(&mut line).map_err(|e| e.to_string())?;
    let mut send =
        |command: &str| writer.write_all(format!("{{\"execute\":\"{command}\"}}\n").as_bytes());
    send("qmp_capabilities").map_err(|e| e.to_string())?;
    ticking
        .recv_timeout(Duration::from_secs(60))
        .map_err(|_| "the guest never ran".to_string())?;
    let mut wait_for = |needle: &str| -> Result<(), String> {
        loop {
            line.clear();
            if reader.read_line(&mut line).map_err(|e| e.to_string())? == 0 {
                return Err("the VMM closed QMP".into());
            }
            if line.contains(needle) {
                return Ok(());
            }
        }
    };
    wait_for("\"return\"")?;
    let mut latencies = Vec::new();
    for _ in 0..stops {
        let started = Instant::now();
        send("stop").map_err(|e| e.to_string())?;
        wait_for("\"event\": \"STOP\"")?;
        latencies.push(started.elapsed());
        wait_for("\"return\"")?;
        send("cont").map_err(|e| e.to_string())?;
        wait_for("\"return\"")?;
        // Let the guest run a little before the next stop.
        std::thread::sleep(Duration::from_millis(5));
    }
    end(child);
    Ok(latencies)
}

fn spawn(mut command: Command) -> Result<Child, String> {
    command
        .spawn()
        .map_err(|e| format!("cannot start {command:?}: {e}"))
}

fn end(mut child: Child) {
    let _ = child.kill();
    let _ = child.wait();
}

/// Reads the serial port (the child's stdout) on a thread; sends the time
/// since `started` when `needle` first shows, and keeps draining after.
fn watch_serial(
    child: &mut Child,
    started: Instant,
    needle: &'static str,
) -> mpsc::Receiver<Duration> {
    let (sender, receiver) = mpsc::channel();
    let mut stdout = child.stdout.take();
    std::thread::spawn(move || {
        let Some(stdout) = stdout.as_mut() else {
            return;
        };
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        let mut sent = false;
        while let Ok(n) = stdout.read(&mut buffer) {
            if n == 0 {
                break;
            }
            if !sent {
                seen.extend_from_slice(&buffer[..n]);
                if seen.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    let _ = sender.send(started.elapsed());
                    sent = true;
                }
            }
        }
    });
    receiver
}

/// Connects as soon as the socket accepts.
fn connect(path: &Path, child: &mut Child) -> Result<UnixStream, String> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Ok(stream) = UnixStream::connect(path) {
            return Ok(stream);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!("the VMM exited ({status}) before listening"));
        }
        if Instant::now() > deadline {
            return Err(format!("no QMP socket at {}", path.display()));
        }
        std::thread::sleep(Duration::from_micros(100));
    }
}

/// Resident memory of every mapping except guest RAM (the anonymous
/// mappings at least as large as the guest's memory).
fn vmm_rss_kib(pid: u32) -> Result<u64, String> {
    let smaps = std::fs::read_to_string(format!("/proc/{pid}/smaps"))
        .map_err(|e| format!("cannot read smaps: {e}"))?;
    Ok(rss_without_guest_ram(&smaps, RAM_MIB << 20))
}

fn report(kvmon: &Results, qemu: Option<&Results>, runs: usize, stops: usize) -> String {
    let ms = |seconds: f64| format!("{:.2} ms", seconds * 1e3);
    let kib = |value: f64| format!("{value:.0} KiB");
    let measures = [
        Measure::new(
            format!("start → QMP greeting (p50 of {runs})"),
            |r: &Results| r.greeting.as_secs_f64(),
            ms,
        )
        .target(5.0, "≤ 1/5 of QEMU's"),
        Measure::new(
            "start → firmware banner on serial (p50)",
            |r: &Results| r.banner.as_secs_f64(),
            ms,
        )
        .target(5.0, "≤ 1/5 of QEMU's"),
        Measure::new(
            "start → exit after the guest powers off (p50)",
            |r: &Results| r.poweroff_exit.as_secs_f64(),
            ms,
        )
        .target(5.0, "≤ 1/5 of QEMU's"),
        Measure::new(
            format!("stop → STOP, vCPU busy (p50 of {stops})"),
            |r: &Results| r.stop_p50.as_secs_f64(),
            ms,
        ),
        Measure::new(
            "stop → STOP (p99)",
            |r: &Results| r.stop_p99.as_secs_f64(),
            ms,
        ),
        Measure::new(
            "VMM RSS without guest RAM (p50)",
            |r: &Results| r.vmm_rss_kib as f64,
            kib,
        )
        .target(4.0, "≤ 1/4 of QEMU's"),
    ];
    let mut out = render(&measures, kvmon, qemu);
    let within = kvmon.stop_p50 <= Duration::from_millis(1);
    out.push_str(&format!(
        "| stop → STOP target | {} | | | ≤ 1 ms {} |\n",
        ms(kvmon.stop_p50.as_secs_f64()),
        if within { "✔" } else { "✘" }
    ));
    out
}
