//! The disk options: `-drive`, `-blockdev` (a `file` node, and a `raw`
//! node over it) and `-device virtio-blk-device`, in QEMU's key=value and
//! JSON forms, resolved into the disks of the guest in device order.

use std::path::PathBuf;

use virtio::block::{Cache, DriveOptions, ErrorPolicy};

use super::opts::{self, Opts, Schema};
use super::peripherals::Peripherals;
use super::CliError;

/// A disk of the guest: its drive and the id of its device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DiskSpec {
    pub drive: DriveOptions,
    pub device_id: Option<String>,
    /// The device's QOM path, as QEMU would name it.
    pub qom_path: String,
    /// The option that named the image, for errors opening it.
    pub location: String,
}

/// A `-drive`, until a device takes it.
#[derive(Debug)]
struct DriveEntry {
    options: DriveOptions,
    location: String,
    taken: bool,
}

/// A `-blockdev` node.
#[derive(Debug)]
struct Node {
    name: String,
    /// A file node's image, or the file node a raw node reads.
    source: Source,
    read_only: bool,
    cache: Cache,
    discard: bool,
    taken: bool,
}

#[derive(Debug)]
enum Source {
    File(PathBuf),
    Raw(String),
}

/// The disk options seen so far.
#[derive(Debug, Default)]
pub struct Disks {
    drives: Vec<DriveEntry>,
    nodes: Vec<Node>,
    /// Disks in device order (`-drive if=virtio` makes its device at once).
    disks: Vec<DiskSpec>,
    /// Numbers automatic node names, as QEMU's `#blockNNN`.
    anonymous_nodes: usize,
}

const DRIVE: Schema<'static> = Schema {
    implied: Some("file"),
    strings: &[
        "file",
        "format",
        "if",
        "id",
        "cache",
        "werror",
        "rerror",
        "discard",
        "serial",
        "node-name",
        "aio",
        "media",
    ],
    booleans: &["readonly", "cache.direct", "cache.no-flush"],
};

impl Disks {
    /// `-drive file=P,format=raw,if=none|virtio,id=ID,...`
    pub fn drive(
        &mut self,
        value: &str,
        location: &str,
        peripherals: &mut Peripherals,
    ) -> Result<(), CliError> {
        let opts = opts::parse(value, &DRIVE, location)?;
        let fail = |message: String| CliError::at(location, message);
        let interface = opts.get("if").unwrap_or("ide");
        if !matches!(interface, "none" | "virtio") {
            return Err(fail(format!(
                "kvmon has no '{interface}' disk interface; use if=virtio, or if=none with -device virtio-blk-device"
            )));
        }
        match opts.get("format") {
            Some("raw") | None => {}
            Some(other) => {
                return Err(fail(format!(
                    "kvmon reads raw images only, not format '{other}'"
                )))
            }
        }
        if let Some(media) = opts.get("media").filter(|media| *media != "disk") {
            return Err(fail(format!("kvmon has no '{media}' media; only disks")));
        }
        let Some(file) = opts.get("file").filter(|file| !file.is_empty()) else {
            return Err(fail("kvmon has no empty drives: file= is needed".into()));
        };
        let id = match opts.get("id") {
            Some(id) => id.to_string(),
            None => format!("{interface}{}", self.drives.len()),
        };
        if self.drives.iter().any(|other| other.options.id == id) {
            return Err(fail(format!("drive with id '{id}' already exists")));
        }
        let mut options = DriveOptions::new(file);
        options.id = id;
        // QEMU makes the file node first, then the raw node over it.
        options.file_node_name = Some(self.anonymous_node());
        options.node_name = match opts.get("node-name") {
            Some(name) => name.to_string(),
            None => self.anonymous_node(),
        };
        options.read_only = opts.flag("readonly").unwrap_or(false);
        options.cache = cache(&opts).map_err(fail)?;
        options.discard = discard(opts.get("discard")).map_err(fail)?;
        options.serial = opts.get("serial").map(str::to_string);
        if let Some(policy) = opts.get("werror") {
            options.on_write_error = error_policy(policy, false).map_err(fail)?;
        }
        if let Some(policy) = opts.get("rerror") {
            options.on_read_error = error_policy(policy, true).map_err(fail)?;
        }
        if interface == "virtio" {
            let qom_path = peripherals.place(None).map_err(fail)?;
            self.disks.push(DiskSpec {
                drive: options.clone(),
                device_id: None,
                qom_path,
                location: location.to_string(),
            });
        }
        self.drives.push(DriveEntry {
            options,
            location: location.to_string(),
            taken: interface == "virtio",
        });
        Ok(())
    }

    /// `-blockdev driver=file,filename=P,node-name=N` or
    /// `driver=raw,file=N,node-name=M`, as key=value (either driver may be
    /// given bare, as in `file,filename=P`) or JSON.
    pub fn blockdev(&mut self, value: &str, location: &str) -> Result<(), CliError> {
        let opts = structured(value, location)?;
        let fail = |message: String| CliError::at(location, message);
        let Some(driver) = opts.get("driver") else {
            return Err(fail("Parameter 'driver' is missing".into()));
        };
        let known: &[&str] = match driver {
            "file" => &[
                "driver",
                "node-name",
                "filename",
                "read-only",
                "auto-read-only",
                "cache.direct",
                "cache.no-flush",
                "discard",
                "aio",
                "locking",
            ],
            "raw" => &[
                "driver",
                "node-name",
                "file",
                "read-only",
                "auto-read-only",
                "cache.direct",
                "cache.no-flush",
                "discard",
            ],
            other => {
                return Err(fail(format!(
                    "kvmon has no block driver '{other}'; it has 'file' and 'raw'"
                )))
            }
        };
        if let Some(key) = opts.keys().find(|key| !known.contains(key)) {
            return Err(fail(format!("Invalid parameter '{key}'")));
        }
        let name = match opts.get("node-name") {
            Some(name) => name.to_string(),
            None => return Err(fail("A top-level -blockdev needs a node-name".into())),
        };
        if self.nodes.iter().any(|node| node.name == name) {
            return Err(fail(format!("Duplicate nodes with node-name='{name}'")));
        }
        let flag = |key: &str| -> Result<bool, CliError> {
            opts.get(key)
                .map(|value| opts::parse_bool(key, value))
                .transpose()
                .map(Option::unwrap_or_default)
                .map_err(fail)
        };
        let source = match driver {
            "file" => match opts.get("filename") {
                Some(path) => Source::File(PathBuf::from(path)),
                None => return Err(fail("Parameter 'filename' is missing".into())),
            },
            _ => match opts.get("file") {
                Some(file) => Source::Raw(file.to_string()),
                None => return Err(fail("Parameter 'file' is missing".into())),
            },
        };
        let cache = Cache {
            writeback: true,
            direct: flag("cache.direct")?,
            no_flush: flag("cache.no-flush")?,
        };
        self.nodes.push(Node {
            name,
            source,
            read_only: flag("read-only")?,
            cache,
            discard: discard(opts.get("discard")).map_err(fail)?,
            taken: false,
        });
        Ok(())
    }

    /// `-device virtio-blk-device,drive=X[,id=Y][,serial=S]` (or JSON), at
    /// `qom_path`.
    pub fn device(
        &mut self,
        opts: &Opts,
        location: &str,
        qom_path: String,
    ) -> Result<(), CliError> {
        let fail = |message: String| CliError::at(location, message);
        opts.check_properties(
            "virtio-blk-device",
            &["drive", "serial", "bootindex"],
            location,
        )?;
        let Some(name) = opts.get("drive") else {
            return Err(fail("drive property not set".into()));
        };
        let in_use = || {
            fail(format!(
                "Drive '{name}' is already in use by another device"
            ))
        };
        // Errors opening a -drive's image name the -drive.
        let mut opened_at = location.to_string();
        let mut drive = if let Some(entry) = self.drives.iter_mut().find(|d| d.options.id == name) {
            if entry.taken {
                return Err(in_use());
            }
            entry.taken = true;
            opened_at = entry.location.clone();
            entry.options.clone()
        } else if let Some(index) = self.nodes.iter().position(|node| node.name == name) {
            if self.nodes[index].taken {
                return Err(in_use());
            }
            self.nodes[index].taken = true;
            self.node_drive(index).map_err(fail)?
        } else {
            return Err(fail(format!(
                "Property 'virtio-blk-device.drive' can't find value '{name}'"
            )));
        };
        if let Some(serial) = opts.get("serial") {
            drive.serial = Some(serial.to_string());
        }
        self.disks.push(DiskSpec {
            drive,
            device_id: opts.get("id").map(str::to_string),
            qom_path,
            location: opened_at,
        });
        Ok(())
    }

    /// The drive a device on node `index` uses: a raw node over a file
    /// node, or a file node alone.
    fn node_drive(&mut self, index: usize) -> Result<DriveOptions, String> {
        let node = &self.nodes[index];
        let (file, read_only) = match &node.source {
            Source::File(_) => (node, node.read_only),
            Source::Raw(file) => match self.nodes.iter().find(|other| other.name == *file) {
                Some(
                    other @ Node {
                        source: Source::File(_),
                        ..
                    },
                ) => (other, node.read_only || other.read_only),
                Some(_) => return Err(format!("node '{file}' is not a file node")),
                None => return Err(format!("Cannot find device='' nor node-name='{file}'")),
            },
        };
        let Source::File(path) = &file.source else {
            return Err("a raw node reads a file node".into());
        };
        let mut options = DriveOptions::new(path.clone());
        options.node_name = node.name.clone();
        if !std::ptr::eq(file, node) {
            options.file_node_name = Some(file.name.clone());
        }
        options.read_only = read_only;
        options.cache = Cache {
            direct: node.cache.direct || file.cache.direct,
            no_flush: node.cache.no_flush || file.cache.no_flush,
            ..Cache::WRITEBACK
        };
        options.discard = node.discard || file.discard;
        Ok(options)
    }

    fn anonymous_node(&mut self) -> String {
        self.anonymous_nodes += 1;
        format!("#block{:03}", self.anonymous_nodes)
    }

    /// The disks in device order; `-drive if=none` drives no device took
    /// are refused.
    pub fn finish(self) -> Result<Vec<DiskSpec>, CliError> {
        if let Some(unused) = self.drives.iter().find(|drive| !drive.taken) {
            return Err(CliError::at(
                &unused.location,
                "kvmon needs a -device virtio-blk-device for each if=none drive",
            ));
        }
        Ok(self.disks)
    }
}

/// `-device` and `-blockdev` arguments: a JSON object, or a key=value list
/// whose first item may be a bare driver name.
pub fn structured(value: &str, location: &str) -> Result<Opts, CliError> {
    if !value.starts_with('{') {
        return opts::parse_keyval(value, "driver", location);
    }
    let json: serde_json::Value = serde_json::from_str(value)
        .map_err(|error| CliError::at(location, format!("JSON parse error, {error}")))?;
    let serde_json::Value::Object(object) = json else {
        return Err(CliError::at(location, "JSON argument must be an object"));
    };
    let mut entries = Vec::new();
    flatten("", &object, &mut entries);
    Ok(Opts::from_entries(entries))
}

/// Nested objects become dotted keys; booleans become on/off.
fn flatten(
    prefix: &str,
    object: &serde_json::Map<String, serde_json::Value>,
    into: &mut Vec<(String, String)>,
) {
    for (key, value) in object {
        let key = format!("{prefix}{key}");
        match value {
            serde_json::Value::Object(inner) => flatten(&format!("{key}."), inner, into),
            serde_json::Value::String(text) => into.push((key, text.clone())),
            serde_json::Value::Bool(flag) => {
                into.push((key, if *flag { "on" } else { "off" }.to_string()))
            }
            other => into.push((key, other.to_string())),
        }
    }
}

/// `cache=` and its parts.
fn cache(opts: &Opts) -> Result<Cache, String> {
    let mut cache = match opts.get("cache") {
        Some(mode) => Cache::from_mode(mode).ok_or("invalid cache option")?,
        None => Cache::default(),
    };
    if let Some(direct) = opts.flag("cache.direct") {
        cache.direct = direct;
    }
    if let Some(no_flush) = opts.flag("cache.no-flush") {
        cache.no_flush = no_flush;
    }
    Ok(cache)
}

fn discard(value: Option<&str>) -> Result<bool, String> {
    match value {
        None | Some("ignore" | "off") => Ok(false),
        Some("unmap" | "on") => Ok(true),
        Some(_) => Err("Invalid discard option".into()),
    }
}

/// `werror=` / `rerror=`: enospc is for writes only.
fn error_policy(value: &str, read: bool) -> Result<ErrorPolicy, String> {
    match ErrorPolicy::from_name(value) {
        Some(ErrorPolicy::Enospc) if read => None,
        policy => policy,
    }
    .ok_or_else(|| {
        let kind = if read { "read" } else { "write" };
        format!("'{value}' invalid {kind} error action")
    })
}
