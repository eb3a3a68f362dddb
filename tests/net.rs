//! NICs on taps.  As management sees them before a guest driver runs:
//! kvmon and QEMU's microvm, each given the same two NICs (one named, one
//! not, on taps of their own), answer query-rx-filter and set_link byte for
//! byte alike, errors included.  And carrying frames: the test guest
//! answers ARP and ping from the host's kernel across a tap moved into a
//! network namespace the test makes, with link-local addresses that exist
//! only there, and sees set_link; and kvmon outlives the tap.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use kvmon_tests::{cont, events_within, Client, Vmm};

/// Names for this test's taps (the kernel takes at most 15 bytes).
fn tap(tag: &str) -> String {
    format!("kvt{}{tag}", std::process::id() % 100_000)
}

/// The command line's NICs, on taps named after `tag`.
fn nics(tag: &str) -> Vec<String> {
    let (first, second) = (tap(&format!("{tag}a")), tap(&format!("{tag}b")));
    [
        "-netdev".to_string(),
        format!("tap,id=n0,ifname={first},script=no,downscript=no"),
        "-device".into(),
        "virtio-net-device,netdev=n0,id=nic0".into(),
        "-netdev".into(),
        format!("tap,id=n1,ifname={second},script=no,downscript=no"),
        "-device".into(),
        "virtio-net-device,netdev=n1".into(),
    ]
    .to_vec()
}

fn answers(client: &mut Client) -> Vec<String> {
    [
        r#"{"execute":"query-rx-filter"}"#,
        r#"{"execute":"query-rx-filter","arguments":{"name":"virtio-net-device.0"}}"#,
        r#"{"execute":"query-rx-filter","arguments":{"name":"n0"}}"#,
        r#"{"execute":"query-rx-filter","arguments":{"name":"nope"}}"#,
        r#"{"execute":"set_link","arguments":{"name":"nic0","up":false}}"#,
        r#"{"execute":"set_link","arguments":{"name":"n1","up":false}}"#,
        r#"{"execute":"set_link","arguments":{"name":"nope","up":true}}"#,
        r#"{"execute":"query-rx-filter","arguments":{"name":"nic0"}}"#,
    ]
    .iter()
    .map(|command| client.command(command))
    .collect()
}

#[test]
fn query_rx_filter_and_set_link_answer_as_qemus_do() {
    let args = nics("k");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let kvmon = Vmm::scenario("idle", &args);
    let ours = answers(&mut kvmon.negotiated());

    let args = nics("q");
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let qemu = Vmm::qemu_scenario("idle", &args);
    let theirs = answers(&mut qemu.negotiated());

    // Both NICs, with QEMU's generated address for the second.
    assert!(ours[0].contains(r#""name": "nic0""#), "{}", &ours[0][..200]);
    assert!(ours[0].contains(r#""main-mac": "52:54:00:12:34:57""#));
    assert_eq!(ours.len(), theirs.len());
    for (index, (ours, theirs)) in ours.iter().zip(&theirs).enumerate() {
        // The replies run to tens of kilobytes: show where they part.
        let at = ours
            .bytes()
            .zip(theirs.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(theirs.len()));
        let window =
            |text: &str| text[at.saturating_sub(60)..(at + 60).min(text.len())].to_string();
        assert!(
            ours == theirs,
            "answer {index} differs at byte {at}: kvmon {:?}, QEMU {:?}",
            window(ours),
            window(theirs)
        );
    }
}

/// Runs a shell command; its success and output.
fn sh(command: &str) -> (bool, String) {
    let output = Command::new("sh").args(["-c", command]).output().unwrap();
    let text = String::from_utf8_lossy(&output.stdout).to_string()
        + &String::from_utf8_lossy(&output.stderr);
    (output.status.success(), text)
}

/// A network namespace of the test's, removed (with what is in it) at the
/// end.
struct Namespace(String);

impl Namespace {
    fn new(name: String) -> Namespace {
        let (made, output) = sh(&format!("ip netns add {name}"));
        assert!(made, "{output}");
        Namespace(name)
    }

    /// Runs `command` inside.
    fn run(&self, command: &str) -> (bool, String) {
        sh(&format!("ip netns exec {} {command}", self.0))
    }
}

impl Drop for Namespace {
    fn drop(&mut self) {
        sh(&format!("ip netns del {}", self.0));
    }
}

#[test]
fn the_guest_answers_arp_and_ping_across_a_tap_and_sees_set_link() {
    let tap = tap("p");
    let namespace = Namespace::new(format!("kvmon-test-{}", std::process::id()));
    let netdev = format!("tap,id=n0,ifname={tap},script=no,downscript=no");
    let args = [
        "-netdev",
        &netdev,
        "-device",
        "virtio-net-device,netdev=n0,id=nic0",
    ];
    let vmm = Vmm::scenario("net 169.254.10.2", &args);
    let mut client = vmm.negotiated();
    // kvmon holds the tap: it moves into the namespace, addressed there.
    for command in [
        format!("ip link set {tap} netns {}", namespace.0),
        format!("ip -n {} addr add 169.254.10.1/16 dev {tap}", namespace.0),
        format!("ip -n {} link set {tap} up", namespace.0),
    ] {
        let (done, output) = sh(&command);
        assert!(done, "{command}: {output}");
    }
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: net ready mac=52:54:00:12:34:56 link=up");
    let (answered, output) = namespace.run("ping -c 3 -W 10 169.254.10.2");
    assert!(answered, "{output}\n{}", vmm.serial());
    let serial = vmm.wait_for_serial("kvmon-test: net echo-reply n=3\r\n");
    assert!(
        serial.contains("kvmon-test: net arp-reply n=1\r\n"),
        "{serial}"
    );

    let set = |name: &str, up: bool| {
        format!(r#"{{"execute":"set_link","arguments":{{"name":"{name}","up":{up}}}}}"#)
    };
    assert_eq!(client.command(&set("nic0", false)), r#"{"return": {}}"#);
    vmm.wait_for_serial("kvmon-test: net link=down");
    assert_eq!(client.command(&set("n0", true)), r#"{"return": {}}"#);
    vmm.wait_for_serial("kvmon-test: net link=up");

    // The tap deleted under it: kvmon says so and serves on.
    let (deleted, output) = namespace.run(&format!("ip link del {tap}"));
    assert!(deleted, "{output}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !vmm.stderr().contains(&format!("the tap {tap} has gone")) {
        assert!(std::time::Instant::now() < deadline, "{}", vmm.stderr());
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    assert_eq!(client.command(&set("nic0", false)), r#"{"return": {}}"#);
    vmm.wait_for_serial("kvmon-test: net link=down");
    assert!(kvmon_tests::query_status(&mut client).contains("running"));
}

#[test]
fn the_guests_rx_mode_changes_are_announced_once_until_queried() {
    let netdev = format!("tap,id=n0,ifname={},script=no,downscript=no", tap("r"));
    let args = [
        "-netdev",
        &netdev,
        "-device",
        "virtio-net-device,netdev=n0,id=nic0",
    ];
    let vmm = Vmm::scenario("net-rxmode 169.254.10.2", &args);
    let mut client = vmm.negotiated();
    cont(&mut client);
    vmm.wait_for_serial("kvmon-test: net rx-mode acks=Some(0),Some(0)");
    // Two changes, one event; as QEMU's virtio-net-device, no name.
    let changed = kvmon_tests::with_data(
        "NIC_RX_FILTER_CHANGED",
        r#"{"path": "/machine/peripheral/nic0"}"#,
    );
    let one_second = std::time::Duration::from_secs(1);
    assert_eq!(
        events_within(&mut client, one_second),
        std::slice::from_ref(&changed)
    );
    let filter = client.command(r#"{"execute":"query-rx-filter","arguments":{"name":"nic0"}}"#);
    assert!(
        filter.contains(r#""promiscuous": false"#),
        "{}",
        &filter[..100]
    );
    assert!(filter.contains(r#""multicast": "all""#));
    // Queried, the next change is announced again.
    for (up, seen) in [(false, "link=down"), (true, "rx-mode ack=Some(0)")] {
        let set = format!(r#"{{"execute":"set_link","arguments":{{"name":"nic0","up":{up}}}}}"#);
        assert_eq!(client.command(&set), r#"{"return": {}}"#);
        vmm.wait_for_serial(&format!("kvmon-test: net {seen}\r\n"));
    }
    assert_eq!(events_within(&mut client, one_second), [changed]);
}
