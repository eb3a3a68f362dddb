//! `-daemonize` and `-pidfile`, as QEMU does them: the parent waits until
//! the daemon has finished starting and exits 0 only if it has.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

/// The daemon's end of the pipe its parent waits on.
#[derive(Debug)]
pub struct Daemon {
    to_parent: File,
}

/// Forks into the background.  The calling process returns only in the
/// daemon; the parent exits when the daemon reports (or dies).
pub fn daemonize() -> Result<Daemon, String> {
    let mut fds = [0; 2];
    // SAFETY: pipe writes two descriptors into the array we pass.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(format!("cannot daemonize: {}", io::Error::last_os_error()));
    }
    // SAFETY: both descriptors were just created and are owned only here.
    let (read_end, write_end) = unsafe { (File::from_raw_fd(fds[0]), File::from_raw_fd(fds[1])) };
    match fork()? {
        Some(_) => {
            drop(write_end);
            let mut status = [1u8];
            let ok = matches!((&read_end).read(&mut status), Ok(1)) && status[0] == 0;
            std::process::exit(if ok { 0 } else { 1 });
        }
        None => drop(read_end),
    }
    // SAFETY: setsid has no memory effects.
    unsafe { libc::setsid() };
    // A second fork, so that the daemon is not a session leader.
    if fork()?.is_some() {
        std::process::exit(0);
    }
    // SAFETY: umask and signal dispositions have no memory effects.
    unsafe {
        libc::umask(0o027);
        libc::signal(libc::SIGTSTP, libc::SIG_IGN);
        libc::signal(libc::SIGTTOU, libc::SIG_IGN);
        libc::signal(libc::SIGTTIN, libc::SIG_IGN);
    }
    Ok(Daemon {
        to_parent: write_end,
    })
}

/// Returns the child's pid in the parent, `None` in the child.
fn fork() -> Result<Option<libc::pid_t>, String> {
    // SAFETY: kvmon forks before it starts any thread.
    match unsafe { libc::fork() } {
        -1 => Err(format!("cannot daemonize: {}", io::Error::last_os_error())),
        0 => Ok(None),
        pid => Ok(Some(pid)),
    }
}

impl Daemon {
    /// Start-up succeeded: detach from the terminal and let the parent go.
    pub fn ready(mut self) -> Result<(), String> {
        std::env::set_current_dir("/").map_err(|e| format!("not able to chdir to /: {e}"))?;
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .map_err(|e| format!("cannot open /dev/null: {e}"))?;
        for target in 0..=2 {
            // SAFETY: dup2 onto the standard streams; a monitor socket passed
            // as one of them was copied elsewhere when it was claimed.
            unsafe { libc::dup2(null.as_raw_fd(), target) };
        }
        self.to_parent
            .write_all(&[0])
            .map_err(|e| format!("cannot tell the parent process: {e}"))
    }
}

/// A `-pidfile`: holds a lock while kvmon runs and is removed at exit.
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
    _file: OwnedFd,
}

impl PidFile {
    pub fn create(path: &Path) -> Result<PidFile, String> {
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = File::options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|error| {
                format!(
                    "cannot create PID file: Could not create '{}': {}",
                    path.display(),
                    monitor::os_error(&error)
                )
            })?;
        // SAFETY: lockf on our own descriptor has no memory effects.
        if unsafe { libc::lockf(file.as_raw_fd(), libc::F_TLOCK, 0) } != 0 {
            return Err(format!(
                "cannot create PID file: Cannot lock pid file: {}",
                monitor::os_error(&io::Error::last_os_error())
            ));
        }
        let written = file
            .set_len(0)
            .and_then(|()| writeln!(file, "{}", std::process::id()));
        if written.is_err() {
            return Err("cannot create PID file: Failed to write pid file".to_string());
        }
        // Removed at exit by absolute path: -daemonize changes directory.
        let path = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
        Ok(PidFile {
            path,
            _file: file.into(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(error) = std::fs::remove_file(&self.path) {
            log::debug!("cannot remove {}: {error}", self.path.display());
        }
    }
}
