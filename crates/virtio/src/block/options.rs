//! How a drive is to be opened and what its device does on errors: the
//! settings of QEMU's `-drive` and `-blockdev`, in the names QEMU gives them.

use std::fmt;
use std::path::PathBuf;

/// What QEMU's `cache=` mode means for the file and for the guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cache {
    /// The guest sees a volatile write cache and must flush (otherwise
    /// every write is on disk when it completes).
    pub writeback: bool,
    /// The host's page cache is bypassed (O_DIRECT).
    pub direct: bool,
    /// Flushes are ignored (`cache=unsafe`).
    pub no_flush: bool,
}

impl Cache {
    /// QEMU's default, `cache=writeback`.
    pub const WRITEBACK: Cache = Cache {
        writeback: true,
        direct: false,
        no_flush: false,
    };

    /// The mode named by `cache=`.
    pub fn from_mode(mode: &str) -> Option<Cache> {
        let (writeback, direct, no_flush) = match mode {
            "writeback" => (true, false, false),
            "none" | "off" => (true, true, false),
            "writethrough" => (false, false, false),
            "directsync" => (false, true, false),
            "unsafe" => (true, false, true),
            _ => return None,
        };
        Some(Cache {
            writeback,
            direct,
            no_flush,
        })
    }
}

impl Default for Cache {
    fn default() -> Cache {
        Cache::WRITEBACK
    }
}

/// What a device does when a request fails (`werror=`, `rerror=`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorPolicy {
    /// The guest gets an I/O error.
    Report,
    /// The request completes as if it had succeeded.
    Ignore,
    /// The VM stops in io-error; `cont` retries the request.
    Stop,
    /// Stop when the disk is full, report anything else.
    Enospc,
}

impl ErrorPolicy {
    pub fn from_name(name: &str) -> Option<ErrorPolicy> {
        Some(match name {
            "report" => ErrorPolicy::Report,
            "ignore" => ErrorPolicy::Ignore,
            "stop" => ErrorPolicy::Stop,
            "enospc" => ErrorPolicy::Enospc,
            _ => return None,
        })
    }

    /// What to do about a request that failed with `errno`.
    pub fn action(self, errno: i32) -> ErrorAction {
        match self {
            ErrorPolicy::Report => ErrorAction::Report,
            ErrorPolicy::Ignore => ErrorAction::Ignore,
            ErrorPolicy::Stop => ErrorAction::Stop,
            ErrorPolicy::Enospc if errno == libc::ENOSPC => ErrorAction::Stop,
            ErrorPolicy::Enospc => ErrorAction::Report,
        }
    }
}

/// What is done about one failed request (QEMU's BlockErrorAction).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorAction {
    Report,
    Ignore,
    Stop,
}

impl ErrorAction {
    pub fn name(self) -> &'static str {
        match self {
            ErrorAction::Report => "report",
            ErrorAction::Ignore => "ignore",
            ErrorAction::Stop => "stop",
        }
    }
}

impl fmt::Display for ErrorAction {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A drive: a raw image file and how to use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DriveOptions {
    /// The block backend's name (`-drive id=`), which QMP calls `device`;
    /// empty for a device on a `-blockdev` node.
    pub id: String,
    /// The name of the node that reads the image (`node-name=`).
    pub node_name: String,
    /// The name of the file node beneath it; `None` when the device sits
    /// on a file node.
    pub file_node_name: Option<String>,
    pub path: PathBuf,
    pub read_only: bool,
    pub cache: Cache,
    /// `discard=unmap`: the guest's discards punch holes in the file;
    /// otherwise they are accepted and ignored.
    pub discard: bool,
    /// The serial number the guest reads (at most 20 bytes reach it).
    pub serial: Option<String>,
    pub on_write_error: ErrorPolicy,
    pub on_read_error: ErrorPolicy,
}

impl DriveOptions {
    /// A writable raw image with QEMU's defaults.
    pub fn new(path: impl Into<PathBuf>) -> DriveOptions {
        DriveOptions {
            id: String::new(),
            node_name: String::new(),
            file_node_name: None,
            path: path.into(),
            read_only: false,
            cache: Cache::default(),
            discard: false,
            serial: None,
            on_write_error: ErrorPolicy::Enospc,
            on_read_error: ErrorPolicy::Report,
        }
    }
}
