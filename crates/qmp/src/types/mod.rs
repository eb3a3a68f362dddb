//! Schema types shared by commands and events.

mod block;
mod run_state;
mod version;

pub use block::{BlockDeviceIoStatus, BlockErrorAction, IoOperationType};
pub use run_state::{RunState, ShutdownCause, StatusInfo};
pub use version::{VersionInfo, VersionTriple};
