//! A raw QMP client: bytes in, CRLF-terminated lines out.

use std::fmt::Debug;
use std::io::{self, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::time::{Duration, Instant};

/// How long a reply may take before a test fails.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(20);

/// A stream a client talks over: a Unix socket, or TCP (the test host's
/// forwarded port).
pub trait Socket: Read + Write + Debug {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()>;
}

impl Socket for UnixStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        UnixStream::set_read_timeout(self, timeout)
    }
}

impl Socket for TcpStream {
    fn set_read_timeout(&self, timeout: Option<Duration>) -> io::Result<()> {
        TcpStream::set_read_timeout(self, timeout)
    }
}

#[derive(Debug)]
pub struct Client<S: Socket = UnixStream> {
    pub stream: S,
    buffer: Vec<u8>,
    /// The greeting, as received (without CRLF).
    pub greeting: String,
    /// Events received while waiting for replies.
    pub events: Vec<String>,
    eof: bool,
    /// The socket's read timeout, set only when it changes.
    read_timeout: Option<Duration>,
}

impl Client {
    /// Connects and reads the greeting.
    pub fn connect(path: &Path) -> Client {
        let stream = UnixStream::connect(path)
            .unwrap_or_else(|e| panic!("cannot connect to {}: {e}", path.display()));
        let mut client = Client::over(stream);
        client.greeting = client.line();
        assert!(
            client.greeting.starts_with("{\"QMP\": "),
            "{}",
            client.greeting
        );
        client
    }
}

impl<S: Socket> Client<S> {
    /// Wraps a connected stream without reading anything.
    pub fn over(stream: S) -> Client<S> {
        Client {
            stream,
            buffer: Vec::new(),
            greeting: String::new(),
            events: Vec::new(),
            eof: false,
            read_timeout: None,
        }
    }

    pub fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.stream
            .write_all(bytes.as_ref())
            .expect("send to the VMM");
    }

    /// The next line, CRLF removed; panics on timeout or EOF.
    pub fn line(&mut self) -> String {
        self.try_line(REPLY_TIMEOUT).unwrap_or_else(|| {
            let shown = &self.buffer[..self.buffer.len().min(300)];
            panic!(
                "no reply (eof: {}); {} bytes buffered: {:?}",
                self.eof,
                self.buffer.len(),
                String::from_utf8_lossy(shown)
            )
        })
    }

    /// The next line within `timeout`, or None (timeout or EOF).
    pub fn try_line(&mut self, timeout: Duration) -> Option<String> {
        let deadline = Instant::now() + timeout;
        // Where the search for CRLF resumes: replies may be many megabytes.
        let mut searched = 0;
        loop {
            if let Some(offset) = self.buffer[searched..]
                .windows(2)
                .position(|w| w == b"\r\n")
            {
                let end = searched + offset;
                let line: Vec<u8> = self.buffer.drain(..end + 2).take(end).collect();
                return Some(String::from_utf8(line).expect("the VMM sends ASCII"));
            }
            searched = self.buffer.len().saturating_sub(1);
            if self.eof {
                return None;
            }
            deadline.checked_duration_since(Instant::now())?;
            // Each read waits at most `timeout`; setting it costs a system
            // call, so only when it changes (benchmarks read a lot).
            let wait = timeout.max(Duration::from_millis(1));
            if self.read_timeout != Some(wait) {
                self.stream.set_read_timeout(Some(wait)).ok()?;
                self.read_timeout = Some(wait);
            }
            let mut chunk = [0u8; 65536];
            match self.stream.read(&mut chunk) {
                Ok(0) => self.eof = true,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                    return None
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(_) => self.eof = true,
            }
        }
    }

    /// Whether the server has closed the connection (after any buffered lines).
    pub fn at_eof(&mut self, timeout: Duration) -> bool {
        while self.try_line(timeout).is_some() {}
        self.eof
    }

    /// The next line that is not an event; events are kept in `events`.
    pub fn reply(&mut self) -> String {
        loop {
            let line = self.line();
            if line.starts_with("{\"timestamp\": ") {
                self.events.push(line);
            } else {
                return line;
            }
        }
    }

    /// Sends a command and returns its reply.
    pub fn command(&mut self, json: &str) -> String {
        self.send(json);
        self.reply()
    }

    /// Sends `qmp_capabilities` and checks the answer.
    pub fn negotiate(&mut self) {
        assert_eq!(
            self.command(r#"{"execute":"qmp_capabilities"}"#),
            r#"{"return": {}}"#
        );
    }

    /// Negotiates with the `oob` capability.
    pub fn negotiate_oob(&mut self) {
        assert_eq!(
            self.command(r#"{"execute":"qmp_capabilities","arguments":{"enable":["oob"]}}"#),
            r#"{"return": {}}"#
        );
    }

    /// The next event, waiting for it if none is kept.
    pub fn event(&mut self) -> String {
        if !self.events.is_empty() {
            return self.events.remove(0);
        }
        let line = self.line();
        assert!(
            line.starts_with("{\"timestamp\": "),
            "expected an event: {line}"
        );
        line
    }
}

/// Replaces what legitimately differs between runs and VMMs: timestamps and
/// the version (`versions` lists the `info version` texts to replace).
pub fn normalize(line: &str, versions: &[String]) -> String {
    let mut text = line.to_string();
    // Event timestamps.
    let stamp = "{\"seconds\": S, \"microseconds\": U}";
    let mut from = 0;
    while let Some(offset) = text[from..].find("{\"seconds\": ") {
        let start = from + offset;
        let Some(end) = text[start..].find('}') else {
            break;
        };
        text.replace_range(start..start + end + 1, stamp);
        from = start + stamp.len();
    }
    // The version object of the greeting and query-version.
    if let Some(start) = text.find("{\"qemu\": {\"micro\": ") {
        if let Some(package) = text[start..].find("\"package\": \"") {
            let from = start + package + "\"package\": \"".len();
            if let Some(close) = text[from..].find("\"}") {
                text.replace_range(start..from + close + 2, "VERSION");
            }
        }
    }
    for version in versions {
        text = text.replace(version.as_str(), "VERSION");
    }
    text
}

/// The `info version` text a greeting implies: "M.m.uPACKAGE".
pub fn version_text(greeting: &str) -> String {
    let value: serde_json::Value = serde_json::from_str(greeting).expect("greeting is JSON");
    let version = &value["QMP"]["version"];
    let qemu = &version["qemu"];
    format!(
        "{}.{}.{}{}",
        qemu["major"],
        qemu["minor"],
        qemu["micro"],
        version["package"].as_str().unwrap_or_default()
    )
}

/// The next event without its timestamp (see [`normalize`]).
pub fn event<S: Socket>(client: &mut Client<S>) -> String {
    normalize(&client.event(), &[])
}

/// The events that arrive within `window`, as [`event`] shows them.
pub fn events_within<S: Socket>(client: &mut Client<S>, window: Duration) -> Vec<String> {
    let deadline = Instant::now() + window;
    let mut events = Vec::new();
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match client.try_line(left) {
            Some(line) => events.push(normalize(&line, &[])),
            None => break,
        }
    }
    events
}

/// An event without data, as [`event`] shows it.
pub fn named(name: &str) -> String {
    format!(r#"{{"timestamp": {{"seconds": S, "microseconds": U}}, "event": "{name}"}}"#)
}

/// An event with `data` (JSON text), as [`event`] shows it.
pub fn with_data(name: &str, data: &str) -> String {
    format!(
        r#"{{"timestamp": {{"seconds": S, "microseconds": U}}, "event": "{name}", "data": {data}}}"#
    )
}

/// `query-status`'s reply.
pub fn query_status<S: Socket>(client: &mut Client<S>) -> String {
    client.command(r#"{"execute":"query-status"}"#)
}

/// `cont` from a stopped VM: the return, then RESUME.
pub fn cont<S: Socket>(client: &mut Client<S>) {
    assert_eq!(client.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    assert_eq!(event(client), named("RESUME"));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalizes_timestamps_and_versions() {
        let event =
            r#"{"timestamp": {"seconds": 1795241173, "microseconds": 664623}, "event": "RESUME"}"#;
        assert_eq!(
            normalize(event, &[]),
            r#"{"timestamp": {"seconds": S, "microseconds": U}, "event": "RESUME"}"#
        );
        let greeting = r#"{"QMP": {"version": {"qemu": {"micro": 2, "minor": 0, "major": 10}, "package": "Debian 1:10.0.2"}, "capabilities": ["oob"]}}"#;
        assert_eq!(
            normalize(greeting, &[]),
            r#"{"QMP": {"version": VERSION, "capabilities": ["oob"]}}"#
        );
        assert_eq!(version_text(greeting), "10.0.2Debian 1:10.0.2");
    }
}
