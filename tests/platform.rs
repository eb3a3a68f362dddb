//! The CMOS clock, the ib700 watchdog and pvpanic, exercised from inside
//! kvmon's test guest on this host's KVM and watched over QMP: the time the
//! guest reads, RTC_CHANGE when it sets the time, its interrupts, WATCHDOG
//! with every action, GUEST_PANICKED with every panic action.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvmon_tests::{cont, event, events_within, named, query_status, with_data, Client, Vmm};

const OK: &str = r#"{"return": {}}"#;
const RUNNING: &str = r#"{"return": {"status": "running", "running": true}}"#;

fn host_seconds() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

/// Waits for a whole serial line holding `needle`; returns the output.
fn wait_for_line(vmm: &Vmm, needle: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let serial = vmm.serial();
        let whole = serial
            .find(needle)
            .is_some_and(|at| serial[at..].contains('\n'));
        if whole {
            return serial;
        }
        assert!(Instant::now() < deadline, "no {needle:?} line in {serial}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// The value of `key=` in the last serial line holding `needle`.
fn field(serial: &str, needle: &str, key: &str) -> String {
    let line = serial
        .lines()
        .rev()
        .find(|line| line.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in {serial}"));
    line.split(' ')
        .find_map(|word| word.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in {line}"))
        .trim()
        .to_string()
}

#[test]
fn the_guest_reads_the_hosts_time() {
    let vmm = Vmm::scenario("rtc-read", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    let serial = wait_for_line(&vmm, "kvmon-test: rtc time=");
    let epoch: i64 = field(&serial, "rtc time=", "epoch").parse().unwrap();
    let difference = host_seconds() - epoch;
    assert!((0..=1).contains(&difference), "{difference} s: {serial}");
}

#[test]
fn rtc_base_sets_the_guests_time() {
    const BASE: i64 = 1_150_560_081; // 2006-06-17T16:01:21
    let started = Instant::now();
    let vmm = Vmm::scenario("rtc-read", &["-rtc", "base=2006-06-17T16:01:21"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    let serial = wait_for_line(&vmm, "kvmon-test: rtc time=");
    let elapsed = started.elapsed().as_secs() as i64;
    let epoch: i64 = field(&serial, "rtc time=", "epoch").parse().unwrap();
    assert!(
        (BASE..=BASE + elapsed + 1).contains(&epoch),
        "{epoch}: {serial}"
    );
}

#[test]
fn rtc_clock_vm_does_not_count_the_time_before_cont() {
    let vmm = Vmm::scenario("rtc-read", &["-rtc", "clock=vm"]);
    let mut client = vmm.negotiated();
    std::thread::sleep(Duration::from_secs(3));
    cont(&mut client);
    let serial = wait_for_line(&vmm, "kvmon-test: rtc time=");
    let epoch: i64 = field(&serial, "rtc time=", "epoch").parse().unwrap();
    let behind = host_seconds() - epoch;
    assert!((2..=4).contains(&behind), "{behind} s behind: {serial}");
}

#[test]
fn setting_the_time_sends_rtc_change_with_the_offset() {
    let target = 1_893_456_000; // 2030-01-01T00:00:00
    let vmm = Vmm::scenario("rtc-set 2030-01-01T00:00:00", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    let change = client.event();
    let value: serde_json::Value = serde_json::from_str(&change).unwrap();
    assert_eq!(value["event"], "RTC_CHANGE", "{change}");
    assert_eq!(value["data"]["qom-path"], "/machine/unattached/device[33]");
    let offset = value["data"]["offset"].as_i64().unwrap();
    let expected = target - host_seconds();
    assert!((offset - expected).abs() <= 1, "{offset} vs {expected}");
    let serial = wait_for_line(&vmm, "kvmon-test: rtc set");
    let epoch: i64 = field(&serial, "rtc set", "epoch").parse().unwrap();
    assert!((target..=target + 1).contains(&epoch), "{serial}");
}

#[test]
fn ten_sets_within_a_second_send_at_most_two_events() {
    let vmm = Vmm::scenario("rtc-set-many 2030-01-01T00:00:00", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: rtc set n=10");
    let events = events_within(&mut client, Duration::from_millis(2500));
    let changes = events.iter().filter(|e| e.contains("RTC_CHANGE")).count();
    assert!((1..=2).contains(&changes), "{events:?}");
}

#[test]
fn periodic_alarm_and_update_interrupts_arrive() {
    let vmm = Vmm::scenario("rtc-irq", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    let serial = wait_for_line(&vmm, "kvmon-test: rtc update n=3");
    // 128 ticks at 64 Hz take two seconds by the guest's clock.
    let periodic: i64 = field(&serial, "rtc periodic", "seconds").parse().unwrap();
    assert!((1..=3).contains(&periodic), "{serial}");
    let alarm: i64 = field(&serial, "rtc alarm", "seconds").parse().unwrap();
    assert!((1..=3).contains(&alarm), "{serial}");
}

/// The test guest arming the ib700 with a 2 s timeout, with `extra`
/// arguments; returns the VMM and a client once the guest starves it.
fn starving_watchdog(extra: &[&str]) -> (Vmm, Client) {
    let mut args = vec!["-device", "ib700"];
    args.extend_from_slice(extra);
    let vmm = Vmm::scenario("watchdog 14", &args);
    let mut client = vmm.negotiated();
    cont(&mut client);
    (vmm, client)
}

fn watchdog_event(action: &str) -> String {
    with_data("WATCHDOG", &format!(r#"{{"action": "{action}"}}"#))
}

/// WATCHDOG comes only after the guest stopped feeding the watchdog.
fn bitten(vmm: &Vmm, client: &mut Client, action: &str) {
    assert_eq!(event(client), watchdog_event(action));
    assert!(
        vmm.serial().contains("kvmon-test: watchdog starving"),
        "bit while fed: {}",
        vmm.serial()
    );
}

#[test]
fn watchdog_reset_resets_the_guest() {
    let (vmm, mut client) = starving_watchdog(&[]);
    bitten(&vmm, &mut client, "reset");
    assert_eq!(
        event(&mut client),
        with_data("RESET", r#"{"guest": true, "reason": "guest-reset"}"#)
    );
    vmm.wait_for_serial("kvmon-test: rebooted via=watchdog");
    assert_eq!(query_status(&mut client), RUNNING);
}

#[test]
fn watchdog_shutdown_presses_the_power_button() {
    let (mut vmm, mut client) = starving_watchdog(&["-watchdog-action", "shutdown"]);
    bitten(&vmm, &mut client, "shutdown");
    assert_eq!(event(&mut client), named("POWERDOWN"));
    // The test guest powers off on the button.
    assert_eq!(
        event(&mut client),
        with_data("SHUTDOWN", r#"{"guest": true, "reason": "guest-shutdown"}"#)
    );
    assert_eq!(vmm.wait(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn watchdog_poweroff_exits_without_shutdown() {
    let (mut vmm, mut client) = starving_watchdog(&["-action", "watchdog=poweroff"]);
    bitten(&vmm, &mut client, "poweroff");
    assert!(client.at_eof(Duration::from_secs(10)), "no more events");
    assert_eq!(vmm.wait(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn watchdog_pause_stops_in_the_watchdog_state_until_cont() {
    let vmm = Vmm::scenario("watchdog 14", &["-device", "ib700"]);
    let mut client = vmm.negotiated();
    assert_eq!(
        client.command(r#"{"execute":"watchdog-set-action","arguments":{"action":"pause"}}"#),
        OK
    );
    cont(&mut client);
    bitten(&vmm, &mut client, "pause");
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(
        query_status(&mut client),
        r#"{"return": {"status": "watchdog", "running": false}}"#
    );
    cont(&mut client);
    assert_eq!(query_status(&mut client), RUNNING);
    // It fired once; it stays quiet.
    assert_eq!(events_within(&mut client, Duration::from_secs(3)), [""; 0]);
}

#[test]
fn watchdog_debug_prints_and_runs_on() {
    let (vmm, mut client) = starving_watchdog(&[]);
    assert_eq!(
        client.command(r#"{"execute":"set-action","arguments":{"watchdog":"debug"}}"#),
        OK
    );
    bitten(&vmm, &mut client, "debug");
    assert_eq!(query_status(&mut client), RUNNING);
    vmm.wait_for_output("stderr", "watchdog: timer fired\n", 1);
}

#[test]
fn watchdog_none_only_reports() {
    let (vmm, mut client) = starving_watchdog(&["-watchdog-action", "none"]);
    bitten(&vmm, &mut client, "none");
    assert_eq!(query_status(&mut client), RUNNING);
    assert!(!vmm.serial().contains("rebooted"));
}

#[test]
fn watchdog_inject_nmi_interrupts_the_guest() {
    let (vmm, mut client) = starving_watchdog(&["-watchdog-action", "inject-nmi"]);
    bitten(&vmm, &mut client, "inject-nmi");
    vmm.wait_for_serial("kvmon-test: nmi n=1");
    assert_eq!(query_status(&mut client), RUNNING);
}

#[test]
fn the_watchdog_does_not_count_while_the_vm_is_stopped() {
    let (vmm, mut client) = starving_watchdog(&[]);
    vmm.wait_for_serial("kvmon-test: watchdog starving");
    assert_eq!(client.command(r#"{"execute":"stop"}"#), OK);
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(
        events_within(&mut client, Duration::from_secs(3)),
        [""; 0],
        "bit while stopped"
    );
    cont(&mut client);
    bitten(&vmm, &mut client, "reset");
}

fn panicked(action: &str) -> String {
    with_data("GUEST_PANICKED", &format!(r#"{{"action": "{action}"}}"#))
}

fn guest_panic_shutdown() -> String {
    with_data("SHUTDOWN", r#"{"guest": true, "reason": "guest-panic"}"#)
}

#[test]
fn a_panic_powers_off_by_default() {
    let mut vmm = Vmm::scenario("pvpanic 1", &["-device", "pvpanic"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), panicked("poweroff"));
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(event(&mut client), guest_panic_shutdown());
    assert_eq!(vmm.wait(Duration::from_secs(10)).code(), Some(0));
    assert!(vmm.serial().contains("kvmon-test: pvpanic events=0x7"));
}

#[test]
fn panic_exit_failure_exits_with_status_1() {
    let mut vmm = Vmm::scenario(
        "pvpanic 1",
        &["-device", "pvpanic", "-action", "panic=exit-failure"],
    );
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), panicked("poweroff"));
    assert_eq!(event(&mut client), named("STOP"));
    assert_eq!(event(&mut client), guest_panic_shutdown());
    assert_eq!(vmm.wait(Duration::from_secs(10)).code(), Some(1));
}

#[test]
fn panic_pause_stops_in_guest_panicked_until_cont() {
    for extra in [["-action", "panic=pause"], ["-no-shutdown", "-no-reboot"]] {
        let mut args = vec!["-device", "pvpanic"];
        args.extend_from_slice(&extra);
        let vmm = Vmm::scenario("pvpanic 1", &args);
        let mut client = vmm.negotiated();
        cont(&mut client);
        assert_eq!(event(&mut client), panicked("pause"), "{extra:?}");
        assert_eq!(event(&mut client), named("STOP"));
        assert_eq!(
            query_status(&mut client),
            r#"{"return": {"status": "guest-panicked", "running": false}}"#
        );
        cont(&mut client);
        assert_eq!(query_status(&mut client), RUNNING);
    }
}

#[test]
fn panic_none_runs_on_and_other_pvpanic_events_are_reported() {
    let vmm = Vmm::scenario(
        "pvpanic 1",
        &["-device", "pvpanic", "-action", "panic=none"],
    );
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), panicked("run"));
    vmm.wait_for_serial("kvmon-test: pvpanic written value=1");
    assert_eq!(query_status(&mut client), RUNNING);

    let vmm = Vmm::scenario("pvpanic 2", &["-device", "pvpanic"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(
        event(&mut client),
        with_data("GUEST_CRASHLOADED", r#"{"action": "run"}"#)
    );

    let mut vmm = Vmm::scenario("pvpanic 4", &["-device", "pvpanic"]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    assert_eq!(event(&mut client), named("GUEST_PVSHUTDOWN"));
    assert_eq!(
        event(&mut client),
        with_data("SHUTDOWN", r#"{"guest": true, "reason": "guest-shutdown"}"#)
    );
    assert_eq!(vmm.wait(Duration::from_secs(10)).code(), Some(0));
}

#[test]
fn without_the_devices_their_ports_are_unassigned() {
    // No pvpanic: the write goes nowhere and the guest runs on.
    let vmm = Vmm::scenario("pvpanic 1", &[]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    let serial = vmm.wait_for_serial("kvmon-test: pvpanic written");
    assert!(serial.contains("pvpanic events=0xff"), "{serial}");
    assert_eq!(query_status(&mut client), RUNNING);
}
