//! kvmon's QMP server.

mod commands;
mod connection;
mod control;
mod dispatch;
mod endpoint;
mod hmp;
mod outbox;
mod server;
pub mod socket;

pub use commands::command_table;
pub use control::version;
pub use dispatch::{CommandTable, Context, ServerInfo, Session};
pub use endpoint::MonitorSpec;
pub use server::{Server, StartError};
pub use socket::os_error;

/// Raises the soft limit on open descriptors to the hard limit: many QMP
/// clients need many descriptors.
pub fn raise_fd_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit read and write only the struct passed.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

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
