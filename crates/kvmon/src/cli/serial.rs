//! `-serial` and `-nographic`: where COM1's output goes and its input
//! comes from.

use std::path::PathBuf;

use super::chardev::{self, Chardev, Compat};
use super::CliError;

#[derive(Debug, Clone)]
pub enum SerialSpec {
    /// No serial port (`-serial none`, or `-nodefaults` without `-serial`).
    None,
    /// A port whose output goes nowhere (`null`; also the default, since
    /// kvmon has no graphical console for QEMU's default `vc`).
    Null,
    /// kvmon's standard output and input.
    Stdio,
    /// Output appended to a file (created or truncated, as QEMU does).
    File(PathBuf),
    /// A listening socket; one client at a time gets output and gives input.
    Socket(Chardev),
    /// `chardev:ID`: a `-chardev socket` defined elsewhere.
    Chardev { id: String, location: String },
}

/// `-serial ARG`.
pub fn parse(arg: &str, index: usize) -> Result<SerialSpec, CliError> {
    let location = format!("-serial {arg}");
    match arg {
        "none" => return Ok(SerialSpec::None),
        "null" => return Ok(SerialSpec::Null),
        "stdio" | "mon:stdio" => return Ok(SerialSpec::Stdio),
        _ => {}
    }
    if let Some(path) = arg.strip_prefix("file:") {
        return Ok(SerialSpec::File(PathBuf::from(path)));
    }
    if arg.starts_with("unix:") || arg.starts_with("tcp:") || arg.starts_with("chardev:") {
        let spec = match chardev::parse_compat("-serial", arg, index)? {
            Compat::Socket(mut chardev) => {
                chardev.id = format!("serial{index}");
                SerialSpec::Socket(chardev)
            }
            Compat::Existing { id, location } => SerialSpec::Chardev { id, location },
        };
        if let SerialSpec::Socket(chardev) = &spec {
            check_server(chardev, &location)?;
        }
        return Ok(spec);
    }
    Err(CliError::at(
        &location,
        "kvmon's serial backends are none, null, stdio, file:PATH, unix:PATH,server=on, \
         tcp:HOST:PORT,server=on and chardev:ID",
    ))
}

/// kvmon serves a serial port; it does not connect out.
pub fn check_server(chardev: &Chardev, location: &str) -> Result<(), CliError> {
    if chardev.server {
        Ok(())
    } else {
        Err(CliError::at(
            location,
            "kvmon offers a serial socket only as a server (server=on)",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backends() {
        assert!(matches!(parse("stdio", 0).unwrap(), SerialSpec::Stdio));
        assert!(matches!(parse("none", 0).unwrap(), SerialSpec::None));
        assert!(matches!(parse("null", 0).unwrap(), SerialSpec::Null));
        assert!(
            matches!(parse("file:/tmp/x", 0).unwrap(), SerialSpec::File(p) if p == std::path::Path::new("/tmp/x"))
        );
        match parse("unix:/tmp/s,server=on,wait=off", 0).unwrap() {
            SerialSpec::Socket(chardev) => assert!(chardev.server && !chardev.wait),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            parse("chardev:ser", 0).unwrap(),
            SerialSpec::Chardev { .. }
        ));
        assert!(parse("unix:/tmp/s", 0).is_err(), "client mode");
        assert!(parse("vc", 0).is_err());
        assert!(parse("pty", 0).is_err());
    }
}
