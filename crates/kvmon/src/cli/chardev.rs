//! `-qmp`, `-qmp-pretty`, `-chardev socket` and `-mon`: the sockets QMP
//! monitors serve, turned into [`MonitorSpec`]s.

use std::path::PathBuf;
use std::time::Duration;

use monitor::socket::SocketAddress;
use monitor::MonitorSpec;

use super::opts::{self, Opts, Schema};
use super::CliError;

/// A socket chardev, from `-chardev socket,...` or the legacy `-qmp ARG`.
#[derive(Debug, Clone)]
pub struct Chardev {
    pub id: String,
    pub address: SocketAddress,
    pub server: bool,
    pub wait: bool,
    pub reconnect: Option<Duration>,
    /// The option that defined it, for messages.
    pub origin: String,
}

impl Chardev {
    pub fn monitor(&self, pretty: bool) -> MonitorSpec {
        MonitorSpec {
            chardev: self.id.clone(),
            address: self.address.clone(),
            server: self.server,
            wait: self.wait,
            reconnect: self.reconnect,
            pretty,
            origin: self.origin.clone(),
        }
    }
}

/// The keys of a socket chardev kvmon takes.  `nodelay` is accepted and
/// always on: QMP messages are small and want no delay.
const SOCKET_KEYS: Schema<'static> = Schema {
    implied: Some("backend"),
    strings: &[
        "backend",
        "id",
        "path",
        "host",
        "port",
        "fd",
        "reconnect",
        "reconnect-ms",
    ],
    booleans: &["server", "wait", "nodelay"],
};

/// Socket chardev options QEMU has and kvmon does not.
const UNSUPPORTED_KEYS: &[&str] = &[
    "ipv4",
    "ipv6",
    "to",
    "tls-creds",
    "tls-authz",
    "telnet",
    "tn3270",
    "websocket",
    "abstract",
    "tight",
    "mux",
    "logfile",
    "logappend",
    "keepalive",
];

/// Refuses, by name, options kvmon does not offer.
fn reject_unsupported(text: &str, location: &str) -> Result<(), CliError> {
    for item in text.split(',') {
        let key = item.split('=').next().unwrap_or_default();
        let key = if item.contains('=') {
            key
        } else {
            key.strip_prefix("no").unwrap_or(key)
        };
        if UNSUPPORTED_KEYS.contains(&key) {
            return Err(CliError::at(
                location,
                format!("chardev option '{key}' is not supported by kvmon"),
            ));
        }
    }
    Ok(())
}

/// Character device backends QEMU has and kvmon does not.
const OTHER_BACKENDS: &[&str] = &[
    "null",
    "stdio",
    "file",
    "pipe",
    "pty",
    "serial",
    "tty",
    "parallel",
    "parport",
    "udp",
    "ringbuf",
    "memory",
    "vc",
    "msmouse",
    "wctablet",
    "braille",
    "testdev",
    "spicevmc",
    "spiceport",
    "qemu-vdagent",
    "dbus",
    "mux",
];

/// `-chardev ARG`.
pub fn parse_chardev(arg: &str, warnings: &mut Vec<String>) -> Result<Chardev, CliError> {
    let location = format!("-chardev {arg}");
    reject_unsupported(arg, &location)?;
    let opts = opts::parse(arg, &SOCKET_KEYS, &location)?;
    warn_short_forms(&opts, &location, warnings);
    let Some(id) = opts.get("id") else {
        return Err(CliError::at(&location, "chardev: no id specified"));
    };
    check_identifier(id, &location)?;
    match opts.get("backend") {
        Some("socket") => {}
        None => {
            return Err(CliError::at(
                &location,
                format!("chardev: \"{id}\" missing backend"),
            ))
        }
        Some(other) if OTHER_BACKENDS.contains(&other) => {
            return Err(CliError::at(
                &location,
                format!("chardev backend '{other}' is not supported by kvmon; use 'socket'"),
            ))
        }
        Some(other) => {
            return Err(CliError::at(
                &location,
                format!("'{other}' is not a valid char driver name"),
            ))
        }
    }
    socket_chardev(id.to_string(), &opts, location)
}

/// What `-qmp ARG` names: a socket of its own, or an existing `-chardev`.
#[derive(Debug)]
pub enum Compat {
    Socket(Chardev),
    Existing { id: String, location: String },
}

/// The legacy `-qmp ARG` syntax: `unix:PATH[,opts]`, `tcp:HOST:PORT[,opts]`
/// or `chardev:ID`.  The chardev is labelled `compat_monitorN`.
pub fn parse_compat(option: &str, arg: &str, index: usize) -> Result<Compat, CliError> {
    let location = format!("{option} {arg}");
    let id = format!("compat_monitor{index}");
    let parse_error = |error: CliError| error.also(&location, format!("parse error: {arg}"));
    if let Some(existing) = arg.strip_prefix("chardev:") {
        return Ok(Compat::Existing {
            id: existing.to_string(),
            location,
        });
    }
    if let Some(rest) = arg.strip_prefix("unix:") {
        const UNIX: Schema<'static> = Schema {
            implied: Some("path"),
            strings: &["path", "fd", "reconnect", "reconnect-ms"],
            booleans: &["server", "wait"],
        };
        reject_unsupported(rest, &location)?;
        let opts = opts::parse(rest, &UNIX, &location).map_err(parse_error)?;
        return socket_chardev(id, &opts, location).map(Compat::Socket);
    }
    if let Some(rest) = arg.strip_prefix("tcp:") {
        // QEMU reads "%64[^:]:%32[^,]": a host without ':' (so no IPv6
        // literal), a port, then options.
        let Some((host, tail)) = rest.split_once(':').filter(|(host, _)| host.len() <= 64) else {
            return Err(CliError::at(&location, format!("parse error: {arg}")));
        };
        let (port, options) = tail.split_once(',').unwrap_or((tail, ""));
        if port.is_empty() || port.len() > 32 {
            return Err(CliError::at(&location, format!("parse error: {arg}")));
        }
        const TCP: Schema<'static> = Schema {
            implied: None,
            strings: &["reconnect", "reconnect-ms"],
            booleans: &["server", "wait", "nodelay"],
        };
        reject_unsupported(options, &location)?;
        let mut opts = if options.is_empty() {
            Opts::default()
        } else {
            opts::parse(options, &TCP, &location).map_err(parse_error)?
        };
        opts.merge(opts::parse(
            &format!("host={host},port={port}"),
            &SOCKET_KEYS,
            &location,
        )?);
        return socket_chardev(id, &opts, location).map(Compat::Socket);
    }
    let backend = arg.split(':').next().unwrap_or(arg);
    if OTHER_BACKENDS.contains(&backend) || arg.starts_with("/dev/") {
        return Err(CliError::at(
            &location,
            format!("chardev backend '{backend}' is not supported by kvmon; use 'unix:' or 'tcp:'"),
        ));
    }
    Err(
        CliError::at(&location, format!("'{arg}' is not a valid char driver"))
            .also(&location, format!("parse error: {arg}")),
    )
}

/// The address, mode and reconnection of a socket chardev, checked as QEMU checks them.
fn socket_chardev(id: String, opts: &Opts, location: String) -> Result<Chardev, CliError> {
    let fail = |message: String| CliError::at(&location, message);
    let server = opts.flag("server").unwrap_or(false);
    let chosen = ["path", "fd", "host"]
        .iter()
        .filter(|key| opts.has(key))
        .count();
    if chosen > 1 {
        return Err(fail(
            "None or one of 'path', 'fd' or 'host' option required.".to_string(),
        ));
    }
    let address = if let Some(path) = opts.get("path") {
        if path.len() > 107 {
            return Err(fail(format!("UNIX socket path '{path}' is too long"))
                .hint("Path must be less than 108 bytes"));
        }
        SocketAddress::Unix(PathBuf::from(path))
    } else if let Some(host) = opts.get("host") {
        let Some(port) = opts.get("port") else {
            return Err(fail("chardev: socket: no port given".to_string()));
        };
        SocketAddress::Tcp {
            host: host.to_string(),
            port: port.to_string(),
        }
    } else {
        let fd = opts.get("fd").unwrap_or_default();
        match fd.parse::<i32>() {
            Ok(fd) => SocketAddress::Fd(fd),
            Err(_) => return Err(fail(format!("Unable to parse FD number {fd}"))),
        }
    };
    if !server && opts.has("wait") {
        return Err(fail(
            "'wait' option is incompatible with socket in client connect mode".to_string(),
        ));
    }
    let reconnect = match (opts.get("reconnect"), opts.get("reconnect-ms")) {
        (Some(_), Some(_)) => {
            return Err(fail(
                "'reconnect' and 'reconnect-ms' are mutually exclusive".to_string(),
            ))
        }
        (Some(seconds), None) => Some(Duration::from_secs(parse_number(
            "reconnect",
            seconds,
            &location,
        )?)),
        (None, Some(millis)) => Some(Duration::from_millis(parse_number(
            "reconnect-ms",
            millis,
            &location,
        )?)),
        (None, None) => None,
    }
    .filter(|delay| !delay.is_zero());
    if reconnect.is_some() {
        if server {
            return Err(fail(
                "'reconnect' option is incompatible with socket in server listen mode".to_string(),
            ));
        }
        if matches!(address, SocketAddress::Fd(_)) {
            return Err(fail(
                "'reconnect' option is incompatible with 'fd' address type".to_string(),
            ));
        }
    }
    Ok(Chardev {
        id,
        address,
        server,
        wait: server && opts.flag("wait").unwrap_or(true),
        reconnect,
        origin: location,
    })
}

fn parse_number(key: &str, value: &str, location: &str) -> Result<u64, CliError> {
    value.parse().map_err(|_| {
        CliError::at(
            location,
            format!("Parameter '{key}' expects a non-negative number below 2^64"),
        )
    })
}

/// QEMU's rule for ids: letters, digits, '-', '.', '_', starting with a letter.
fn check_identifier(id: &str, location: &str) -> Result<(), CliError> {
    let valid = id.starts_with(|c: char| c.is_ascii_alphabetic())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    if valid {
        return Ok(());
    }
    Err(
        CliError::at(location, "Parameter 'id' expects an identifier")
            .hint("Identifiers consist of letters, digits, '-', '.', '_', starting with a letter."),
    )
}

/// QEMU warns about `server`, `nowait` and friends outside `-qmp`.
fn warn_short_forms(opts: &Opts, location: &str, warnings: &mut Vec<String>) {
    for (word, value) in &opts.short_forms {
        let key = if *value == "off" {
            &word[2..]
        } else {
            word.as_str()
        };
        warnings.push(format!(
            "{location}: warning: short-form boolean option '{word}' deprecated\nPlease use {key}={value} instead"
        ));
    }
}

/// `-mon ARG`: which chardev, in which mode.
#[derive(Debug)]
pub struct Mon {
    pub chardev: String,
    pub pretty: bool,
    pub location: String,
}

pub fn parse_mon(arg: &str, warnings: &mut Vec<String>) -> Result<Mon, CliError> {
    let location = format!("-mon {arg}");
    const MON: Schema<'static> = Schema {
        implied: Some("chardev"),
        strings: &["chardev", "mode", "id"],
        booleans: &["pretty"],
    };
    let opts = opts::parse(arg, &MON, &location)?;
    warn_short_forms(&opts, &location, warnings);
    let Some(chardev) = opts.get("chardev") else {
        return Err(CliError::at(&location, "Parameter 'chardev' is missing"));
    };
    let pretty = opts.flag("pretty").unwrap_or(false);
    match opts.get("mode").unwrap_or("readline") {
        "control" => {}
        "readline" if pretty => {
            return Err(CliError::at(
                &location,
                "'pretty' is not compatible with HMP monitors",
            ))
        }
        "readline" => {
            return Err(CliError::at(
                &location,
                "the human monitor (mode=readline) is not supported by kvmon; use mode=control",
            ))
        }
        other => {
            return Err(CliError::at(
                &location,
                format!("Parameter 'mode' does not accept value '{other}'"),
            ))
        }
    }
    Ok(Mon {
        chardev: chardev.to_string(),
        pretty,
        location,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compat(arg: &str) -> Result<Chardev, String> {
        match parse_compat("-qmp", arg, 0) {
            Ok(Compat::Socket(chardev)) => Ok(chardev),
            Ok(Compat::Existing { id, .. }) => Err(format!("existing {id}")),
            Err(error) => Err(error.to_string()),
        }
    }

    #[test]
    fn qmp_forms() {
        let unix = compat("unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert_eq!(unix.address, SocketAddress::Unix("/tmp/q.sock".into()));
        assert!(unix.server && !unix.wait);
        assert_eq!(unix.id, "compat_monitor0");
        let old = compat("unix:/tmp/q.sock,server,nowait").unwrap();
        assert!(old.server && !old.wait);
        assert!(
            compat("unix:/tmp/q.sock,server").unwrap().wait,
            "server=on waits by default"
        );
        let tcp = compat("tcp:127.0.0.1:4444,server=on,wait=off").unwrap();
        assert_eq!(
            tcp.address,
            SocketAddress::Tcp {
                host: "127.0.0.1".into(),
                port: "4444".into()
            }
        );
        let any = compat("tcp::4444,server=on,wait=off").unwrap();
        assert_eq!(
            any.address,
            SocketAddress::Tcp {
                host: "".into(),
                port: "4444".into()
            }
        );
        assert_eq!(compat("unix:fd=7").unwrap().address, SocketAddress::Fd(7));
        let client = compat("unix:/tmp/h.sock").unwrap();
        assert!(!client.server);
        assert_eq!(compat("chardev:mon0").unwrap_err(), "existing mon0");
    }

    #[test]
    fn qmp_errors() {
        assert_eq!(
            compat("bogus:foo").unwrap_err(),
            "-qmp bogus:foo: 'bogus:foo' is not a valid char driver\n-qmp bogus:foo: parse error: bogus:foo"
        );
        assert_eq!(
            compat("tcp:127.0.0.1").unwrap_err(),
            "-qmp tcp:127.0.0.1: parse error: tcp:127.0.0.1"
        );
        assert_eq!(
            compat("unix:/a,server=on,wait=off,bogus=1").unwrap_err(),
            "-qmp unix:/a,server=on,wait=off,bogus=1: Invalid parameter 'bogus'\n-qmp unix:/a,server=on,wait=off,bogus=1: parse error: unix:/a,server=on,wait=off,bogus=1"
        );
        assert_eq!(
            compat("unix:/x,wait=off").unwrap_err(),
            "-qmp unix:/x,wait=off: 'wait' option is incompatible with socket in client connect mode"
        );
        let long = format!("unix:/tmp/{}", "a".repeat(120));
        assert!(compat(&long)
            .unwrap_err()
            .ends_with("is too long\nPath must be less than 108 bytes"));
    }

    #[test]
    fn chardev_and_mon() {
        let mut warnings = Vec::new();
        let chardev = parse_chardev(
            "socket,id=mon,path=/tmp/m.sock,server,nowait",
            &mut warnings,
        )
        .unwrap();
        assert_eq!(chardev.id, "mon");
        assert!(chardev.server && !chardev.wait);
        assert_eq!(warnings.len(), 2);
        assert!(warnings[0].ends_with(
            "warning: short-form boolean option 'server' deprecated\nPlease use server=on instead"
        ));
        assert!(warnings[1].ends_with("Please use wait=off instead"));
        let fd = parse_chardev("socket,id=mon,fd=3", &mut warnings).unwrap();
        assert_eq!(fd.address, SocketAddress::Fd(3));
        let error =
            parse_chardev("socket,path=/tmp/a,server=on,wait=off", &mut warnings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "-chardev socket,path=/tmp/a,server=on,wait=off: chardev: no id specified"
        );
        let error = parse_chardev("socket,id=x,fd=abc", &mut warnings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "-chardev socket,id=x,fd=abc: Unable to parse FD number abc"
        );
        let mon = parse_mon("chardev=mon,mode=control,pretty=on", &mut warnings).unwrap();
        assert!(mon.pretty);
        assert_eq!(mon.chardev, "mon");
        let error = parse_mon("mode=control", &mut warnings).unwrap_err();
        assert_eq!(
            error.to_string(),
            "-mon mode=control: Parameter 'chardev' is missing"
        );
    }
}
