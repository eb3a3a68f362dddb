//! The test host: Debian's kernel under QEMU's emulation of an AMD CPU with
//! SVM, where kvm_amd loads and kvmon runs on real KVM (`cargo xtask
//! testhost` builds it).  One boots per test binary, on first use, and its
//! tests take turns; a benchmark boots a fresh one for each measurement.
//!
//! Inside, a shell on a virtio console runs what the harness asks; what a
//! program it starts writes to stdout (the guest's serial port, with
//! `-serial stdio`) and stderr reach two more consoles, files here; QMP at
//! `tcp:0.0.0.0:4444` inside is forwarded to a local port here.

use std::fs::File;
use std::io::{ErrorKind, Read, Seek, SeekFrom, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{mpsc, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crate::client::Client;
use crate::process::{qemu_bin, TempDir};

/// The QMP address a program in the test host listens on.
pub const QMP: &str = "tcp:0.0.0.0:4444,server=on,wait=off";
/// How long the test host may take to boot.
const BOOT_TIMEOUT: Duration = Duration::from_secs(120);
/// How long a shell command may take.
const SHELL_TIMEOUT: Duration = Duration::from_secs(60);
/// What ends each shell command's output.
const DONE: &str = "@@done ";

/// The test host, booted on first use.
pub fn testhost() -> MutexGuard<'static, TestHost> {
    static HOST: OnceLock<Mutex<TestHost>> = OnceLock::new();
    HOST.get_or_init(|| Mutex::new(TestHost::fresh()))
        .lock()
        // A failed test leaves the host usable: each run cleans up after itself.
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[derive(Debug)]
pub struct TestHost {
    qemu: Child,
    dir: TempDir,
    shell: UnixStream,
    /// Shell output read past the last command's end.
    pending: Vec<u8>,
    qmp_port: u16,
    runs: usize,
}

impl TestHost {
    /// A test host of the caller's own, booted now and shut down when
    /// dropped.
    pub fn fresh() -> TestHost {
        static BUILT: OnceLock<PathBuf> = OnceLock::new();
        let built = BUILT.get_or_init(build);
        let dir = TempDir::new();
        let qmp_port = free_port();
        let mut qemu = Command::new(qemu_bin());
        let path = |name: &str| dir.join(name).display().to_string();
        qemu.args(["-accel", "tcg", "-cpu", "max", "-M", "q35", "-m", "3G"])
            .args(["-smp", "2", "-nodefaults", "-display", "none", "-no-reboot"])
            .arg("-kernel")
            .arg(built.join("vmlinuz"))
            .arg("-initrd")
            .arg(built.join("initramfs.cpio"))
            .args(["-append", "console=ttyS0 quiet"])
            .args(["-serial", &format!("file:{}", path("console"))])
            .args(["-device", "virtio-serial-pci", "-chardev"])
            .arg(format!(
                "socket,id=shell,path={},server=on,wait=off",
                path("shell.sock")
            ))
            .args(["-device", "virtconsole,chardev=shell"])
            .args([
                "-chardev",
                &format!("file,id=output,path={}", path("output")),
            ])
            .args(["-device", "virtconsole,chardev=output"])
            .args([
                "-chardev",
                &format!("file,id=errors,path={}", path("errors")),
            ])
            .args(["-device", "virtconsole,chardev=errors", "-nic"])
            .arg(format!(
                "user,model=e1000,hostfwd=tcp:127.0.0.1:{qmp_port}-:4444"
            ))
            .stdin(Stdio::null())
            .stdout(File::create(dir.join("qemu.log")).unwrap())
            .stderr(File::create(dir.join("qemu.log")).unwrap());
        let qemu = spawn_for_life(qemu);
        let deadline = Instant::now() + BOOT_TIMEOUT;
        let shell = loop {
            if let Ok(shell) = UnixStream::connect(dir.join("shell.sock")) {
                break shell;
            }
            assert!(
                Instant::now() < deadline,
                "the test host's QEMU did not start"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        shell
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        let mut host = TestHost {
            qemu,
            dir,
            shell,
            pending: Vec::new(),
            qmp_port,
            runs: 0,
        };
        host.wait_for_shell(deadline);
        host
    }

    /// Waits for the shell: until then, what is sent may be lost, so a
    /// probe is repeated until it is answered.
    fn wait_for_shell(&mut self, deadline: Instant) {
        while !String::from_utf8_lossy(&self.pending).contains("@@up\n") {
            assert!(
                Instant::now() < deadline,
                "the test host did not boot:\n{}",
                self.logs()
            );
            if let Some(status) = self.qemu.try_wait().unwrap() {
                panic!("the test host's QEMU exited ({status}):\n{}", self.logs());
            }
            // Quoted, so that an echo of the input cannot pass for the answer.
            self.shell.write_all(b"echo @@u''p\n").unwrap();
            self.receive().unwrap_or_else(|error| panic!("{error}"));
        }
        // Past the answers to probes still in flight.
        self.shell("true");
    }

    /// Runs `command` in the test host's shell; returns its output (stdout
    /// and stderr) and its exit status.
    pub fn shell_status(&mut self, command: &str) -> (String, i32) {
        self.try_shell(command)
            .unwrap_or_else(|error| panic!("{error}\n{}", self.logs()))
    }

    /// The same, with an error instead of a panic when the shell does not
    /// answer (for clean-ups, which run while a failed test unwinds).
    fn try_shell(&mut self, command: &str) -> Result<(String, i32), String> {
        let request = format!("{command}\necho \"{DONE}$?\"\n");
        self.shell
            .write_all(request.as_bytes())
            .map_err(|e| format!("the test host's shell: {e}"))?;
        let deadline = Instant::now() + SHELL_TIMEOUT;
        loop {
            let text = String::from_utf8_lossy(&self.pending).into_owned();
            if let Some(at) = text.find(DONE) {
                if let Some(end) = text[at..].find('\n') {
                    let status = text[at + DONE.len()..at + end].trim().parse().unwrap_or(-1);
                    let output = text[..at].to_string();
                    self.pending.drain(..at + end + 1);
                    return Ok((output, status));
                }
            }
            if Instant::now() > deadline {
                return Err(format!(
                    "the test host's shell did not finish {command:?}; it printed {text:?}"
                ));
            }
            self.receive()?;
        }
    }

    /// Adds what the shell has sent to `pending`, waiting at most the
    /// socket's read timeout.
    fn receive(&mut self) -> Result<(), String> {
        let mut chunk = [0; 65536];
        match self.shell.read(&mut chunk) {
            Ok(0) => Err("the test host's shell closed".to_string()),
            Ok(n) => {
                self.pending.extend_from_slice(&chunk[..n]);
                Ok(())
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Ok(()),
            Err(e) => Err(format!("the test host's shell: {e}")),
        }
    }

    /// Runs `command` in the test host's shell; panics unless it succeeds.
    pub fn shell(&mut self, command: &str) -> String {
        let (output, status) = self.shell_status(command);
        assert_eq!(status, 0, "{command:?} failed in the test host:\n{output}");
        output
    }

    /// Starts `program args...` in the test host (cwd /guest, where the
    /// guests are: `vmlinuz`, `vmlinux`, `initramfs.cpio`, `test-guest`,
    /// `kvmon-firmware`).  Its stdout is the run's output.
    pub fn start(&mut self, program: &str, args: &[&str]) -> Run<'_> {
        self.launch(program, args, None)
    }

    /// The same, and the test host's clock notes when the program starts
    /// and when a line of its output first holds `needle`
    /// ([`Run::time_to_needle`]), free of the harness's own delays.
    pub fn start_timed(&mut self, program: &str, args: &[&str], needle: &str) -> Run<'_> {
        let note_uptime = "[ -s $run/seen ] || { read up _ </proc/uptime; echo $up >$run/seen; }";
        self.launch(program, args, Some((needle, note_uptime)))
    }

    /// The same, and each line of its output that holds `needle` makes the
    /// test host run `command` at once, before the line goes on: the line
    /// and what the command prints are [`Run::noted`].  The command may
    /// read the program's pid with `read pid <$run/pid`; shell builtins
    /// only keep it quick (a fork costs milliseconds under emulation).  It
    /// is pasted into the reader's `case` branch: a list that does not end
    /// in `;`, holds no `;;`, and leaves `$line` and `$run` alone.
    pub fn start_noting(
        &mut self,
        program: &str,
        args: &[&str],
        needle: &str,
        command: &str,
    ) -> Run<'_> {
        let note = format!("{{ echo \"@@line $line\"; {command}; }} >>$run/noted");
        self.launch(program, args, Some((needle, &note)))
    }

    /// Starts the program; with a watch (needle, command), a reader between
    /// the program and the console runs the command, in a shell where
    /// `$run` is the run's directory and `$line` the line, on each line
    /// that holds the needle.
    fn launch(&mut self, program: &str, args: &[&str], watch: Option<(&str, &str)>) -> Run<'_> {
        self.runs += 1;
        let id = self.runs;
        let dir = format!("/tmp/run{id}");
        let command: Vec<String> = std::iter::once(program)
            .chain(args.iter().copied())
            .map(quote)
            .collect();
        let output_from = self.length("output");
        let errors_from = self.length("errors");
        self.shell(&format!("mkdir -p {dir}"));
        let output = match watch {
            None => "/dev/hvc1".to_string(),
            Some((needle, command)) => {
                self.shell(&format!(
                    "mkfifo {dir}/out && \
                     ( run={dir}; \
                       while IFS= read -r line || [ -n \"$line\" ]; do \
                         case \"$line\" in *{needle}*) {command} ;; esac; \
                         echo \"$line\"; \
                       done <{dir}/out >/dev/hvc1 ) &",
                    needle = quote(needle)
                ));
                format!("{dir}/out")
            }
        };
        // A subshell keeps the program's pid and, once it ends, its status.
        let pid = self.shell(&format!(
            "cd /guest && \
             ( read up _ </proc/uptime; echo $up >{dir}/started; \
               {} </dev/null >{output} 2>/dev/hvc2 & \
               echo $! >{dir}/pid; wait $!; rc=$?; \
               read up _ </proc/uptime; echo $up >{dir}/ended; echo $rc >{dir}/status ) & \
             while [ ! -s {dir}/pid ]; do usleep 1000; done; cat {dir}/pid",
            command.join(" ")
        ));
        let pid = pid.trim().to_string();
        Run {
            host: self,
            id,
            pid,
            output_from,
            errors_from,
            status: None,
        }
    }

    /// The test host's console (its kernel's messages).
    pub fn console(&self) -> String {
        std::fs::read_to_string(self.dir.join("console")).unwrap_or_default()
    }

    fn length(&self, name: &str) -> u64 {
        std::fs::metadata(self.dir.join(name))
            .map(|m| m.len())
            .unwrap_or(0)
    }

    /// The file `name` from byte `from` on.
    fn read_from(&self, name: &str, from: u64) -> String {
        let mut text = Vec::new();
        if let Ok(mut file) = File::open(self.dir.join(name)) {
            let _ = file.seek(SeekFrom::Start(from));
            let _ = file.read_to_end(&mut text);
        }
        String::from_utf8_lossy(&text).into_owned()
    }

    /// What to show when a test fails.
    fn logs(&self) -> String {
        let qemu = std::fs::read_to_string(self.dir.join("qemu.log")).unwrap_or_default();
        format!(
            "--- test host console:\n{}\n--- test host QEMU:\n{qemu}",
            self.console()
        )
    }
}

/// A program running in the test host; killed when dropped.
#[derive(Debug)]
pub struct Run<'h> {
    host: &'h mut TestHost,
    id: usize,
    pid: String,
    /// Where this run's output and errors start in their files.
    output_from: u64,
    errors_from: u64,
    status: Option<i32>,
}

impl Run<'_> {
    /// What the program has written to stdout so far.
    pub fn output(&self) -> String {
        self.host.read_from("output", self.output_from)
    }

    /// What it has written to stderr so far.
    pub fn stderr(&self) -> String {
        self.host.read_from("errors", self.errors_from)
    }

    /// Waits until the output's complete lines hold `needle` `count`
    /// times; returns those lines.
    pub fn wait_for_output(&mut self, needle: &str, count: usize, timeout: Duration) -> String {
        self.try_wait_for_output(needle, count, timeout)
            .unwrap_or_else(|error| panic!("{error}"))
    }

    /// The same, with an error after `timeout` (watching the output costs
    /// the test host nothing).
    pub fn try_wait_for_output(
        &mut self,
        needle: &str,
        count: usize,
        timeout: Duration,
    ) -> Result<String, String> {
        let deadline = Instant::now() + timeout;
        loop {
            let mut text = self.output();
            text.truncate(text.rfind('\n').map_or(0, |end| end + 1));
            if text.matches(needle).count() >= count {
                return Ok(text);
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "{needle:?} not {count} times in the output after {timeout:?}:\n{text}"
                ));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A QMP client on the program's monitor (at [`QMP`] inside), greeted.
    pub fn qmp(&mut self) -> Client<TcpStream> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            // The forwarder accepts at once and closes when nothing
            // listens inside yet.
            if let Ok(stream) = TcpStream::connect(("127.0.0.1", self.host.qmp_port)) {
                let mut client = Client::over(stream);
                if let Some(greeting) = client.try_line(Duration::from_secs(5)) {
                    client.greeting = greeting;
                    return client;
                }
            }
            assert!(
                Instant::now() < deadline,
                "no QMP greeting from the test host"
            );
            assert!(self.running(), "the program exited before its QMP greeting");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// A QMP client that has negotiated capabilities.
    pub fn negotiated(&mut self) -> Client<TcpStream> {
        let mut client = self.qmp();
        client.negotiate();
        client
    }

    /// Its exit status once it has exited.
    pub fn try_status(&mut self) -> Option<i32> {
        if self.status.is_none() {
            let (text, found) = self
                .host
                .shell_status(&format!("cat /tmp/run{}/status 2>/dev/null", self.id));
            if found == 0 {
                self.status = text.trim().parse().ok();
            }
        }
        self.status
    }

    pub fn running(&mut self) -> bool {
        self.try_status().is_none()
    }

    /// Waits for it to exit; returns its exit status.
    pub fn wait(&mut self, timeout: Duration) -> i32 {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_status() {
                return status;
            }
            assert!(Instant::now() < deadline, "it did not exit in {timeout:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Runs a command in the test host (e.g. to read the program's /proc).
    pub fn shell(&mut self, command: &str) -> String {
        self.host.shell(command)
    }

    /// The same, with an error instead of a panic when the command fails
    /// or does not finish (a guest that hangs, for a bench to retry).
    pub fn try_shell(&mut self, command: &str) -> Result<String, String> {
        match self.host.try_shell(command)? {
            (output, 0) => Ok(output),
            (output, status) => Err(format!(
                "{command:?} failed in the test host ({status}):\n{output}"
            )),
        }
    }

    /// For a run started with [`TestHost::start_timed`]: from its start to
    /// the first output line with the needle, by the test host's clock
    /// (10 ms steps), once that line has come.
    pub fn time_to_needle(&mut self) -> Option<Duration> {
        self.between("started", "seen")
    }

    /// From its start to its exit, by the test host's clock, once it has
    /// exited.
    pub fn time_to_exit(&mut self) -> Option<Duration> {
        self.between("started", "ended")
    }

    /// For a run started with [`TestHost::start_noting`]: each line that
    /// held the needle so far, with what the command printed then.
    pub fn noted(&mut self) -> Vec<(String, String)> {
        let text = self
            .host
            .shell(&format!("cat /tmp/run{}/noted 2>/dev/null; true", self.id));
        let mut notes: Vec<(String, String)> = Vec::new();
        for line in text.lines() {
            match (line.strip_prefix("@@line "), notes.last_mut()) {
                (Some(noted), _) => notes.push((noted.trim_end().to_string(), String::new())),
                (None, Some((_, printed))) => {
                    printed.push_str(line);
                    printed.push('\n');
                }
                (None, None) => {}
            }
        }
        notes
    }

    /// The time between two uptimes the test host noted for this run.
    fn between(&mut self, from: &str, to: &str) -> Option<Duration> {
        let dir = format!("/tmp/run{}", self.id);
        let times = self
            .host
            .shell(&format!("cat {dir}/{from} {dir}/{to} 2>/dev/null; true"));
        let times: Vec<f64> = times
            .split_whitespace()
            .filter_map(|t| t.parse().ok())
            .collect();
        match times[..] {
            [from, to] => Some(Duration::from_secs_f64((to - from).max(0.0))),
            _ => None,
        }
    }

    /// The program's pid in the test host.
    pub fn pid(&self) -> &str {
        &self.pid
    }
}

impl Drop for TestHost {
    fn drop(&mut self) {
        let _ = self.qemu.kill();
        let _ = self.qemu.wait();
    }
}

impl Drop for Run<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- the run's output:\n{}\n--- its stderr:\n{}\n{}",
                self.output(),
                self.stderr(),
                self.host.logs()
            );
        }
        // Killed, and reaped so that the next run finds its ports free; the
        // wait is bounded so that the shell stays free for what follows.
        let id = self.id;
        let pid = &self.pid;
        let _ = self.host.try_shell(&format!(
            "kill -9 {pid} 2>/dev/null; i=0; \
             while [ ! -s /tmp/run{id}/status ] && [ $i -lt 500 ]; do usleep 10000; i=$((i + 1)); done"
        ));
    }
}

/// Builds the test host (`cargo xtask testhost`: cached downloads, fresh
/// archives with the current kvmon); returns its directory.
fn build() -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let status = Command::new(option_env!("CARGO").unwrap_or("cargo"))
        .args(["xtask", "testhost"])
        .current_dir(&root)
        .stdout(Stdio::null())
        .status()
        .expect("cannot run cargo xtask testhost");
    assert!(status.success(), "cargo xtask testhost failed");
    root.join("target/testhost")
}

/// Starts a command whose process the kernel kills when this test process
/// ends, however it ends: PR_SET_PDEATHSIG follows the thread that forked,
/// so one thread that lives as long as the process does all the forking.
fn spawn_for_life(mut command: Command) -> Child {
    type Spawn = (Command, mpsc::Sender<std::io::Result<Child>>);
    static SPAWNER: OnceLock<mpsc::Sender<Spawn>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (sender, requests) = mpsc::channel::<Spawn>();
        std::thread::spawn(move || {
            for (mut command, reply) in requests {
                let _ = reply.send(command.spawn());
            }
        });
        sender
    });
    // SAFETY: prctl only sets an attribute of the new process.
    unsafe {
        command.pre_exec(|| {
            libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
            Ok(())
        });
    }
    let (reply, child) = mpsc::channel();
    spawner.send((command, reply)).unwrap();
    child
        .recv()
        .unwrap()
        .unwrap_or_else(|e| panic!("cannot start QEMU: {e}"))
}

/// A local TCP port nothing listens on.
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// `word` quoted for the shell.
fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}
