//! NICs on taps, as management sees them before a guest driver runs:
//! kvmon and QEMU's microvm, each given the same two NICs (one named, one
//! not, on taps of their own), answer query-rx-filter and set_link byte for
//! byte alike, errors included.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use kvmon_tests::{Client, Vmm};

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
