//! kvmon: a KVM virtual machine monitor driven over QMP, with QEMU's
//! command line.

mod accel;
mod cli;
mod console;
mod daemon;
mod guest;
mod machine;
mod main_loop;
mod signals;

use std::path::Path;
use std::process::ExitCode;

use cli::{CliError, Config, Invocation};

fn main() -> ExitCode {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let program = program_name();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let config = match cli::parse(&args) {
        Ok(Invocation::Run(config)) => config,
        Ok(Invocation::Print(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprint!("{}", error.render(&program));
            return ExitCode::FAILURE;
        }
    };
    match start(*config, &program) {
        Ok(status) => ExitCode::from(u8::try_from(status).unwrap_or(1)),
        Err(error) => {
            eprint!("{}", error.render(&program));
            ExitCode::FAILURE
        }
    }
}

/// The basename of argv[0], which QEMU puts before its messages.
fn program_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|arg0| {
            Path::new(&arg0)
                .file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "kvmon".to_string())
}

fn start(mut config: Config, program: &str) -> Result<i32, CliError> {
    let mut say = |line: String| eprintln!("{program}: {line}");
    for warning in std::mem::take(&mut config.warnings) {
        say(warning);
    }
    monitor::raise_fd_limit();
    if let Some(name) = &config.process_name {
        set_process_name(name);
    }
    let daemon = if config.daemonize {
        Some(daemon::daemonize().map_err(CliError::bare)?)
    } else {
        None
    };
    let _pidfile = match &config.pidfile {
        Some(path) => Some(daemon::PidFile::create(path).map_err(CliError::bare)?),
        None => None,
    };
    // No usable accelerator: the reasons are printed already.
    let Some(kvm_enabled) = accel::choose(&config.accelerators, &mut say) else {
        return Ok(1);
    };
    if config.guest.is_some() && !kvm_enabled {
        return Err(CliError::bare(
            "kvmon runs guest code only with KVM; without it, only '-machine none' can run",
        ));
    }
    config.machine.kvm_enabled = kvm_enabled;
    main_loop::run(
        config.machine,
        config.guest,
        config.monitors,
        daemon,
        program,
        &mut say,
    )
}

/// `-name process=`: what `ps` shows (at most 15 bytes, as Linux keeps).
fn set_process_name(name: &str) {
    let mut bytes: Vec<u8> = name.bytes().filter(|&b| b != 0).take(15).collect();
    bytes.push(0);
    // SAFETY: PR_SET_NAME reads a NUL-terminated string of at most 16 bytes.
    unsafe {
        libc::prctl(libc::PR_SET_NAME, bytes.as_ptr());
    }
}
