//! Starting and stopping the processes under test.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::client::Client;

/// The kvmon binary: `$KVMON_BIN`, else the workspace's release build
/// (built on first use).
pub fn kvmon_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        if let Some(path) = std::env::var_os("KVMON_BIN") {
            // Relative to the workspace root, where cargo commands run.
            return root.join(path);
        }
        let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
            .args(["build", "--release", "--package", "kvmon", "--bin", "kvmon"])
            .current_dir(&root)
            .status()
            .expect("cannot run cargo to build kvmon");
        assert!(status.success(), "building kvmon failed");
        root.join("target/release/kvmon")
    })
    .clone()
}

/// The firmware test guest, built from firmware/ by this crate's build script.
pub fn test_guest() -> PathBuf {
    PathBuf::from(env!("KVMON_TEST_GUEST"))
}

/// The default firmware kvmon embeds, as a file (for QEMU to boot).
pub fn default_firmware() -> PathBuf {
    PathBuf::from(env!("KVMON_FIRMWARE"))
}

/// What QEMU needs on hosts like the test machines, whose KVM cannot set
/// MSR 0x10a and does not emulate cmpxchg16b.
pub const QEMU_KVM: &[&str] = &[
    "-M",
    "microvm",
    "-accel",
    "kvm",
    "-cpu",
    "host,-arch-capabilities,-cx16",
];

/// Runs kvmon with `args` to its end: (exit code, stdout, stderr).
pub fn run_kvmon(args: &[&str]) -> (Option<i32>, String, String) {
    let output = Command::new(kvmon_bin())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .expect("run kvmon");
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// QEMU, the reference; `cargo xtask ci` installs it.
pub fn qemu_bin() -> PathBuf {
    let path = PathBuf::from("/usr/bin/qemu-system-x86_64");
    assert!(
        path.exists(),
        "QEMU is the reference for these tests: install qemu-system-x86 (cargo xtask ci does)"
    );
    path
}

/// A private directory, removed on drop.  Kept short: Unix socket paths
/// must fit in 107 bytes.
#[derive(Debug)]
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new() -> TempDir {
        static COUNT: AtomicUsize = AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, Ordering::Relaxed);
        let path = PathBuf::from(format!("/tmp/kvt-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("cannot create a temporary directory");
        TempDir(path)
    }

    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Default for TempDir {
    fn default() -> Self {
        TempDir::new()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A running VMM with its QMP socket at `qmp`.
#[derive(Debug)]
pub struct Vmm {
    pub child: Child,
    pub dir: TempDir,
    pub qmp: PathBuf,
    status: Option<ExitStatus>,
}

impl Vmm {
    /// `kvmon -machine none -S -qmp unix:DIR/qmp.sock,server=on,wait=off EXTRA...`
    pub fn kvmon(extra: &[&str]) -> Vmm {
        Vmm::machine_none(&kvmon_bin(), extra)
    }

    /// The same command line for QEMU (with `-display none`).
    pub fn qemu(extra: &[&str]) -> Vmm {
        let mut args = vec!["-display", "none"];
        args.extend_from_slice(extra);
        Vmm::machine_none(&qemu_bin(), &args)
    }

    fn machine_none(program: &Path, extra: &[&str]) -> Vmm {
        let dir = TempDir::new();
        let qmp = dir.join("qmp.sock");
        let qmp_arg = format!("unix:{},server=on,wait=off", qmp.display());
        let mut args = vec!["-machine", "none", "-S", "-qmp", &qmp_arg];
        args.extend_from_slice(extra);
        let mut vmm = Vmm::spawn(program, &args, dir);
        vmm.qmp = qmp;
        vmm.wait_for_socket();
        vmm
    }

    /// kvmon booting a guest on KVM, its serial port in the file `serial`:
    /// `kvmon -qmp unix:DIR/qmp.sock,server=on,wait=off -serial file:DIR/serial ARGS...`
    pub fn guest(args: &[&str]) -> Vmm {
        Vmm::guest_of(&kvmon_bin(), args)
    }

    /// The test guest running `scenario`, held in prelaunch (-S) so that a
    /// client sees every event from the first instruction on.
    pub fn scenario(scenario: &str, extra: &[&str]) -> Vmm {
        let guest = test_guest();
        let mut args = vec![
            "-S",
            "-kernel",
            guest.to_str().unwrap(),
            "-append",
            scenario,
        ];
        args.extend_from_slice(extra);
        Vmm::guest(&args)
    }

    /// The same for QEMU's microvm on KVM, with `-nodefaults` (kvmon's
    /// microvm has no further default devices to drop).
    pub fn qemu_scenario(scenario: &str, extra: &[&str]) -> Vmm {
        let guest = test_guest();
        let mut args = QEMU_KVM.to_vec();
        args.extend_from_slice(&["-nodefaults", "-display", "none", "-S"]);
        args.extend_from_slice(&["-kernel", guest.to_str().unwrap(), "-append", scenario]);
        args.extend_from_slice(extra);
        Vmm::guest_of(&qemu_bin(), &args)
    }

    /// QEMU's microvm on KVM with `args` (as given to kvmon).
    pub fn qemu_scenario_with(args: &[&str]) -> Vmm {
        let mut all = QEMU_KVM.to_vec();
        all.extend_from_slice(&["-nodefaults", "-display", "none"]);
        all.extend_from_slice(args);
        Vmm::guest_of(&qemu_bin(), &all)
    }

    fn guest_of(program: &Path, args: &[&str]) -> Vmm {
        let dir = TempDir::new();
        let qmp = dir.join("qmp.sock");
        let qmp_arg = format!("unix:{},server=on,wait=off", qmp.display());
        let serial_arg = format!("file:{}", dir.join("serial").display());
        let mut all = vec!["-qmp", &qmp_arg, "-serial", &serial_arg];
        all.extend_from_slice(args);
        let mut vmm = Vmm::spawn(program, &all, dir);
        vmm.wait_for_socket();
        vmm
    }

    /// What the guest has written to its serial port so far.
    pub fn serial(&self) -> String {
        std::fs::read_to_string(self.dir.join("serial")).unwrap_or_default()
    }

    /// Waits until the serial output contains `needle`; returns the output.
    pub fn wait_for_serial(&self, needle: &str) -> String {
        self.wait_for_output("serial", needle, 1)
    }

    /// Waits until the file `name` in the VMM's directory (its serial port,
    /// stdout, ...) holds `needle` `count` times; returns its text.
    pub fn wait_for_output(&self, name: &str, needle: &str, count: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let text = std::fs::read_to_string(self.dir.join(name)).unwrap_or_default();
            if text.matches(needle).count() >= count {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{needle:?} not {count} times in {name}; it shows:\n{text}\nstderr:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Starts `program args...` with stdout and stderr going to files in `dir`.
    pub fn spawn(program: &Path, args: &[&str], dir: TempDir) -> Vmm {
        let mut command = Command::new(program);
        command.args(args);
        Vmm::spawn_command(command, dir)
    }

    /// Starts a prepared command with stdout and stderr going to files in `dir`.
    pub fn spawn_command(mut command: Command, dir: TempDir) -> Vmm {
        let stdout = File::create(dir.join("stdout")).expect("stdout file");
        let stderr = File::create(dir.join("stderr")).expect("stderr file");
        let child = command
            .stdin(Stdio::null())
            .stdout(stdout)
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
        Vmm {
            child,
            qmp: dir.join("qmp.sock"),
            dir,
            status: None,
        }
    }

    /// Waits until something listens on the QMP socket.
    pub fn wait_for_socket(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::os::unix::net::UnixStream::connect(&self.qmp).is_err() {
            if let Some(status) = self.try_wait() {
                panic!(
                    "the VMM exited ({status}) before listening:\n{}",
                    self.stderr()
                );
            }
            assert!(
                Instant::now() < deadline,
                "no QMP socket at {}",
                self.qmp.display()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// A client that has read the greeting.
    pub fn connect(&self) -> Client {
        Client::connect(&self.qmp)
    }

    /// A client that has negotiated capabilities.
    pub fn negotiated(&self) -> Client {
        let mut client = self.connect();
        client.negotiate();
        client
    }

    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    pub fn signal(&self, signal: i32) {
        // SAFETY: kill only sends a signal to our own child.
        unsafe { libc::kill(self.pid(), signal) };
    }

    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        if self.status.is_none() {
            self.status = self.child.try_wait().ok().flatten();
        }
        self.status
    }

    /// Waits for the process to exit; panics after `timeout`.
    pub fn wait(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "the VMM did not exit:\n{}",
                self.stderr()
            );
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Whether it is still running.
    pub fn running(&mut self) -> bool {
        self.try_wait().is_none()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self.dir.join("stderr")).unwrap_or_default()
    }

    /// Resident memory in KiB (VmRSS).
    pub fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap_or_default();
        status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse().ok())
            .unwrap_or(0)
    }
}

impl Drop for Vmm {
    fn drop(&mut self) {
        if self.try_wait().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}
