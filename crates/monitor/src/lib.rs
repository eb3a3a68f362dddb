//! kvmon's QMP server.

mod commands;
mod connection;
mod control;
mod dispatch;
mod hmp;
mod outbox;
mod server;
pub mod socket;

pub use commands::command_table;
pub use control::version;
pub use dispatch::{CommandTable, Context, ServerInfo, Session};
pub use server::{MonitorSpec, Server, StartError};
