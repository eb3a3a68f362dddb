//! The protocol on the wire, beyond what the differential test can ask of
//! QEMU in reasonable time: full-size limits, pretty monitors, several
//! monitors, quit, out-of-band ahead of stalled commands, yank.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use kvmon_tests::{Client, TempDir, Vmm};

const STATUS: &str = r#"{"execute":"query-status","id":"after"}"#;
const STATUS_REPLY: &str =
    r#"{"return": {"status": "prelaunch", "running": false}, "id": "after"}"#;

#[test]
fn a_message_at_the_size_limit_is_answered_and_one_past_it_is_refused() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    // 31 bytes of tokens before the id string, the string, then `}`: the
    // sum of raw token bytes may be at most 64 MiB - 1.
    let limit = 64 << 20;
    let fits = format!(
        r#"{{"execute":"query-status","id":"{}"}}"#,
        "a".repeat(limit - 35)
    );
    client.send(&fits);
    let reply = client.line();
    assert!(
        reply.starts_with(r#"{"return": {"status": "prelaunch", "running": false}, "id": "aaa"#)
    );
    // QEMU 10.0.2 answers this very input with a 67,108,892-byte line.
    assert_eq!(reply.len(), 67_108_892);
    let over = format!(
        r#"{{"execute":"query-status","id":"{}"}}"#,
        "a".repeat(limit - 34)
    );
    client.send(&over);
    assert_eq!(
        client.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}"#
    );
    client.send(STATUS);
    assert_eq!(client.line(), STATUS_REPLY, "the connection stays usable");
}

#[test]
fn a_single_token_past_the_limit_is_cut_and_the_rest_read_afresh() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    client.send(format!("{{\"id\":\"{}\"}}\n", "a".repeat(70_000_000)));
    assert_eq!(
        client.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON token size limit exceeded"}}"#
    );
    let keyword = client.line();
    assert!(
        keyword.contains(r#"JSON parse error, invalid keyword 'aaaa"#),
        "{keyword}"
    );
    // QEMU formats the message into 1024 bytes: the closing quote is cut off.
    let desc =
        &keyword[r#"{"error": {"class": "GenericError", "desc": ""#.len()..keyword.len() - 3];
    assert_eq!(desc.len(), "JSON parse error, ".len() + 1023);
    client.send(STATUS);
    loop {
        let line = client.line();
        if line == STATUS_REPLY {
            break;
        }
        assert!(line.contains("JSON parse error"), "{line}");
    }
}

#[test]
fn token_count_limit_is_two_mebi_tokens() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    // {"execute":"query-status","id":[ + N elements + ]}: 2N + 9 tokens
    // (`{` `"execute"` `:` `"query-status"` `,` `"id"` `:` `[`, N elements,
    // N-1 commas, `]` `}`).
    let message = |elements: usize| {
        format!(
            r#"{{"execute":"query-status","id":[{}0]}}"#,
            "0,".repeat(elements - 1)
        )
    };
    let tokens = |elements: usize| 2 * elements + 9;
    let at_limit = (2_097_152 - 9) / 2;
    assert!(tokens(at_limit) <= 2_097_152 && tokens(at_limit + 1) > 2_097_152);
    client.send(message(at_limit));
    assert!(client
        .line()
        .starts_with(r#"{"return": {"status": "prelaunch", "running": false}, "id": [0, 0"#));
    client.send(message(at_limit + 1));
    assert_eq!(
        client.line(),
        r#"{"error": {"class": "GenericError", "desc": "JSON token count limit exceeded"}}"#
    );
    client.send(STATUS);
    assert_eq!(client.line(), STATUS_REPLY);
}

#[test]
fn ten_thousand_deep_nesting_is_refused_and_the_connection_lives_on() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    client.send(format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)));
    client.send(STATUS);
    let mut errors = 0;
    loop {
        let line = client.line();
        if line == STATUS_REPLY {
            break;
        }
        assert!(
            line.starts_with(r#"{"error": {"class": "GenericError", "desc": ""#),
            "{line}"
        );
        errors += 1;
    }
    // As in QEMU: each run of 1025 '[' trips the limit (9 errors), the last
    // 775 '[' close into an array that is not an object (1), and each of the
    // 9225 ']' left over is an error of its own.
    assert_eq!(errors, 9 + 1 + 9225);
}

#[test]
fn a_command_may_arrive_one_byte_at_a_time() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    for byte in br#" {"execute": "query-status",
        "id": "after"} "#
    {
        client.send([*byte]);
        std::thread::sleep(Duration::from_micros(200));
    }
    assert_eq!(client.line(), STATUS_REPLY);
}

#[test]
fn a_pretty_monitor_prints_as_qemu_does() {
    let dir = TempDir::new();
    let path = dir.join("pretty.sock");
    let chardev = format!("socket,id=mon,path={},server=on,wait=off", path.display());
    let mut kvmon = Vmm::spawn(
        &kvmon_tests::kvmon_bin(),
        &[
            "-machine",
            "none",
            "-S",
            "-chardev",
            &chardev,
            "-mon",
            "chardev=mon,mode=control,pretty=on",
        ],
        dir,
    );
    kvmon.qmp = path;
    kvmon.wait_for_socket();
    let mut raw = Client::over(std::os::unix::net::UnixStream::connect(&kvmon.qmp).unwrap());
    let mut greeting = Vec::new();
    while greeting.last().map(String::as_str) != Some("}") {
        greeting.push(raw.line());
    }
    assert_eq!(greeting[0], "{");
    assert_eq!(greeting[1], r#"    "QMP": {"#);
    assert_eq!(greeting[4], r#"                "micro": 0,"#);
    raw.send(r#"{"execute":"qmp_capabilities"}"#);
    assert_eq!(
        [raw.line(), raw.line(), raw.line(), raw.line()],
        ["{", r#"    "return": {"#, "    }", "}"]
    );
    raw.send(r#"{"execute":"cont","id":[1,{"a":[]}]}"#);
    let expected = [
        "{",
        r#"    "timestamp": {"#,
        r#"        "seconds": S,"#,
        r#"        "microseconds": U"#,
        "    },",
        r#"    "event": "RESUME""#,
        "}",
        "{",
        r#"    "return": {"#,
        "    },",
        r#"    "id": ["#,
        "        1,",
        "        {",
        r#"            "a": ["#,
        "            ]",
        "        }",
        "    ]",
        "}",
    ];
    for (index, want) in expected.iter().enumerate() {
        let line = raw.line();
        let line = if (2..=3).contains(&index) {
            let number_at = line.rfind(' ').unwrap() + 1;
            let ends_with_comma = line.ends_with(',');
            format!(
                "{}{}{}",
                &line[..number_at],
                if index == 2 { "S" } else { "U" },
                if ends_with_comma { "," } else { "" }
            )
        } else {
            line
        };
        assert_eq!(&line, want);
    }
}

#[test]
fn events_reach_every_negotiated_client_of_every_monitor_and_no_other() {
    let dir = TempDir::new();
    let second = dir.join("second.sock");
    let second_arg = format!("unix:{},server=on,wait=off", second.display());
    let kvmon = Vmm::kvmon(&["-qmp", &second_arg]);
    let mut a = kvmon.negotiated();
    let mut b = Client::connect(&second);
    b.negotiate();
    let mut idle = kvmon.connect();
    assert_eq!(a.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    assert!(a.events[0].ends_with(r#""event": "RESUME"}"#));
    assert_eq!(b.event(), a.events[0], "same event, same timestamp");
    assert_eq!(
        b.command(r#"{"execute":"query-yank"}"#),
        r#"{"return": [{"type": "chardev", "id": "compat_monitor0"}, {"type": "chardev", "id": "compat_monitor1"}]}"#
    );
    // The client that never negotiated got nothing but its greeting.
    assert_eq!(idle.try_line(Duration::from_millis(200)), None);
    idle.negotiate();
    assert!(
        idle.events.is_empty(),
        "no event from before negotiation is replayed"
    );
    assert_eq!(
        idle.try_line(Duration::from_millis(200)),
        None,
        "not even after it"
    );
}

#[test]
fn quit_sends_shutdown_then_the_return_then_closes_and_exits_zero() {
    let mut kvmon = Vmm::kvmon(&[]);
    let mut other = kvmon.negotiated();
    let mut client = kvmon.negotiated();
    // A command after quit in the same write is not run.
    client.send(r#"{"execute":"quit","id":1}{"execute":"query-status","id":2}"#);
    let shutdown = client.line();
    assert!(shutdown.starts_with(r#"{"timestamp": {"seconds": "#));
    assert!(shutdown
        .ends_with(r#""event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#));
    assert_eq!(client.line(), r#"{"return": {}, "id": 1}"#);
    assert!(client.at_eof(Duration::from_secs(5)));
    assert_eq!(other.line(), shutdown, "every client sees the SHUTDOWN");
    assert!(other.at_eof(Duration::from_secs(5)));
    assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
    assert!(!kvmon.qmp.exists(), "the socket file is removed");
}

#[test]
fn hmp_quit_answers_an_empty_string() {
    let mut kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    let reply =
        client.command(r#"{"execute":"human-monitor-command","arguments":{"command-line":"q"}}"#);
    assert_eq!(reply, r#"{"return": ""}"#);
    assert!(client.events[0].contains(r#""reason": "host-qmp-quit""#));
    assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn out_of_band_commands_overtake_commands_held_back_by_a_slow_reader() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.connect();
    client.negotiate_oob();
    // Far more output than kvmon queues before it holds in-band commands
    // back, and the client reads none of it until the end.
    let mut batch = String::new();
    for n in 0..400 {
        batch.push_str(&format!(r#"{{"execute":"query-qmp-schema","id":{n}}}"#));
    }
    client.send(&batch);
    std::thread::sleep(Duration::from_millis(300));
    client.send(r#"{"exec-oob":"query-yank","id":"oob"}"#);
    let mut order = Vec::new();
    while order.len() < 401 {
        let line = client.line();
        let id = line
            .rsplit_once("\"id\": ")
            .map(|(_, id)| id.trim_end_matches('}').to_string());
        order.push(id.unwrap_or_default());
    }
    let oob = order
        .iter()
        .position(|id| id == "\"oob\"")
        .expect("the oob reply");
    assert!(oob < 400, "the oob reply came last: nothing was overtaken");
    let in_band: Vec<&String> = order.iter().filter(|id| *id != "\"oob\"").collect();
    let expected: Vec<String> = (0..400).map(|n| n.to_string()).collect();
    assert_eq!(
        in_band,
        expected.iter().collect::<Vec<_>>(),
        "in-band replies stay in order"
    );
}

#[test]
fn yank_drops_the_chardevs_connections_and_the_monitor_serves_on() {
    let kvmon = Vmm::kvmon(&[]);
    let mut bystander = kvmon.negotiated();
    let mut client = kvmon.negotiated();
    client.send(r#"{"execute":"yank","arguments":{"instances":[{"type":"chardev","id":"compat_monitor0"}]}}"#);
    assert!(
        client.at_eof(Duration::from_secs(5)),
        "no reply: the connection is gone"
    );
    assert!(bystander.at_eof(Duration::from_secs(5)));
    let mut fresh = kvmon.negotiated();
    assert_eq!(fresh.command(STATUS), STATUS_REPLY);
}
