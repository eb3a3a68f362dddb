//! `cargo xtask bench qmp`: the QMP server of kvmon and of QEMU, both
//! `-machine none -S`, on the same workloads in the same run:
//!
//! - handshake: connect, greeting, `qmp_capabilities` answered;
//! - round trip: `query-status` one at a time, p50 and p99;
//! - pipelined: `query-status` written back to back, commands per second;
//! - fan-out: many clients negotiated, one `cont`, how many get RESUME;
//! - memory: resident set after start and at its peak.
//!
//! QEMU serves one client per monitor socket at a time, so each workload
//! uses one connection and closes it before the next.

use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use kvmon_tests::Vmm;
use mio::net::UnixStream;
use mio::{Events, Interest, Poll, Token};

use super::stats::{micros, percentile};
use super::table::{record, render, Measure};

const STATUS: &str = r#"{"execute":"query-status"}"#;

struct Sizes {
    handshakes: usize,
    round_trips: usize,
    pipelined: usize,
    clients: usize,
}

#[derive(Debug, Default)]
struct Results {
    handshake_p50: Duration,
    handshake_p99: Duration,
    round_trip_p50: Duration,
    round_trip_p99: Duration,
    pipelined_per_second: f64,
    clients_with_event: usize,
    fan_out_time: Duration,
    rss_start_kib: u64,
    rss_peak_kib: u64,
}

pub fn run(args: &[String]) -> Result<(), String> {
    let quick = args.iter().any(|a| a == "--quick");
    let record_it = args.iter().any(|a| a == "--record");
    let sizes = if quick {
        Sizes {
            handshakes: 50,
            round_trips: 1_000,
            pipelined: 1_000,
            clients: 100,
        }
    } else {
        Sizes {
            handshakes: 500,
            round_trips: 10_000,
            pipelined: 10_000,
            clients: 1_000,
        }
    };
    monitor::raise_fd_limit();
    crate::process::run(
        "cargo",
        &["build", "--release", "--quiet", "--package", "kvmon"],
        &[],
    )?;
    // Before any thread starts: the harness reads it to find the binary.
    std::env::set_var("KVMON_BIN", crate::root().join("target/release/kvmon"));
    println!("measuring kvmon ...");
    let kvmon = measure(Vmm::kvmon(&[]), &sizes);
    let qemu = if Path::new("/usr/bin/qemu-system-x86_64").exists() {
        println!("measuring QEMU ...");
        Some(measure(Vmm::qemu(&[]), &sizes))
    } else {
        println!("QEMU is not installed: kvmon alone");
        None
    };
    let report = report(&kvmon, qemu.as_ref(), &sizes);
    println!("\n{report}");
    if record_it && !quick {
        record("qmp", &report)?;
    }
    Ok(())
}

fn measure(mut vmm: Vmm, sizes: &Sizes) -> Results {
    let mut results = Results {
        rss_start_kib: vmm.rss_kib(),
        ..Results::default()
    };
    let mut handshakes: Vec<Duration> = (0..sizes.handshakes)
        .map(|_| {
            let started = Instant::now();
            let client = vmm.negotiated();
            let took = started.elapsed();
            drop(client);
            took
        })
        .collect();
    results.handshake_p50 = percentile(&mut handshakes, 50.0);
    results.handshake_p99 = percentile(&mut handshakes, 99.0);

    let mut client = vmm.negotiated();
    let mut round_trips: Vec<Duration> = (0..sizes.round_trips)
        .map(|_| {
            let started = Instant::now();
            client.command(STATUS);
            started.elapsed()
        })
        .collect();
    results.round_trip_p50 = percentile(&mut round_trips, 50.0);
    results.round_trip_p99 = percentile(&mut round_trips, 99.0);
    drop(client);

    let mut pipelined = vmm.negotiated();
    let mut writer = pipelined.stream.try_clone().expect("clone the stream");
    let count = sizes.pipelined;
    let started = Instant::now();
    let sender = std::thread::spawn(move || {
        let batch = STATUS.repeat(100);
        for _ in 0..count / 100 {
            writer.write_all(batch.as_bytes()).expect("write commands");
        }
    });
    for _ in 0..count {
        pipelined.line();
    }
    results.pipelined_per_second = count as f64 / started.elapsed().as_secs_f64();
    let _ = sender.join();
    drop(pipelined);

    let (received, took) = fan_out(&vmm, sizes.clients);
    results.clients_with_event = received;
    results.fan_out_time = took;
    results.rss_peak_kib = peak_rss_kib(vmm.pid());
    // QEMU drops a command whose client hangs up at once: wait for the reply.
    vmm.negotiated().command(r#"{"execute":"quit"}"#);
    let _ = vmm.wait(Duration::from_secs(30));
    results
}

/// Connects a controller, then `count` clients at once, negotiates each
/// client the server greets, sends one `cont` from the controller and counts
/// the clients that receive the RESUME event.
fn fan_out(vmm: &Vmm, count: usize) -> (usize, Duration) {
    let mut controller = vmm.negotiated();
    let Ok(mut poll) = Poll::new() else {
        return (0, Duration::ZERO);
    };
    #[derive(PartialEq)]
    enum Stage {
        Greeting,
        Negotiating,
        Ready,
        Done,
    }
    let mut clients: Vec<(UnixStream, Vec<u8>, Stage)> = Vec::new();
    for index in 0..count {
        // A full listen backlog refuses the connection at once.
        let Ok(mut stream) = UnixStream::connect(&vmm.qmp) else {
            continue;
        };
        if poll
            .registry()
            .register(&mut stream, Token(index), Interest::READABLE)
            .is_ok()
        {
            clients.push((stream, Vec::new(), Stage::Greeting));
        }
    }
    let mut events = Events::with_capacity(1024);
    // Clients still waiting for a greeting after this are not being served.
    let mut negotiation_ends = Instant::now() + Duration::from_secs(5);
    let mut sent: Option<Instant> = None;
    let mut done = 0;
    while done < clients.len() {
        let now = Instant::now();
        let negotiated = clients
            .iter()
            .all(|c| matches!(c.2, Stage::Ready | Stage::Done));
        if sent.is_none() && (negotiated || now >= negotiation_ends) {
            controller.send(r#"{"execute":"cont"}"#);
            sent = Some(now);
            negotiation_ends = now + Duration::from_secs(5);
        } else if sent.is_some() && now >= negotiation_ends {
            break;
        }
        let _ = poll.poll(&mut events, Some(Duration::from_millis(50)));
        for event in &events {
            let (stream, buffer, stage) = &mut clients[event.token().0];
            let mut chunk = [0u8; 4096];
            while let Ok(n @ 1..) = stream.read(&mut chunk) {
                buffer.extend_from_slice(&chunk[..n]);
            }
            while let Some(end) = buffer.windows(2).position(|w| w == b"\r\n") {
                let line: Vec<u8> = buffer.drain(..end + 2).collect();
                match stage {
                    Stage::Greeting => {
                        let _ = stream.write_all(br#"{"execute":"qmp_capabilities"}"#);
                        *stage = Stage::Negotiating;
                    }
                    Stage::Negotiating => *stage = Stage::Ready,
                    Stage::Ready if line.windows(8).any(|w| w == b"\"RESUME\"") => {
                        *stage = Stage::Done;
                        done += 1;
                    }
                    _ => {}
                }
            }
        }
    }
    let took = sent.map(|started| started.elapsed()).unwrap_or_default();
    (done, took)
}

fn peak_rss_kib(pid: i32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The markdown table, with ratios and the issue's targets.
fn report(kvmon: &Results, qemu: Option<&Results>, sizes: &Sizes) -> String {
    let time = |seconds: f64| micros(Duration::from_secs_f64(seconds));
    let measure = |name: String, value, show| Measure::<Results>::new(name, value, show);
    let kib = |value: f64| format!("{value:.0} KiB");
    let measures = [
        measure(
            "handshake p50 (connect → greeting → negotiated)".into(),
            |r| r.handshake_p50.as_secs_f64(),
            time,
        ),
        measure(
            "handshake p99".into(),
            |r| r.handshake_p99.as_secs_f64(),
            time,
        ),
        Measure {
            target: Some((5.0, "≥ 5× faster")),
            ..measure(
                format!(
                    "query-status round trip p50 ({} sequential)",
                    sizes.round_trips
                ),
                |r| r.round_trip_p50.as_secs_f64(),
                time,
            )
        },
        measure(
            "query-status round trip p99".into(),
            |r| r.round_trip_p99.as_secs_f64(),
            time,
        ),
        Measure {
            more_is_better: true,
            target: Some((15.0, "≥ 15×")),
            ..measure(
                format!("pipelined throughput ({} commands)", sizes.pipelined),
                |r| r.pipelined_per_second,
                |value| format!("{value:.0} /s"),
            )
        },
        measure("RSS after start".into(), |r| r.rss_start_kib as f64, kib),
        Measure {
            target: Some((4.0, "≤ 1/4 of QEMU's")),
            ..measure(
                "peak RSS (VmHWM) over the run".into(),
                |r| r.rss_peak_kib as f64,
                kib,
            )
        },
    ];
    let mut out = render(&measures, kvmon, qemu);
    let all = kvmon.clients_with_event == sizes.clients;
    out.push_str(&format!(
        "| clients of {} that got the event | {} | {} | — | all {} |\n",
        sizes.clients,
        kvmon.clients_with_event,
        qemu.map_or("—".into(), |q| q.clients_with_event.to_string()),
        if all { "✔" } else { "✘" },
    ));
    let reach = |r: &Results| match r.clients_with_event == sizes.clients {
        true => format!("{:.1} ms", r.fan_out_time.as_secs_f64() * 1e3),
        false => "never".to_string(),
    };
    out.push_str(&format!(
        "| time for the event to reach them all | {} | {} | — |  |\n",
        reach(kvmon),
        qemu.map_or("—".into(), reach),
    ));
    out
}
