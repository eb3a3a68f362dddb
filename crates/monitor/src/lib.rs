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

/// The generated reference pages, as (path under `docs/qmp/`, content).
pub fn reference_pages() -> Vec<(&'static str, String)> {
    let table = command_table();
    let commands: Vec<_> = table.decls().copied().collect();
    vec![
        ("commands.md", qmp::schema::docs::commands_page(&commands)),
        (
            "events.md",
            qmp::schema::docs::events_page(&events::Event::decls()),
        ),
    ]
}
