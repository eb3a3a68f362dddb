//! kvmon answers as QEMU 10 does: every input of tests/corpus/qmp.txt goes
//! to both on a fresh connection, and the answers must be identical once
//! timestamps and versions are normalised.  QEMU's own answers are the
//! expected ones; nothing here is hard-coded.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use kvmon_tests::client::version_text;
use kvmon_tests::{normalize, Vmm};
use serde_json::Value;

#[derive(Debug)]
enum Mode {
    /// Greeting read, nothing else sent.
    Fresh,
    Negotiated,
    /// Negotiated with the `oob` capability.
    Oob,
}

#[derive(Debug)]
struct Case {
    label: String,
    mode: Mode,
    input: Vec<u8>,
}

fn corpus() -> Vec<Case> {
    let text = include_str!("corpus/qmp.txt");
    let mut cases = Vec::new();
    let mut label = String::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            label = comment.to_string();
            continue;
        }
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (mode, input) = line.split_once(' ').expect("a mode and an input");
        let mode = match mode {
            "fresh" => Mode::Fresh,
            "negotiated" => Mode::Negotiated,
            "oob" => Mode::Oob,
            other => panic!("unknown mode {other}"),
        };
        cases.push(Case {
            label: label.clone(),
            mode,
            input: unescape(input),
        });
    }
    cases
}

/// `\\` and `\xNN` escapes; everything else literal.
fn unescape(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut at = 0;
    while at < bytes.len() {
        match (bytes[at], bytes.get(at + 1)) {
            (b'\\', Some(b'\\')) => {
                out.push(b'\\');
                at += 2;
            }
            (b'\\', Some(b'x')) => {
                let hex = std::str::from_utf8(&bytes[at + 2..at + 4]).expect("hex");
                out.push(u8::from_str_radix(hex, 16).expect("hex"));
                at += 4;
            }
            (byte, _) => {
                out.push(byte);
                at += 1;
            }
        }
    }
    out
}

/// Sent after every case: the control character resets whatever state the
/// case left the parser in, and the command's reply marks the end.
const SENTINEL: &[u8] = b"\x01\n{\"execute\":\"query-status\",\"id\":\"end-of-case\"}";

fn answers(vmm: &Vmm, case: &Case, versions: &[String]) -> Vec<String> {
    let mut client = vmm.connect();
    match case.mode {
        Mode::Fresh => {}
        Mode::Negotiated => client.negotiate(),
        Mode::Oob => client.negotiate_oob(),
    }
    client.send(&case.input);
    client.send(SENTINEL);
    let mut lines = Vec::new();
    loop {
        match client.try_line(Duration::from_secs(10)) {
            Some(line) => {
                let end = line.contains("\"end-of-case\"");
                lines.push(normalize(&line, versions));
                if end {
                    return lines;
                }
            }
            None => {
                lines.push("<no more answers>".to_string());
                return lines;
            }
        }
    }
}

#[test]
fn every_corpus_input_gets_qemus_answers() {
    let qemu = Vmm::qemu(&[]);
    let kvmon = Vmm::kvmon(&[]);
    let versions = [
        version_text(&qemu.connect().greeting),
        version_text(&kvmon.connect().greeting),
    ];
    let cases = corpus();
    assert!(cases.len() > 300, "the corpus is missing");
    let mut differences = Vec::new();
    for case in &cases {
        let expected = answers(&qemu, case, &versions);
        let got = answers(&kvmon, case, &versions);
        if expected != got {
            differences.push(format!(
                "{} ({:?}):\n  QEMU:  {}\n  kvmon: {}",
                case.label,
                String::from_utf8_lossy(&case.input),
                expected.join("\n         "),
                got.join("\n         ")
            ));
        }
    }
    assert!(
        differences.is_empty(),
        "{} of {} cases differ from QEMU:\n{}",
        differences.len(),
        cases.len(),
        differences.join("\n")
    );
}

#[test]
fn greetings_differ_only_in_version() {
    let qemu = Vmm::qemu(&[]);
    let kvmon = Vmm::kvmon(&[]);
    assert_eq!(
        normalize(&qemu.connect().greeting, &[]),
        normalize(&kvmon.connect().greeting, &[])
    );
    let greeting: Value = serde_json::from_str(&kvmon.connect().greeting).unwrap();
    let version = &greeting["QMP"]["version"];
    assert!(version["qemu"]["major"].as_i64().unwrap() >= 5);
    assert!(version["package"].as_str().unwrap().starts_with("kvmon-"));
}

/// The introspection of each command and event kvmon has, with masked type
/// names replaced by what they name, as a comparable tree.
fn resolved(
    schema: &[Value],
    names: &BTreeMap<String, usize>,
    name: &str,
    seen: &mut HashSet<String>,
) -> Value {
    let Some(&index) = names.get(name) else {
        return Value::String(name.to_string());
    };
    let entry = &schema[index];
    let masked = name.chars().all(|c| c.is_ascii_digit()) || name.starts_with('[');
    if !seen.insert(name.to_string()) {
        return Value::String("<recursive>".into());
    }
    let mut object = serde_json::Map::new();
    for (key, value) in entry.as_object().unwrap() {
        let value = match (key.as_str(), value) {
            ("name", _) if masked => continue,
            // Features describe QEMU extras kvmon does not offer.
            ("features", _) => continue,
            ("arg-type" | "ret-type" | "element-type" | "type", Value::String(type_name)) => {
                resolved(schema, names, type_name, seen)
            }
            ("members" | "variants", Value::Array(items)) => Value::Array(
                items
                    .iter()
                    .map(|item| {
                        let mut item = item.as_object().unwrap().clone();
                        item.remove("features");
                        if let Some(Value::String(type_name)) = item.get("type").cloned() {
                            item.insert("type".into(), resolved(schema, names, &type_name, seen));
                        }
                        Value::Object(item)
                    })
                    .collect(),
            ),
            _ => value.clone(),
        };
        object.insert(key.clone(), value);
    }
    seen.remove(name);
    Value::Object(object)
}

fn schema(vmm: &Vmm) -> (Vec<Value>, BTreeMap<String, usize>) {
    let mut client = vmm.negotiated();
    let reply: Value =
        serde_json::from_str(&client.command(r#"{"execute":"query-qmp-schema"}"#)).unwrap();
    let entries = reply["return"].as_array().unwrap().clone();
    let names = entries
        .iter()
        .enumerate()
        .map(|(index, entry)| (entry["name"].as_str().unwrap().to_string(), index))
        .collect();
    (entries, names)
}

#[test]
fn introspection_of_every_command_and_event_matches_qemu() {
    let (qemu, qemu_names) = schema(&Vmm::qemu(&[]));
    let (kvmon, kvmon_names) = schema(&Vmm::kvmon(&[]));
    let entities: Vec<&str> = kvmon
        .iter()
        .filter(|entry| matches!(entry["meta-type"].as_str(), Some("command" | "event")))
        .map(|entry| entry["name"].as_str().unwrap())
        .collect();
    assert!(entities.len() >= 16, "{entities:?}");
    // The empty object is "0", as in QEMU, since both list query-status first.
    assert_eq!(kvmon[0]["name"], "query-status");
    assert_eq!(kvmon[0]["arg-type"], "0");
    for name in entities {
        let expected = resolved(&qemu, &qemu_names, name, &mut HashSet::new());
        let got = resolved(&kvmon, &kvmon_names, name, &mut HashSet::new());
        assert_eq!(got, expected, "introspection of {name} differs from QEMU's");
    }
}

#[test]
fn every_kvmon_command_is_a_qemu_command() {
    let list = |vmm: &Vmm| -> Vec<String> {
        let mut client = vmm.negotiated();
        let reply: Value =
            serde_json::from_str(&client.command(r#"{"execute":"query-commands"}"#)).unwrap();
        reply["return"]
            .as_array()
            .unwrap()
            .iter()
            .map(|entry| entry["name"].as_str().unwrap().to_string())
            .collect()
    };
    let qemu = list(&Vmm::qemu(&[]));
    let kvmon = list(&Vmm::kvmon(&[]));
    for command in &kvmon {
        assert!(qemu.contains(command), "{command} is not a QEMU command");
    }
    // QEMU lists the last registered first; kvmon registers in schema order.
    assert_eq!(kvmon.last().map(String::as_str), Some("query-status"));
}

#[test]
fn a_large_set_of_unknown_members_names_the_member_qemu_names() {
    // Past 61,680 keys GLib's table outgrows 2^16 slots.
    let members: Vec<String> = (0..70_000).map(|n| format!(r#""m{n}":{n}"#)).collect();
    let input = format!(
        r#"{{"execute":"query-status","arguments":{{{}}}}}"#,
        members.join(",")
    );
    let case = Case {
        label: "70,000 unknown members".to_string(),
        mode: Mode::Negotiated,
        input: input.into_bytes(),
    };
    let qemu = Vmm::qemu(&[]);
    let kvmon = Vmm::kvmon(&[]);
    let expected = answers(&qemu, &case, &[]);
    assert!(expected[0].contains("is unexpected"), "{expected:?}");
    assert_eq!(answers(&kvmon, &case, &[]), expected);
}
