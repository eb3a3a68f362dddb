//! Debian's Linux under kvmon on real KVM, in the test host
//! (harness/testhost.rs): PVH vmlinux and bzImage boots with an initramfs
//! whose init plays a scenario (xtask/src/testhost/guest-init.sh), guest and
//! QMP power management, stop/cont, the guest's clock, the kernel's
//! warnings beside QEMU's on the same guest, and Linux's own drivers for
//! kvmon's devices (disk, clock, watchdog, pvpanic, balloon, NIC).

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use kvmon_tests::testhost::{testhost, Run, TestHost, QMP};
use serde_json::Value;

/// What the guest's init prints once it runs.
const READY: &str = "testhost-guest: ready";
/// A boot takes 8-15 s in the test host; give it room on a busy machine.
const BOOT: Duration = Duration::from_secs(90);

/// kvmon booting `kernel` (`vmlinux` or `vmlinuz`) with the guest initramfs
/// and `scenario`, on two CPUs, QMP forwarded, serial port on stdout.
fn linux<'h>(host: &'h mut TestHost, kernel: &str, scenario: &str, extra: &[&str]) -> Run<'h> {
    let append = format!("console=ttyS0 quiet scenario={scenario}");
    let mut args = vec!["-m", "512", "-smp", "2", "-serial", "stdio", "-qmp", QMP];
    args.extend_from_slice(&["-kernel", kernel, "-initrd", "initramfs.cpio"]);
    args.extend_from_slice(&["-append", &append]);
    args.extend_from_slice(extra);
    host.start("kvmon", &args)
}

/// The guest's ready line: `testhost-guest: ready scenario=... cpus=N ...`.
fn ready_line(output: &str) -> String {
    output
        .lines()
        .find(|line| line.contains(READY))
        .unwrap()
        .trim_end_matches('\r')
        .to_string()
}

/// The value of `key=` on the ready line.
fn field<'l>(line: &'l str, key: &str) -> &'l str {
    let start = line.find(&format!(" {key}=")).unwrap() + key.len() + 2;
    line[start..].split(' ').next().unwrap()
}

fn data(event: &str) -> Value {
    let event: Value = serde_json::from_str(event).unwrap();
    event["data"].clone()
}

fn event_named(client: &mut kvmon_tests::Client<std::net::TcpStream>, name: &str) -> Value {
    let event = client.event();
    assert!(event.contains(&format!("\"event\": \"{name}\"")), "{event}");
    data(&event)
}

/// The next event is `name`, caused by the guest for `reason`.
fn guest_event(client: &mut kvmon_tests::Client<std::net::TcpStream>, name: &str, reason: &str) {
    let data = event_named(client, name);
    assert_eq!(data["guest"], true, "{data}");
    assert_eq!(data["reason"], reason, "{data}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

#[test]
fn pvh_vmlinux_boots_to_init_and_powers_off() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinux", "poweroff", &["-S"]);
    let mut client = run.negotiated();
    assert_eq!(client.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    event_named(&mut client, "RESUME");
    let output = run.wait_for_output(READY, 1, BOOT);
    let line = ready_line(&output);
    assert_eq!(field(&line, "cpus"), "2", "{line}");
    assert!(
        line.ends_with("cmdline=console=ttyS0 quiet scenario=poweroff"),
        "{line}"
    );
    // Linux's clock and the CMOS clock, read moments ago, are the host's.
    for clock in ["time", "rtc"] {
        let guest: u64 = field(&line, clock).parse().unwrap();
        assert!(
            now().abs_diff(guest) <= 2,
            "{clock} {guest}, host {}",
            now()
        );
    }

    guest_event(&mut client, "SHUTDOWN", "guest-shutdown");
    assert_eq!(run.wait(Duration::from_secs(20)), 0);
}

#[test]
fn bzimage_boots_and_a_guest_reboot_boots_it_again() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinuz", "reboot", &["-S"]);
    let mut client = run.negotiated();
    client.command(r#"{"execute":"cont"}"#);
    event_named(&mut client, "RESUME");
    let output = run.wait_for_output(READY, 1, BOOT);
    let line = ready_line(&output);
    assert_eq!(field(&line, "cpus"), "2", "{line}");
    assert!(line.ends_with("scenario=reboot"), "{line}");

    guest_event(&mut client, "RESET", "guest-reset");
    run.wait_for_output(READY, 2, BOOT);
    assert!(run.running());
}

#[test]
fn system_powerdown_shuts_linux_down_through_acpid() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinux", "acpid", &[]);
    run.wait_for_output("testhost-guest: acpid started", 1, BOOT);
    let mut client = run.negotiated();
    assert_eq!(
        client.command(r#"{"execute":"system_powerdown"}"#),
        r#"{"return": {}}"#
    );
    event_named(&mut client, "POWERDOWN");
    guest_event(&mut client, "SHUTDOWN", "guest-shutdown");
    assert_eq!(run.wait(Duration::from_secs(30)), 0);
}

#[test]
fn stop_cont_and_system_reset_while_linux_runs() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinux", "ticks", &[]);
    run.wait_for_output("testhost-guest: tick 5", 1, BOOT);
    let mut client = run.negotiated();

    assert_eq!(client.command(r#"{"execute":"stop"}"#), r#"{"return": {}}"#);
    event_named(&mut client, "STOP");
    // A tick may be on its way through the test host's serial port.
    std::thread::sleep(Duration::from_millis(300));
    let stopped = run.output().matches("tick").count();
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(
        run.output().matches("tick").count(),
        stopped,
        "ticks while stopped"
    );
    assert!(client
        .command(r#"{"execute":"query-status"}"#)
        .contains(r#""status": "paused""#));

    assert_eq!(client.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    event_named(&mut client, "RESUME");
    run.wait_for_output("tick", stopped + 3, Duration::from_secs(20));

    assert_eq!(
        client.command(r#"{"execute":"system_reset"}"#),
        r#"{"return": {}}"#
    );
    let reset = event_named(&mut client, "RESET");
    assert_eq!(reset["guest"], false);
    assert_eq!(reset["reason"], "host-qmp-system-reset");
    run.wait_for_output(READY, 2, BOOT);
}

/// The kernel's warnings (level 4 or worse), without what differs between
/// runs (timestamps, addresses, counts).
fn warnings(output: &str) -> Vec<String> {
    output
        .lines()
        .filter_map(|line| {
            line.trim_end_matches('\r')
                .split_once("testhost-guest: warning ")
        })
        .map(|(_, warning)| {
            let text = warning.split_once(']').map_or(warning, |(_, text)| text);
            text.split(|c: char| c.is_ascii_digit())
                .collect::<Vec<_>>()
                .join("#")
                .trim()
                .to_string()
        })
        .collect()
}

/// The test host's KVM messages about what the guest did (unhandled MSRs).
fn kvm_messages(console: &str) -> Vec<String> {
    console
        .lines()
        .filter_map(|line| line.split_once("guest rIP: "))
        .filter_map(|(_, rest)| rest.split_once(' ').map(|(_, text)| text.to_string()))
        .collect()
}

#[test]
fn linux_warns_about_nothing_that_it_does_not_warn_about_on_qemu() {
    let mut host = testhost();
    let append = "console=ttyS0 quiet scenario=warnings";
    let mut kernel_warnings = Vec::new();
    let mut kvm_warnings = Vec::new();
    for vmm in ["qemu", "kvmon"] {
        let console_before = host.console().len();
        let mut args = vec!["-m", "512", "-smp", "2", "-nodefaults", "-display", "none"];
        args.extend_from_slice(&["-serial", "stdio", "-kernel", "vmlinux"]);
        args.extend_from_slice(&["-initrd", "initramfs.cpio", "-append", append]);
        let program = if vmm == "qemu" {
            args.extend_from_slice(&["-M", "microvm", "-accel", "kvm", "-cpu", "host"]);
            "qemu-system-x86_64"
        } else {
            "kvmon"
        };
        let mut run = host.start(program, &args);
        let output = run.wait_for_output("testhost-guest: warnings end", 1, BOOT);
        drop(run);
        kernel_warnings.push(warnings(&output));
        kvm_warnings.push(kvm_messages(&host.console()[console_before..]));
    }
    let [qemu, kvmon] = &kernel_warnings[..] else {
        unreachable!()
    };
    let extra: Vec<_> = kvmon.iter().filter(|w| !qemu.contains(w)).collect();
    assert!(
        extra.is_empty(),
        "Linux warns under kvmon only: {extra:#?}\n(QEMU: {qemu:#?})"
    );
    let [qemu, kvmon] = &kvm_warnings[..] else {
        unreachable!()
    };
    let extra: Vec<_> = kvmon.iter().filter(|w| !qemu.contains(w)).collect();
    assert!(extra.is_empty(), "KVM reports under kvmon only: {extra:#?}");
}

#[test]
fn linux_writes_through_virtio_blk_and_the_data_is_in_the_image() {
    let mut host = testhost();
    host.shell(
        "rm -f /tmp/disk.img; dd if=/dev/zero of=/tmp/disk.img bs=1M count=0 seek=64 2>/dev/null",
    );
    // The test host's root file system takes no O_DIRECT, so the host side
    // uses the page cache; the guest writes and reads with O_DIRECT.
    let drive = "file=/tmp/disk.img,format=raw,if=none,id=disk0";
    let device = "virtio-blk-device,drive=disk0";
    let mut run = linux(
        &mut host,
        "vmlinux",
        "blk",
        &["-drive", drive, "-device", device],
    );
    let output = run.wait_for_output("testhost-guest: blk ", 1, BOOT);
    let line = output
        .lines()
        .find(|line| line.contains("testhost-guest: blk "))
        .unwrap()
        .trim_end()
        .to_string();
    assert_eq!(field(&line, "size"), "67108864", "{line}");
    let wrote = field(&line, "wrote").to_string();
    assert_eq!(wrote.len(), 32, "{line}");
    assert_eq!(
        field(&line, "read"),
        wrote,
        "read back past the cache: {line}"
    );
    let mut client = run.negotiated();
    assert_eq!(
        client.command(
            r#"{"execute":"block_resize","arguments":{"device":"disk0","size":134217728}}"#
        ),
        r#"{"return": {}}"#
    );
    let output = run.wait_for_output("testhost-guest: blk resized", 1, BOOT);
    assert!(
        output.contains("testhost-guest: blk resized size=134217728"),
        "{output}"
    );
    assert_eq!(run.wait(Duration::from_secs(20)), 0, "{}", run.stderr());
    drop(run);
    let on_disk = host.shell("dd if=/tmp/disk.img bs=64k skip=16 count=8 2>/dev/null | md5sum");
    assert!(
        on_disk.starts_with(&wrote),
        "the image holds {on_disk}, the guest wrote {wrote}"
    );
    host.shell("rm -f /tmp/disk.img");
}

/// A client that saw the run, held in prelaunch (-S), start: no event the
/// guest causes can come before it connects.
fn started(run: &mut Run) -> kvmon_tests::Client<std::net::TcpStream> {
    let mut client = run.negotiated();
    kvmon_tests::cont(&mut client);
    client
}

#[test]
fn rtc_cmos_gets_its_alarm_interrupt_and_hwclock_sends_rtc_change() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinux", "rtc", &["-S"]);
    let mut client = started(&mut run);
    let output = run.wait_for_output("testhost-guest: rtc name=", 1, BOOT);
    let line = output
        .lines()
        .find(|line| line.contains("testhost-guest: rtc name="))
        .unwrap()
        .trim_end_matches('\r');
    assert_eq!(field(line, "name"), "rtc_cmos", "{line}");
    let irqs: u64 = field(line, "irqs").parse().unwrap();
    assert!(irqs >= 1, "the alarm did not interrupt: {line}");
    run.wait_for_output("testhost-guest: rtc set", 1, BOOT);
    let data = event_named(&mut client, "RTC_CHANGE");
    let expected = 1_893_456_000 - now() as i64; // 2030-01-01T00:00:00Z
    let offset = data["offset"].as_i64().unwrap();
    assert!(
        (offset - expected).abs() <= 10,
        "{data}, expected {expected}"
    );
    assert_eq!(data["qom-path"], "/machine/unattached/device[34]");
}

#[test]
fn ib700wdt_left_unfed_fires_the_watchdog_and_its_action() {
    let mut host = testhost();
    let mut run = linux(
        &mut host,
        "vmlinux",
        "watchdog",
        &["-S", "-device", "ib700", "-watchdog-action", "pause"],
    );
    let mut client = started(&mut run);
    // (The kernel's "WDT device closed unexpectedly" may land inside the
    // guest's "watchdog starving" line.)
    run.wait_for_output(READY, 1, BOOT);
    let data = event_named(&mut client, "WATCHDOG");
    assert_eq!(data["action"], "pause");
    event_named(&mut client, "STOP");
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "watchdog", "running": false}}"#
    );
}

#[test]
fn a_kernel_panic_with_pvpanic_sends_guest_panicked() {
    let mut host = testhost();
    let mut run = linux(&mut host, "vmlinux", "panic", &["-S", "-device", "pvpanic"]);
    let mut client = started(&mut run);
    run.wait_for_output(READY, 1, BOOT);
    let data = event_named(&mut client, "GUEST_PANICKED");
    assert_eq!(data["action"], "poweroff");
    event_named(&mut client, "STOP");
    guest_event(&mut client, "SHUTDOWN", "guest-panic");
    assert_eq!(run.wait(Duration::from_secs(30)), 0);
}

/// kvmon's resident memory in the test host, in KiB.
fn rss_kib(run: &mut Run) -> u64 {
    let pid = run.pid().to_string();
    let line = run.shell(&format!("grep VmRSS /proc/{pid}/status"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// Waits for BALLOON_CHANGE reporting `actual` (throttled ones may come
/// first).
fn balloon_change(client: &mut kvmon_tests::Client<std::net::TcpStream>, actual: u64) {
    loop {
        if event_named(client, "BALLOON_CHANGE")["actual"] == actual {
            return;
        }
    }
}

/// MemTotal and MemFree (KiB) from the `count`th meminfo line on.
fn meminfo(run: &mut Run, count: usize) -> (u64, u64) {
    let output = run.wait_for_output("testhost-guest: meminfo", count, BOOT);
    let line = output
        .lines()
        .rfind(|line| line.contains("testhost-guest: meminfo"))
        .unwrap()
        .trim_end()
        .to_string();
    let value = |key| field(&line, key).parse::<u64>().unwrap();
    (value("MemTotal"), value("MemFree"))
}

#[test]
fn linux_gives_ballooned_memory_back_and_its_memtotal_shrinks() {
    const MIB: u64 = 1 << 20;
    let mut host = testhost();
    let mut run = linux(
        &mut host,
        "vmlinux",
        "balloon",
        &["-S", "-device", "virtio-balloon-device,id=balloon0"],
    );
    let mut client = started(&mut run);
    let (total, _) = meminfo(&mut run, 1);
    let before = rss_kib(&mut run);
    let reply = client.command(r#"{"execute":"balloon","arguments":{"value":268435456}}"#);
    assert_eq!(reply, r#"{"return": {}}"#);
    balloon_change(&mut client, 256 * MIB);
    let lines = run.output().matches("testhost-guest: meminfo").count();
    let (shrunk, free) = meminfo(&mut run, lines + 1);
    let after = rss_kib(&mut run);
    eprintln!(
        "MemTotal {total} -> {shrunk} KiB (MemFree {free}); kvmon's RSS {before} -> {after} KiB"
    );
    assert_eq!(
        total - shrunk,
        256 * 1024,
        "MemTotal {total} -> {shrunk} KiB"
    );
    assert!(
        before.saturating_sub(after) >= 128 * 1024,
        "kvmon's RSS {before} -> {after} KiB"
    );
    let reply = client.command(r#"{"execute":"query-balloon"}"#);
    assert_eq!(reply, r#"{"return": {"actual": 268435456}}"#);
    // The driver's statistics reach qom-get.
    let reply = client.command(
        r#"{"execute":"qom-get","arguments":{"path":"balloon0","property":"guest-stats"}}"#,
    );
    let stats: Value = serde_json::from_str(&reply).unwrap();
    let reported = stats["return"]["stats"]["stat-total-memory"]
        .as_u64()
        .unwrap();
    assert!(reported > 400 * MIB && reported < 512 * MIB, "{reply}");
}

#[test]
fn with_deflate_on_oom_linux_survives_a_memory_hog_by_deflating() {
    const MIB: u64 = 1 << 20;
    let mut host = testhost();
    let device = "virtio-balloon-device,deflate-on-oom=on";
    let mut run = linux(
        &mut host,
        "vmlinux",
        "balloon-hog",
        &["-S", "-device", device],
    );
    let mut client = started(&mut run);
    run.wait_for_output(READY, 1, BOOT);
    let reply = client.command(r#"{"execute":"balloon","arguments":{"value":134217728}}"#);
    assert_eq!(reply, r#"{"return": {}}"#);
    let output = run.wait_for_output("testhost-guest: hog status=", 1, BOOT);
    assert!(output.contains("testhost-guest: hog status=0"), "{output}");
    // The balloon took most of the memory, then the guest took pages back
    // to get through: the smallest size reported, and the last.
    let mut sizes = Vec::new();
    while let Some(event) = client.try_line(Duration::from_secs(2)) {
        let event: Value = serde_json::from_str(&event).unwrap();
        assert_eq!(event["event"], "BALLOON_CHANGE", "{event}");
        sizes.push(event["data"]["actual"].as_u64().unwrap());
    }
    let least = sizes.iter().copied().min().unwrap();
    let reply = client.command(r#"{"execute":"query-balloon"}"#);
    let actual = serde_json::from_str::<Value>(&reply).unwrap()["return"]["actual"]
        .as_u64()
        .unwrap();
    eprintln!(
        "the balloon left {} MiB at least, {} MiB after the hog",
        least / MIB,
        actual / MIB
    );
    assert!(least <= 192 * MIB, "{sizes:?}");
    assert!(actual >= least + 64 * MIB, "{reply}, {sizes:?}");
}

/// The word after `key=` on the first line of `output` that holds `needle`.
fn value_on<'o>(output: &'o str, needle: &str, key: &str) -> &'o str {
    let line = output.lines().find(|line| line.contains(needle)).unwrap();
    let start = line.find(&format!("{key}=")).unwrap() + key.len() + 1;
    line[start..].split([' ', '\r']).next().unwrap()
}

#[test]
fn linux_virtio_net_pings_and_streams_tcp_with_the_test_host_and_sees_set_link() {
    const NET: Duration = Duration::from_secs(60);
    let mut host = testhost();
    let mut run = linux(
        &mut host,
        "vmlinux",
        "net",
        &[
            "-S",
            "-netdev",
            "tap,id=n0,ifname=ktap0,script=no,downscript=no",
            "-device",
            "virtio-net-device,netdev=n0,id=nic0",
        ],
    );
    let mut client = run.negotiated();
    // kvmon made the tap; the test host's end of it is 169.254.10.1, where
    // a listener takes the guest's stream.
    run.shell(
        "ip addr add 169.254.10.1/24 dev ktap0 && ip link set ktap0 up && rm -f /tmp/net-in && \
         { nc -l -p 5000 -e sh -c 'md5sum >/tmp/net-in' </dev/null >/dev/null 2>&1 & }",
    );
    kvmon_tests::cont(&mut client);

    let output = run.wait_for_output("testhost-guest: net sent", 1, BOOT);
    assert!(
        output.contains("net ping status=0 3 packets received"),
        "{output}"
    );
    assert_eq!(value_on(&output, "net sent", "status"), "0", "{output}");
    let sent = value_on(&output, "net sending", "md5");
    let received = run.shell("cat /tmp/net-in");
    assert!(received.starts_with(sent), "{received} for {sent}");

    let ping = run.shell("ping -c 3 -W 10 169.254.10.2");
    assert!(ping.contains("3 packets received"), "{ping}");

    run.wait_for_output("testhost-guest: net listening", 1, NET);
    // The guest's listener may not be bound yet when it says so.
    let stream = run.shell(
        "dd if=/dev/urandom of=/tmp/net-out bs=64k count=32 2>/dev/null && \
         for i in $(seq 50); do nc 169.254.10.2 5001 </tmp/net-out 2>/dev/null && break; \
         usleep 200000; done; md5sum </tmp/net-out",
    );
    let output = run.wait_for_output("testhost-guest: net received", 1, NET);
    let received = value_on(&output, "net received", "md5");
    assert!(
        stream.trim_end().ends_with(&format!("{received}  -")),
        "{stream} for {received}"
    );

    // set_link: the guest's kernel sees the carrier go and come back.
    run.wait_for_output("testhost-guest: net carrier=1", 1, NET);
    for (up, carrier, count) in [(false, 0, 1), (true, 1, 2)] {
        let set = format!(r#"{{"execute":"set_link","arguments":{{"name":"nic0","up":{up}}}}}"#);
        assert_eq!(client.command(&set), r#"{"return": {}}"#);
        run.wait_for_output(
            &format!("testhost-guest: net carrier={carrier}"),
            count,
            NET,
        );
    }
}
