//! The QEMU Monitor Protocol, without I/O.
//!
//! - [`json`]: QEMU-compatible JSON: a streaming parser with QEMU's limits and
//!   error texts, and a writer that produces QEMU's exact bytes.
//! - [`wire`]: the messages: greeting, requests (checked as QEMU checks them),
//!   responses and events.
//! - [`schema`]: the declaration macros and what is derived from them.
//! - [`commands`] and [`types`]: kvmon's command declarations and the types
//!   they share with events.

pub mod commands;
mod error;
pub mod json;
pub mod schema;
pub mod types;
pub mod wire;

pub use error::{ErrorClass, QmpError};
pub use schema::{Command, Event, SchemaType};
pub use serde_json::Value;
