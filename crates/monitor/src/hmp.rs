//! The human monitor, reached through `human-monitor-command`: the commands
//! kvmon supports, parsed and answered with QEMU's text.

use qmp::commands::{
    Cont, Handles, HumanMonitorCommand, QueryKvm, QueryName, QueryStatus, QueryUuid, Quit, Stop,
};
use qmp::types::RunState;
use qmp::QmpError;

use crate::dispatch::Context;

/// One HMP command: its name with aliases (`stop|s`), its parameter
/// synopsis and help text as QEMU shows them, and what it does.
struct HmpCommand {
    name: &'static str,
    params: &'static str,
    help: &'static str,
    action: Action,
}

enum Action {
    /// Takes no arguments; writes its output.
    Run(fn(&mut Context<'_>, &mut String)),
    /// `help [cmd]`: takes the rest of the line.
    Help,
    /// `info [subcommand]`: looks its subcommand up in [`INFO_COMMANDS`].
    Info,
}

/// Sorted by name, bytewise, as QEMU sorts its tables.
const COMMANDS: &[HmpCommand] = &[
    HmpCommand {
        name: "cont|c",
        params: "",
        help: "resume emulation",
        action: Action::Run(cont),
    },
    HmpCommand {
        name: "help|?",
        params: "[cmd]",
        help: "show the help",
        action: Action::Help,
    },
    HmpCommand {
        name: "info",
        params: "[subcommand]",
        help: "show various information about the system state",
        action: Action::Info,
    },
    HmpCommand {
        name: "quit|q",
        params: "",
        help: "quit the emulator",
        action: Action::Run(quit),
    },
    HmpCommand {
        name: "stop|s",
        params: "",
        help: "stop emulation",
        action: Action::Run(stop),
    },
];

const INFO_COMMANDS: &[HmpCommand] = &[
    HmpCommand {
        name: "kvm",
        params: "",
        help: "show KVM information",
        action: Action::Run(info_kvm),
    },
    HmpCommand {
        name: "name",
        params: "",
        help: "show the current VM name",
        action: Action::Run(info_name),
    },
    HmpCommand {
        name: "status",
        params: "",
        help: "show the current VM status (running|paused)",
        action: Action::Run(info_status),
    },
    HmpCommand {
        name: "uuid",
        params: "",
        help: "show the current VM UUID",
        action: Action::Run(info_uuid),
    },
    HmpCommand {
        name: "version",
        params: "",
        help: "show the version of QEMU",
        action: Action::Run(info_version),
    },
];

pub fn human_monitor_command(
    context: &mut Context<'_>,
    command: HumanMonitorCommand,
) -> Result<String, QmpError> {
    // No machine kvmon runs yet has vCPUs the human monitor could select.
    if command.cpu_index.is_some() {
        return Err(QmpError::generic(
            "Parameter 'cpu-index' expects a CPU number",
        ));
    }
    let mut output = String::new();
    execute(context, &command.command_line, &mut output);
    // The human monitor ends its lines with CRLF.
    Ok(output.replace('\n', "\r\n"))
}

fn execute(context: &mut Context<'_>, line: &str, out: &mut String) {
    let Some((command, end)) = parse_command(line, 0, COMMANDS, out) else {
        return;
    };
    let rest = &line[end..];
    match command.action {
        Action::Help => {
            let words: Vec<&str> = rest.split(is_space).filter(|w| !w.is_empty()).collect();
            help(&words, out);
        }
        Action::Info => list(INFO_COMMANDS, "info ", out),
        Action::Run(run) => {
            if !rest.is_empty() {
                let typed = line[..end].trim_end_matches(is_space);
                out.push_str(&format!(
                    "{}: extraneous characters at the end of line\nTry \"help {typed}\" for more information\n",
                    command.name
                ));
                return;
            }
            run(context, out);
        }
    }
}

/// Finds the command named at `line[start..]`, descending into `info`'s
/// table when a subcommand follows.  Returns it with the position after its
/// name and the blanks that follow; prints QEMU's error when unknown.
fn parse_command(
    line: &str,
    start: usize,
    table: &'static [HmpCommand],
    out: &mut String,
) -> Option<(&'static HmpCommand, usize)> {
    let name_start = skip_spaces(line, start);
    if name_start == line.len() {
        return None;
    }
    let name_end = line[name_start..]
        .find(|c: char| is_space(c) || c == '/')
        .map_or(line.len(), |offset| name_start + offset);
    let Some(command) = find(table, &line[name_start..name_end]) else {
        out.push_str(&format!("unknown command: '{}'\n", &line[..name_end]));
        return None;
    };
    let end = skip_spaces(line, name_end);
    if matches!(command.action, Action::Info) && end < line.len() {
        return parse_command(line, end, INFO_COMMANDS, out);
    }
    Some((command, end))
}

fn find(table: &'static [HmpCommand], name: &str) -> Option<&'static HmpCommand> {
    table
        .iter()
        .find(|command| command.name.split('|').any(|alias| alias == name))
}

/// `help`, `help CMD`, `help info SUB`: words after the first matching
/// command are ignored.
fn help(words: &[&str], out: &mut String) {
    match words {
        [] => list(COMMANDS, "", out),
        [first, rest @ ..] => match find(COMMANDS, first) {
            Some(command) if matches!(command.action, Action::Info) && !rest.is_empty() => {
                match find(INFO_COMMANDS, rest[0]) {
                    Some(sub) => describe(sub, "info ", out),
                    None => out.push_str(&format!("unknown command: '{first} {}'\n", rest[0])),
                }
            }
            Some(command) if matches!(command.action, Action::Info) => {
                list(INFO_COMMANDS, "info ", out)
            }
            Some(command) => describe(command, "", out),
            None => out.push_str(&format!("unknown command: '{first}'\n")),
        },
    }
}

fn list(table: &[HmpCommand], prefix: &str, out: &mut String) {
    for command in table {
        describe(command, prefix, out);
    }
}

fn describe(command: &HmpCommand, prefix: &str, out: &mut String) {
    out.push_str(&format!(
        "{prefix}{} {} -- {}\n",
        command.name, command.params, command.help
    ));
}

/// C's `isspace`.
fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\u{b}' | '\u{c}' | '\r')
}

fn skip_spaces(line: &str, from: usize) -> usize {
    line[from..]
        .find(|c: char| !is_space(c))
        .map_or(line.len(), |offset| from + offset)
}

fn report(result: Result<(), QmpError>, out: &mut String) {
    if let Err(error) = result {
        out.push_str(&format!("Error: {}\n", error.desc));
    }
}

fn cont(context: &mut Context<'_>, out: &mut String) {
    report(Handles::<Cont>::handle(&mut *context.machine, Cont {}), out);
}

fn stop(context: &mut Context<'_>, out: &mut String) {
    report(Handles::<Stop>::handle(&mut *context.machine, Stop {}), out);
}

fn quit(context: &mut Context<'_>, out: &mut String) {
    report(Handles::<Quit>::handle(&mut *context.machine, Quit {}), out);
}

fn info_status(context: &mut Context<'_>, out: &mut String) {
    let Ok(status) = Handles::<QueryStatus>::handle(&mut *context.machine, QueryStatus {}) else {
        return;
    };
    out.push_str("VM status: ");
    out.push_str(if status.running { "running" } else { "paused" });
    if !status.running && status.status != RunState::Paused {
        out.push_str(&format!(" ({})", status.status));
    }
    out.push('\n');
}

fn info_version(context: &mut Context<'_>, out: &mut String) {
    let version = &context.server.version;
    let qemu = &version.qemu;
    out.push_str(&format!(
        "{}.{}.{}{}\n",
        qemu.major, qemu.minor, qemu.micro, version.package
    ));
}

fn info_name(context: &mut Context<'_>, out: &mut String) {
    if let Ok(info) = Handles::<QueryName>::handle(&mut *context.machine, QueryName {}) {
        if let Some(name) = info.name {
            out.push_str(&format!("{name}\n"));
        }
    }
}

fn info_uuid(context: &mut Context<'_>, out: &mut String) {
    if let Ok(info) = Handles::<QueryUuid>::handle(&mut *context.machine, QueryUuid {}) {
        out.push_str(&format!("{}\n", info.uuid));
    }
}

fn info_kvm(context: &mut Context<'_>, out: &mut String) {
    if let Ok(info) = Handles::<QueryKvm>::handle(&mut *context.machine, QueryKvm {}) {
        let state = match (info.present, info.enabled) {
            (false, _) => "not compiled",
            (true, true) => "enabled",
            (true, false) => "disabled",
        };
        out.push_str(&format!("kvm support: {state}\n"));
    }
}
