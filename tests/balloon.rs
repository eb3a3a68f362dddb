//! The balloon through real KVM: kvmon's test guest touches its memory,
//! then follows the balloon's target.  Management sees BALLOON_CHANGE,
//! query-balloon and the guest's statistics as on QEMU, kvmon's resident
//! memory follows the balloon, and bad requests get QEMU's errors.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kvmon_tests::{cont, Client, Vmm};
use serde_json::Value;

const MIB: u64 = 1 << 20;
const RAM: u64 = 128 * MIB;
const OK: &str = r#"{"return": {}}"#;
const BALLOON: &str = "virtio-balloon-device,id=balloon0";
const PATH: &str = "/machine/peripheral/balloon0";

/// The balloon scenario on 128 MiB, started, once it has touched its RAM.
fn ballooning_guest(device: &str) -> (Vmm, Client) {
    let vmm = Vmm::scenario("balloon", &["-m", "128M", "-device", device]);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: balloon ready");
    (vmm, client)
}

fn command(client: &mut Client, execute: &str, arguments: &str) -> String {
    client.command(&format!(
        r#"{{"execute":"{execute}","arguments":{arguments}}}"#
    ))
}

fn returned(reply: &str) -> Value {
    let reply: Value = serde_json::from_str(reply).unwrap();
    assert!(reply.get("return").is_some(), "{reply}");
    reply["return"].clone()
}

/// Sets the target and waits for the guest to report it: BALLOON_CHANGE
/// with `actual` (the events on the way may be throttled), and the
/// guest's line saying it holds `held` pages.
fn balloon_to(vmm: &Vmm, client: &mut Client, actual: u64, held: u64) {
    assert_eq!(
        command(client, "balloon", &format!(r#"{{"value":{actual}}}"#)),
        OK
    );
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let event = client.try_line(left).expect("no BALLOON_CHANGE");
        let event: Value = serde_json::from_str(&event).unwrap();
        assert_eq!(event["event"], "BALLOON_CHANGE", "{event}");
        if event["data"]["actual"] == actual {
            break;
        }
    }
    vmm.wait_for_serial(&format!("kvmon-test: balloon held={held}\r\n"));
    let reply = client.command(r#"{"execute":"query-balloon"}"#);
    assert_eq!(reply, format!(r#"{{"return": {{"actual": {actual}}}}}"#));
}

#[test]
fn ballooned_memory_leaves_kvmon_and_comes_back_when_deflated() {
    let (vmm, mut client) = ballooning_guest(BALLOON);
    let touched = vmm.rss_kib();
    let half = RAM / 2;
    let pages = half / 4096;
    let least = half / 1024 * 8 / 10; // 80 %, in KiB
    balloon_to(&vmm, &mut client, half, pages);
    let inflated = vmm.rss_kib();
    assert!(
        touched.saturating_sub(inflated) >= least,
        "RSS went from {touched} KiB to {inflated} KiB"
    );
    // Deflated, the guest uses its pages again.
    balloon_to(&vmm, &mut client, RAM, 0);
    let deflated = vmm.rss_kib();
    eprintln!(
        "kvmon's RSS: {touched} KiB touched, {inflated} KiB inflated, {deflated} KiB deflated"
    );
    assert!(
        deflated.saturating_sub(inflated) >= least,
        "RSS went from {inflated} KiB to {deflated} KiB"
    );
}

fn guest_stats(client: &mut Client, path: &str) -> Value {
    let arguments = format!(r#"{{"path":"{path}","property":"guest-stats"}}"#);
    returned(&command(client, "qom-get", &arguments))
}

#[test]
fn guest_statistics_reach_qom_get_and_polling_refreshes_them() {
    let vmm = Vmm::scenario("balloon", &["-device", BALLOON]);
    let mut client = vmm.negotiated();
    // Before the guest sends any: QEMU 10's answer, in its key order.
    let none = "18446744073709551615";
    let names = [
        "stat-htlb-pgalloc",
        "stat-swap-out",
        "stat-alloc-stalls",
        "stat-available-memory",
        "stat-direct-reclaims",
        "stat-direct-scans",
        "stat-htlb-pgfail",
        "stat-free-memory",
        "stat-minor-faults",
        "stat-major-faults",
        "stat-total-memory",
        "stat-oom-kills",
        "stat-async-reclaims",
        "stat-swap-in",
        "stat-async-scans",
        "stat-disk-caches",
    ];
    let stats: Vec<String> = names.iter().map(|n| format!(r#""{n}": {none}"#)).collect();
    let expected = format!(
        r#"{{"return": {{"stats": {{{}}}, "last-update": 0}}}}"#,
        stats.join(", ")
    );
    let arguments = format!(r#"{{"path":"{PATH}","property":"guest-stats"}}"#);
    assert_eq!(command(&mut client, "qom-get", &arguments), expected);
    let interval = format!(r#"{{"path":"{PATH}","property":"guest-stats-polling-interval"}}"#);
    assert_eq!(
        command(&mut client, "qom-get", &interval),
        r#"{"return": 0}"#
    );

    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: balloon ready");
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs();
    // The guest's first report, found by a partial path too.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stats = loop {
        let stats = guest_stats(&mut client, "balloon0");
        if stats["last-update"] != 0 || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let updated = stats["last-update"].as_u64().unwrap();
    assert!(updated.abs_diff(now) <= 5, "{stats}");
    assert_eq!(stats["stats"]["stat-swap-in"], 1, "{stats}");
    assert!(stats["stats"]["stat-total-memory"].as_u64().unwrap() > 120 * MIB);
    assert_eq!(stats["stats"]["stat-oom-kills"], u64::MAX);

    // Polled every second, the guest reports again.
    let every_second =
        format!(r#"{{"path":"{PATH}","property":"guest-stats-polling-interval","value":1}}"#);
    assert_eq!(command(&mut client, "qom-set", &every_second), OK);
    assert_eq!(
        command(&mut client, "qom-get", &interval),
        r#"{"return": 1}"#
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let reports = guest_stats(&mut client, PATH)["stats"]["stat-swap-in"].clone();
        if reports.as_u64().unwrap() >= 3 {
            break;
        }
        assert!(Instant::now() < deadline, "no fresh statistics: {reports}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn balloon_commands_fail_as_qemus_do() {
    let without = Vmm::scenario("idle", &[]);
    let mut client = without.negotiated();
    let not_active = r#"{"error": {"class": "DeviceNotActive", "desc": "No balloon device has been activated"}}"#;
    assert_eq!(
        command(&mut client, "balloon", r#"{"value":0}"#),
        not_active
    );
    assert_eq!(
        command(&mut client, "balloon", r#"{"value":1}"#),
        not_active
    );
    assert_eq!(client.command(r#"{"execute":"query-balloon"}"#), not_active);
    assert_eq!(
        command(&mut client, "balloon", r#"{"value":"x"}"#),
        r#"{"error": {"class": "GenericError", "desc": "Invalid parameter type for 'value', expected: integer"}}"#
    );
    assert_eq!(
        command(
            &mut client,
            "qom-get",
            &format!(r#"{{"path":"{PATH}","property":"type"}}"#)
        ),
        format!(
            r#"{{"error": {{"class": "DeviceNotFound", "desc": "Device '{PATH}' not found"}}}}"#
        )
    );

    let with = Vmm::scenario("idle", &["-device", "virtio-balloon-device"]);
    let mut client = with.negotiated();
    let size =
        r#"{"error": {"class": "GenericError", "desc": "Parameter 'value' expects a size"}}"#;
    assert_eq!(command(&mut client, "balloon", r#"{"value":0}"#), size);
    assert_eq!(command(&mut client, "balloon", r#"{"value":-1}"#), size);
    // Before the driver runs, the target changes nothing anyone sees.
    assert_eq!(command(&mut client, "balloon", r#"{"value":1}"#), OK);
    assert_eq!(
        command(
            &mut client,
            "balloon",
            &format!(r#"{{"value":{}}}"#, 4 * RAM)
        ),
        OK
    );
    assert_eq!(
        client.command(r#"{"execute":"query-balloon"}"#),
        format!(r#"{{"return": {{"actual": {RAM}}}}}"#)
    );
    // An id-less device is numbered under peripheral-anon.
    let anon = "/machine/peripheral-anon/device[0]";
    let set = |property: &str, value: &str| {
        format!(r#"{{"path":"{anon}","property":"{property}","value":{value}}}"#)
    };
    let error =
        |desc: &str| format!(r#"{{"error": {{"class": "GenericError", "desc": "{desc}"}}}}"#);
    let polling = "guest-stats-polling-interval";
    for (value, reply) in [
        ("-1", error("timer value must be greater than zero")),
        ("4294967296", error("timer value is too big")),
        (
            "\"5\"",
            error("Invalid parameter type for 'guest-stats-polling-interval', expected: integer"),
        ),
        (
            "1.5",
            error("Invalid parameter type for 'guest-stats-polling-interval', expected: integer"),
        ),
        ("4294967295", OK.to_string()),
        ("0", OK.to_string()),
    ] {
        assert_eq!(
            command(&mut client, "qom-set", &set(polling, value)),
            reply,
            "{value}"
        );
    }
    assert_eq!(
        command(&mut client, "qom-set", &set("guest-stats", "{}")),
        error("Property 'virtio-balloon-device.guest-stats' is not writable")
    );
    assert_eq!(
        command(
            &mut client,
            "qom-get",
            &format!(r#"{{"path":"{anon}","property":"nope"}}"#)
        ),
        error("Property 'virtio-balloon-device.nope' not found")
    );
    assert_eq!(
        command(
            &mut client,
            "qom-get",
            r#"{"path":"//machine/peripheral-anon/device[0]/","property":"type"}"#
        ),
        r#"{"return": "virtio-balloon-device"}"#
    );
}
