//! Schema types shared by commands and events.

mod run_state;
mod version;

pub use run_state::{RunState, ShutdownCause, StatusInfo};
pub use version::{VersionInfo, VersionTriple};
