//! The messages of the protocol: greeting, requests, responses and events.

use serde_json::{Map, Value};

use crate::error::QmpError;
use crate::json::writer::qdict_order;
use crate::types::VersionInfo;
use crate::SchemaType;

/// A well-formed request: which command, with which arguments, how.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub command: String,
    /// Always an object; `{}` when the request had no `arguments`.
    pub arguments: Value,
    /// Sent as `exec-oob`.
    pub oob: bool,
}

/// A request as parsed, before its members are checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The `id` member, echoed in the response; absent when the input is
    /// not an object.
    pub id: Option<Value>,
    pub request: Result<Request, QmpError>,
}

/// Whether `input` asks for out-of-band execution; such requests run as
/// soon as they are read, ahead of queued in-band ones.
pub fn is_oob(input: &Value) -> bool {
    input
        .as_object()
        .is_some_and(|object| object.contains_key("exec-oob") && !object.contains_key("execute"))
}

/// Checks a request's members the way QEMU's `qmp_dispatch` does: in the
/// order the members sit in QEMU's dictionary, first problem wins.
/// `oob_enabled` is whether the client negotiated the `oob` capability.
pub fn check_request(input: Value, oob_enabled: bool) -> Incoming {
    let Value::Object(mut object) = input else {
        return Incoming {
            id: None,
            request: Err(QmpError::generic("QMP input must be a JSON object")),
        };
    };
    let id = object.get("id").cloned();
    let request = check_members(&object, oob_enabled).map(|(exec_key, oob)| Request {
        command: match object.remove(exec_key) {
            Some(Value::String(command)) => command,
            _ => String::new(),
        },
        arguments: object
            .remove("arguments")
            .unwrap_or_else(|| Value::Object(Map::new())),
        oob,
    });
    Incoming { id, request }
}

/// Returns the member naming the command and whether it is `exec-oob`.
fn check_members(
    object: &Map<String, Value>,
    oob_enabled: bool,
) -> Result<(&'static str, bool), QmpError> {
    let members: Vec<(&String, &Value)> = object.iter().collect();
    let mut exec_key: Option<&'static str> = None;
    for index in qdict_order(members.iter().map(|(key, _)| key.as_str())) {
        let (key, value) = members[index];
        match key.as_str() {
            name @ ("execute" | "exec-oob") if name == "execute" || oob_enabled => {
                if !value.is_string() {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{name}' must be a string"
                    )));
                }
                let name = if name == "execute" {
                    "execute"
                } else {
                    "exec-oob"
                };
                if let Some(first) = exec_key {
                    return Err(QmpError::generic(format!(
                        "QMP input member '{name}' clashes with '{first}'"
                    )));
                }
                exec_key = Some(name);
            }
            "arguments" => {
                if !value.is_object() {
                    return Err(QmpError::generic(
                        "QMP input member 'arguments' must be an object",
                    ));
                }
            }
            "id" => {}
            other => {
                return Err(QmpError::generic(format!(
                    "QMP input member '{other}' is unexpected"
                )))
            }
        }
    }
    match exec_key {
        Some(key) => Ok((key, key == "exec-oob")),
        None => Err(QmpError::generic("QMP input lacks member 'execute'")),
    }
}

/// `{"return": value}` or `{"error": {...}}`, with the request's `id` if it had one.
pub fn response(result: Result<Value, QmpError>, id: Option<Value>) -> Value {
    let mut message = Map::new();
    match result {
        Ok(value) => {
            message.insert("return".into(), value);
        }
        Err(error) => {
            let mut body = Map::new();
            body.insert("class".into(), Value::String(error.class.as_str().into()));
            body.insert("desc".into(), Value::String(error.desc));
            message.insert("error".into(), Value::Object(body));
        }
    }
    if let Some(id) = id {
        message.insert("id".into(), id);
    }
    Value::Object(message)
}

/// A message as it goes on the wire: JSON, then CRLF.  Pretty output (for
/// `-mon pretty=on`) spans lines, each ending in CRLF too.
pub fn frame(message: &Value, pretty: bool) -> Vec<u8> {
    let mut json = Vec::with_capacity(128);
    crate::json::writer::write(message, pretty, &mut json);
    // Compact JSON has no raw newline (strings escape theirs): only pretty
    // output needs its line ends turned into CRLF.
    if pretty {
        let mut lines = Vec::with_capacity(json.len() + json.len() / 8);
        for byte in json {
            if byte == b'\n' {
                lines.push(b'\r');
            }
            lines.push(byte);
        }
        json = lines;
    }
    json.extend_from_slice(b"\r\n");
    json
}

/// The greeting every client receives on connecting.
pub fn greeting(version: &VersionInfo) -> Value {
    let mut body = Map::new();
    body.insert("version".into(), version.to_value());
    body.insert(
        "capabilities".into(),
        Value::Array(vec![Value::String("oob".into())]),
    );
    let mut message = Map::new();
    message.insert("QMP".into(), Value::Object(body));
    Value::Object(message)
}

/// An event message: name, optional data, and when it happened.
pub fn event(name: &str, data: Option<Value>, seconds: i64, microseconds: i64) -> Value {
    let mut timestamp = Map::new();
    timestamp.insert("seconds".into(), seconds.into());
    timestamp.insert("microseconds".into(), microseconds.into());
    let mut message = Map::new();
    message.insert("event".into(), Value::String(name.into()));
    message.insert("timestamp".into(), Value::Object(timestamp));
    if let Some(data) = data {
        message.insert("data".into(), data);
    }
    Value::Object(message)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::writer::to_string;
    use serde_json::json;

    fn error(input: Value, oob: bool) -> (Option<Value>, String) {
        let incoming = check_request(input, oob);
        (incoming.id, incoming.request.unwrap_err().desc)
    }

    #[test]
    fn accepts_requests_with_and_without_arguments() {
        let incoming = check_request(json!({"execute": "stop", "id": [1, {"a": 2}]}), false);
        assert_eq!(incoming.id, Some(json!([1, {"a": 2}])));
        let request = incoming.request.unwrap();
        assert_eq!(request.command, "stop");
        assert_eq!(request.arguments, json!({}));
        assert!(!request.oob);
        let oob = check_request(
            json!({"exec-oob": "yank", "arguments": {"instances": []}}),
            true,
        );
        let request = oob.request.unwrap();
        assert!(request.oob);
        assert_eq!(request.arguments, json!({"instances": []}));
    }

    #[test]
    fn rejects_malformed_requests_with_qemu_texts() {
        assert_eq!(
            error(json!([1]), false),
            (None, "QMP input must be a JSON object".into())
        );
        assert_eq!(
            error(json!({}), false).1,
            "QMP input lacks member 'execute'"
        );
        assert_eq!(
            error(json!({"execute": 1, "id": 7}), false),
            (
                Some(json!(7)),
                "QMP input member 'execute' must be a string".into()
            )
        );
        assert_eq!(
            error(json!({"execute": "a", "exec-oob": "b"}), true).1,
            "QMP input member 'execute' clashes with 'exec-oob'"
        );
        assert_eq!(
            error(json!({"exec-oob": "b"}), false).1,
            "QMP input member 'exec-oob' is unexpected"
        );
        assert_eq!(
            error(json!({"execute": "a", "arguments": []}), false).1,
            "QMP input member 'arguments' must be an object"
        );
        assert_eq!(
            error(json!({"execute": "a", "foo": 1}), false).1,
            "QMP input member 'foo' is unexpected"
        );
    }

    #[test]
    fn pretty_frames_match_qemu_bytes() {
        let version = VersionInfo {
            qemu: crate::types::VersionTriple {
                major: 10,
                minor: 0,
                micro: 2,
            },
            package: "Debian 1:10.0.2+ds-2+deb13u1~bpo12+1".into(),
        };
        assert_eq!(
            frame(&greeting(&version), true),
            b"{\r\n    \"QMP\": {\r\n        \"version\": {\r\n            \"qemu\": {\r\n                \"micro\": 2,\r\n                \"minor\": 0,\r\n                \"major\": 10\r\n            },\r\n            \"package\": \"Debian 1:10.0.2+ds-2+deb13u1~bpo12+1\"\r\n        },\r\n        \"capabilities\": [\r\n            \"oob\"\r\n        ]\r\n    }\r\n}\r\n"
        );
        assert_eq!(
            frame(&response(Ok(json!({})), None), true),
            b"{\r\n    \"return\": {\r\n    }\r\n}\r\n"
        );
        assert_eq!(
            frame(&response(Ok(json!({"status": "prelaunch", "running": false})), Some(json!([{}, [], {"a": {}}, [[]]]))), true),
            b"{\r\n    \"return\": {\r\n        \"status\": \"prelaunch\",\r\n        \"running\": false\r\n    },\r\n    \"id\": [\r\n        {\r\n        },\r\n        [\r\n        ],\r\n        {\r\n            \"a\": {\r\n            }\r\n        },\r\n        [\r\n            [\r\n            ]\r\n        ]\r\n    ]\r\n}\r\n"
        );
        assert_eq!(
            frame(&json!({"return": {}}), false),
            b"{\"return\": {}}\r\n"
        );
    }

    #[test]
    fn envelopes_print_as_qemu_prints_them() {
        assert_eq!(
            to_string(&response(Err(QmpError::generic("x")), Some(json!("i")))),
            r#"{"id": "i", "error": {"class": "GenericError", "desc": "x"}}"#
        );
        assert_eq!(
            to_string(&event(
                "SHUTDOWN",
                Some(json!({"guest": false, "reason": "host-qmp-quit"})),
                5,
                7
            )),
            r#"{"timestamp": {"seconds": 5, "microseconds": 7}, "event": "SHUTDOWN", "data": {"guest": false, "reason": "host-qmp-quit"}}"#
        );
        let version = VersionInfo {
            qemu: crate::types::VersionTriple {
                major: 10,
                minor: 0,
                micro: 2,
            },
            package: "p".into(),
        };
        assert_eq!(
            to_string(&greeting(&version)),
            r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "p"}, "capabilities": ["oob"]}}"#
        );
    }
}
