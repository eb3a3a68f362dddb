//! kvmon as a process: its command line, exit statuses, signals,
//! daemonizing, pidfiles and every way a monitor socket can be set up.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::{AsRawFd, RawFd};
use std::os::unix::fs::PermissionsExt;
use std::os::unix::net::{UnixListener, UnixStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use kvmon_tests::{kvmon_bin, run_kvmon, Client, TempDir, Vmm};

const STATUS_PRELAUNCH: &str = r#"{"return": {"status": "prelaunch", "running": false}}"#;

/// Starts kvmon with exactly these arguments, in `dir`.
fn start(args: &[&str], dir: TempDir) -> Vmm {
    Vmm::spawn(&kvmon_bin(), args, dir)
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn accept(listener: &UnixListener) -> UnixStream {
    listener.set_nonblocking(true).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match listener.accept() {
            Ok((stream, _)) => {
                stream.set_nonblocking(false).unwrap();
                return stream;
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => panic!("kvmon did not connect: {error}"),
        }
    }
}

/// Lets the child inherit `fd` (Rust opens everything close-on-exec).
fn inherit(command: &mut Command, fd: RawFd) {
    // SAFETY: runs in the child between fork and exec, and calls only the
    // async-signal-safe fcntl.
    unsafe {
        command.pre_exec(move || {
            let flags = libc::fcntl(fd, libc::F_GETFD);
            libc::fcntl(fd, libc::F_SETFD, flags & !libc::FD_CLOEXEC);
            Ok(())
        });
    }
}

#[test]
fn help_and_version_go_to_stdout_with_status_zero() {
    for flag in ["-h", "-help", "--help"] {
        let (code, stdout, stderr) = run_kvmon(&[flag]);
        assert_eq!(code, Some(0));
        assert!(stdout.contains("usage: kvmon [options]"), "{stdout}");
        assert!(stdout.contains("-qmp dev"));
        assert_eq!(stderr, "");
    }
    for flag in ["-version", "--version"] {
        let (code, stdout, _) = run_kvmon(&[flag]);
        assert_eq!(code, Some(0));
        assert!(
            stdout.starts_with("QEMU emulator version 10.0.0 (kvmon-"),
            "{stdout}"
        );
    }
    let (code, stdout, _) = run_kvmon(&["-machine", "help"]);
    assert_eq!(
        (code, stdout.as_str()),
        (
            Some(0),
            "Supported machines are:\n\
             microvm              microvm (i386) (default)\n\
             none                 empty machine\n"
        )
    );
}

#[test]
fn command_line_errors_are_qemus_lines_and_status_one() {
    let cases: &[(&[&str], &str)] = &[
        (&["-machine", "none", "-foo"], "kvmon: -foo: invalid option\n"),
        (&["-version", "-foo"], "kvmon: -foo: invalid option\n"),
        (&["--foo"], "kvmon: --foo: invalid option\n"),
        (&["-machine", "none", "-qmp"], "kvmon: -qmp: requires an argument\n"),
        (&["-qmp=unix:/x"], "kvmon: -qmp=unix:/x: invalid option\n"),
        (&["-machine", "pc"], "kvmon: unsupported machine type: \"pc\"\nUse -machine help to list supported machines\n"),
        (&["-machine", "none,foo=bar"], "kvmon: Property 'none-machine.foo' not found\n"),
        (&["-machine", "none,accel"], "kvmon: -machine none,accel: Expected '=' after parameter 'accel'\n"),
        (&["-M", "none", "-uuid", "bogus"], "kvmon: -uuid bogus: failed to parse UUID string: wrong format\n"),
        (&["-M", "none", "-name", "foo,bogus=1"], "kvmon: -name foo,bogus=1: Invalid parameter 'bogus'\n"),
        (&["-M", "none", "-accel", "bogus"], "kvmon: -accel bogus: invalid accelerator bogus\n"),
        (&["-M", "none", "-qmp", "bogus:foo"], "kvmon: -qmp bogus:foo: 'bogus:foo' is not a valid char driver\nkvmon: -qmp bogus:foo: parse error: bogus:foo\n"),
        (&["-M", "none", "-qmp", "unix:/a,server=1"], "kvmon: -qmp unix:/a,server=1: Parameter 'server' expects 'on' or 'off'\nkvmon: -qmp unix:/a,server=1: parse error: unix:/a,server=1\n"),
        (&["-M", "none", "-qmp", "unix:/tmp/x,wait=off"], "kvmon: -qmp unix:/tmp/x,wait=off: 'wait' option is incompatible with socket in client connect mode\n"),
        (&["-M", "none", "-chardev", "socket,path=/tmp/a"], "kvmon: -chardev socket,path=/tmp/a: chardev: no id specified\n"),
        (&["-M", "none", "-chardev", "socket,id=1x,path=/tmp/a"], "kvmon: -chardev socket,id=1x,path=/tmp/a: Parameter 'id' expects an identifier\nIdentifiers consist of letters, digits, '-', '.', '_', starting with a letter.\n"),
        (&["-M", "none", "-mon", "chardev=y,mode=control"], "kvmon: -mon chardev=y,mode=control: chardev \"y\" not found\n"),
        (&["-M", "none", "-chardev", "socket,id=m,fd=abc"], "kvmon: -chardev socket,id=m,fd=abc: Unable to parse FD number abc\n"),
        (&["-M", "none", "-chardev", "socket,id=m,fd=77", "-mon", "chardev=m,mode=control"], "kvmon: -chardev socket,id=m,fd=77: File descriptor '77' is not a socket\n"),
        (&["-M", "none", "-qmp", "unix:/nonexistent/dir/q.sock,server=on,wait=off"], "kvmon: -qmp unix:/nonexistent/dir/q.sock,server=on,wait=off: Failed to bind socket to /nonexistent/dir/q.sock: No such file or directory\n"),
        (&["-M", "none", "-qmp", "unix:/nonexistent/q.sock"], "kvmon: -qmp unix:/nonexistent/q.sock: Failed to connect to '/nonexistent/q.sock': No such file or directory\n"),
        (&["-M", "none", "-display", "gtk"], "kvmon: -display gtk: kvmon has no display; only '-display none' is accepted\n"),
        (&["-M", "none", "-mon", "chardev=m"], "kvmon: -mon chardev=m: the human monitor (mode=readline) is not supported by kvmon; use mode=control\n"),
    ];
    for (args, expected) in cases {
        let (code, stdout, stderr) = run_kvmon(args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr, *expected, "{args:?}");
        assert_eq!(stdout, "");
    }
}

#[test]
fn messages_carry_the_name_kvmon_was_started_as() {
    let dir = TempDir::new();
    let alias = dir.join("vmm-alias");
    std::os::unix::fs::symlink(kvmon_bin(), &alias).unwrap();
    let output = Command::new(&alias).arg("-foo").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "vmm-alias: -foo: invalid option\n"
    );
}

#[test]
fn terminating_signals_send_shutdown_and_exit_cleanly() {
    for (signal, extra) in [
        (libc::SIGTERM, vec![]),
        (libc::SIGINT, vec![]),
        (libc::SIGHUP, vec![]),
        (libc::SIGTERM, vec!["-no-shutdown"]),
    ] {
        let mut kvmon = Vmm::kvmon(&extra);
        let mut client = kvmon.negotiated();
        let silent = kvmon.connect();
        kvmon.signal(signal);
        let event = client.line();
        assert!(
            event.ends_with(
                r#""event": "SHUTDOWN", "data": {"guest": false, "reason": "host-signal"}}"#
            ),
            "{event}"
        );
        assert!(client.at_eof(Duration::from_secs(5)));
        assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
        let mut silent = silent;
        let mut before_negotiation = Vec::new();
        while let Some(line) = silent.try_line(Duration::from_secs(1)) {
            before_negotiation.push(line);
        }
        assert!(
            before_negotiation.is_empty(),
            "no event before negotiation: {before_negotiation:?}"
        );
        assert!(silent.at_eof(Duration::ZERO));
        let me = std::env::args().next().unwrap();
        assert_eq!(
            kvmon.stderr(),
            format!(
                "kvmon: terminating on signal {signal} from pid {} ({me})\n",
                std::process::id()
            )
        );
        assert!(!kvmon.qmp.exists(), "the socket file is removed");
    }
}

#[test]
fn name_uuid_and_initial_state() {
    let kvmon = Vmm::kvmon(&[
        "-name",
        "guest=vm1,debug-threads=on",
        "-uuid",
        "12345678-1234-1234-1234-123456789ABC",
    ]);
    let mut client = kvmon.negotiated();
    assert_eq!(
        client.command(r#"{"execute":"query-name"}"#),
        r#"{"return": {"name": "vm1"}}"#
    );
    assert_eq!(
        client.command(r#"{"execute":"query-uuid"}"#),
        r#"{"return": {"UUID": "12345678-1234-1234-1234-123456789abc"}}"#
    );
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        STATUS_PRELAUNCH
    );

    let dir = TempDir::new();
    let arg = format!("unix:{},server=on,wait=off", dir.join("q.sock").display());
    let mut running = start(&["-machine", "none", "-qmp", &arg], dir);
    running.qmp = running.dir.join("q.sock");
    running.wait_for_socket();
    let mut client = running.negotiated();
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        r#"{"return": {"status": "running", "running": true}}"#
    );
}

#[test]
fn kvm_is_enabled_when_asked_for_and_dev_kvm_opens() {
    assert!(
        Path::new("/dev/kvm").exists(),
        "these machines have /dev/kvm"
    );
    for (args, enabled) in [
        (vec![], false),
        (vec!["-accel", "tcg"], false),
        (vec!["-accel", "kvm"], true),
        (vec!["-enable-kvm"], true),
        (vec!["-machine", "none,accel=kvm:tcg"], true),
    ] {
        let kvmon = Vmm::kvmon(&args);
        let mut client = kvmon.negotiated();
        assert_eq!(
            client.command(r#"{"execute":"query-kvm"}"#),
            format!(r#"{{"return": {{"enabled": {enabled}, "present": true}}}}"#),
            "{args:?}"
        );
    }
}

#[test]
fn libvirts_probe_command_line_daemonizes_as_qemu_does() {
    let dir = TempDir::new();
    let socket = dir.join("qmp.monitor");
    let pidfile = dir.join("qmp.pid");
    let qmp = format!("unix:{},server=on,wait=off", socket.display());
    let started = Instant::now();
    // libvirt waits for the parent to exit and for its pipes to close.
    let output = Command::new(kvmon_bin())
        .args([
            "-S",
            "-no-user-config",
            "-nodefaults",
            "-nographic",
            "-machine",
            "none,accel=kvm:tcg",
        ])
        .args([
            "-qmp",
            &qmp,
            "-pidfile",
            pidfile.to_str().unwrap(),
            "-daemonize",
        ])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(output.stdout.is_empty() && output.stderr.is_empty());
    assert!(started.elapsed() < Duration::from_secs(5));
    let pid_text =
        std::fs::read_to_string(&pidfile).expect("the pidfile exists once the parent exits");
    assert!(pid_text.ends_with('\n'));
    let pid: i32 = pid_text.trim().parse().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    assert_eq!(
        std::fs::metadata(&pidfile).unwrap().permissions().mode() & 0o777,
        0o600
    );
    // The daemon's umask is 027, as QEMU's.
    assert_eq!(
        std::fs::metadata(&socket).unwrap().permissions().mode() & 0o777,
        0o750
    );
    let cwd = std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap();
    assert_eq!(cwd, Path::new("/"));
    let mut client = Client::connect(&socket);
    client.negotiate();
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        STATUS_PRELAUNCH
    );
    assert_eq!(
        client.command(r#"{"execute":"query-kvm"}"#),
        r#"{"return": {"enabled": true, "present": true}}"#
    );
    assert_eq!(client.command(r#"{"execute":"quit"}"#), r#"{"return": {}}"#);
    assert!(client.at_eof(Duration::from_secs(5)));
    wait_until("the pidfile and socket to go", || {
        !pidfile.exists() && !socket.exists()
    });
}

#[test]
fn a_daemon_that_fails_to_start_makes_the_parent_fail() {
    let output = Command::new(kvmon_bin())
        .args([
            "-M",
            "none",
            "-qmp",
            "unix:/nonexistent/q.sock,server=on,wait=off",
            "-daemonize",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        "kvmon: -qmp unix:/nonexistent/q.sock,server=on,wait=off: Failed to bind socket to /nonexistent/q.sock: No such file or directory\n"
    );
}

#[test]
fn a_locked_pidfile_stops_a_second_instance() {
    let dir = TempDir::new();
    let pidfile = dir.join("vm.pid");
    let first = Vmm::kvmon(&["-pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&pidfile).unwrap(),
        format!("{}\n", first.pid())
    );
    let (code, _, stderr) = run_kvmon(&["-M", "none", "-pidfile", pidfile.to_str().unwrap()]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        "kvmon: cannot create PID file: Cannot lock pid file: Resource temporarily unavailable\n"
    );
    drop(first);
}

#[test]
fn a_stale_socket_is_replaced_and_a_live_one_refused() {
    let dir = TempDir::new();
    let path = dir.join("q.sock");
    drop(UnixListener::bind(&path).unwrap());
    let arg = format!("unix:{},server=on,wait=off", path.display());
    let mut stale = start(&["-M", "none", "-S", "-qmp", &arg], TempDir::new());
    stale.qmp = path.clone();
    stale.wait_for_socket();
    stale.negotiated();
    drop(stale);

    let _live = UnixListener::bind(&path).unwrap_or_else(|_| {
        std::fs::remove_file(&path).unwrap();
        UnixListener::bind(&path).unwrap()
    });
    let (code, _, stderr) = run_kvmon(&["-M", "none", "-qmp", &arg]);
    assert_eq!(code, Some(1));
    assert_eq!(
        stderr,
        format!(
            "kvmon: -qmp {arg}: Failed to bind socket to {}: another process is listening on it\n",
            path.display()
        )
    );
    assert!(path.exists(), "the live socket is left alone");
}

#[test]
fn client_mode_connects_out_as_qemus_test_harness_expects() {
    let dir = TempDir::new();
    let path = dir.join("harness.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let chardev = format!("socket,id=mon,path={}", path.display());
    let mut kvmon = start(
        &[
            "-display",
            "none",
            "-vga",
            "none",
            "-M",
            "none",
            "-chardev",
            &chardev,
            "-mon",
            "chardev=mon,mode=control",
        ],
        TempDir::new(),
    );
    let mut client = Client::over(accept(&listener));
    client.greeting = client.line();
    assert!(client.greeting.starts_with(r#"{"QMP": {"version": "#));
    client.negotiate();
    assert_eq!(client.command(r#"{"execute":"quit"}"#), r#"{"return": {}}"#);
    assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
    assert!(path.exists(), "kvmon leaves the harness's socket alone");
}

#[test]
fn client_mode_reconnects_when_asked_to() {
    let dir = TempDir::new();
    let path = dir.join("later.sock");
    let chardev = format!("socket,id=mon,path={},reconnect-ms=100", path.display());
    let kvmon = start(
        &[
            "-M",
            "none",
            "-chardev",
            &chardev,
            "-mon",
            "chardev=mon,mode=control",
        ],
        TempDir::new(),
    );
    wait_until("the first connection failure to be reported", || {
        kvmon.stderr().contains("Unable to connect")
    });
    assert_eq!(
        kvmon.stderr(),
        format!("kvmon: Unable to connect character device mon: Failed to connect to '{}': No such file or directory\n", path.display())
    );
    let listener = UnixListener::bind(&path).unwrap();
    let mut first = Client::over(accept(&listener));
    assert!(first.line().starts_with(r#"{"QMP""#));
    drop(first);
    let mut second = Client::over(accept(&listener));
    assert!(
        second.line().starts_with(r#"{"QMP""#),
        "a fresh greeting after reconnecting"
    );
    second.negotiate();
}

#[test]
fn an_inherited_connected_socket_is_served_as_qemus_python_harness_passes_it() {
    for form in ["chardev", "qmp"] {
        let (ours, theirs) = UnixStream::pair().unwrap();
        let fd = theirs.as_raw_fd();
        let mut command = Command::new(kvmon_bin());
        command.args(["-display", "none", "-vga", "none", "-M", "none", "-S"]);
        if form == "chardev" {
            command.args([
                "-chardev",
                &format!("socket,id=mon,fd={fd}"),
                "-mon",
                "chardev=mon,mode=control",
            ]);
        } else {
            command.args(["-qmp", &format!("unix:fd={fd}")]);
        }
        inherit(&mut command, fd);
        let mut kvmon = Vmm::spawn_command(command, TempDir::new());
        drop(theirs);
        let mut client = Client::over(ours);
        client.greeting = client.line();
        client.negotiate();
        assert_eq!(
            client.command(r#"{"execute":"query-status"}"#),
            STATUS_PRELAUNCH
        );
        drop(client);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            kvmon.running(),
            "like QEMU, kvmon runs on when the peer goes"
        );
    }
}

#[test]
fn an_inherited_listening_socket_is_served_as_libvirt_passes_it() {
    let dir = TempDir::new();
    let path = dir.join("monitor.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let fd = listener.as_raw_fd();
    let mut command = Command::new(kvmon_bin());
    command.args([
        "-M",
        "none",
        "-S",
        "-chardev",
        &format!("socket,id=charmonitor,fd={fd},server=on,wait=off"),
    ]);
    command.args(["-mon", "chardev=charmonitor,id=monitor,mode=control"]);
    inherit(&mut command, fd);
    let mut kvmon = Vmm::spawn_command(command, TempDir::new());
    drop(listener);
    let mut client = Client::connect(&path);
    client.negotiate();
    assert_eq!(client.command(r#"{"execute":"quit"}"#), r#"{"return": {}}"#);
    assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
    assert!(!path.exists(), "as QEMU, kvmon removes the path it served");
}

#[test]
fn server_without_wait_off_waits_for_its_first_client() {
    let dir = TempDir::new();
    let path = dir.join("w.sock");
    let arg = format!("unix:{},server=on", path.display());
    let kvmon = start(&["-M", "none", "-S", "-qmp", &arg], TempDir::new());
    wait_until("the socket", || path.exists());
    wait_until("the waiting message", || !kvmon.stderr().is_empty());
    assert_eq!(
        kvmon.stderr(),
        format!("kvmon: -qmp {arg}: info: QEMU waiting for connection on: disconnected:unix:{},server=on\n", path.display())
    );
    let mut client = Client::connect(&path);
    client.negotiate();
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        STATUS_PRELAUNCH
    );
}

#[test]
fn a_tcp_monitor_serves_qmp() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let arg = format!("tcp:127.0.0.1:{port},server=on,wait=off");
    let _kvmon = start(&["-M", "none", "-S", "-qmp", &arg], TempDir::new());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stream = loop {
        match TcpStream::connect(("127.0.0.1", port)) {
            Ok(stream) => break stream,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            Err(error) => panic!("{error}"),
        }
    };
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = Vec::new();
    let mut byte = [0u8];
    while !greeting.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        greeting.push(byte[0]);
    }
    assert!(greeting.starts_with(br#"{"QMP": "#));
    stream
        .write_all(br#"{"execute":"qmp_capabilities"}{"execute":"query-status"}"#)
        .unwrap();
    let mut reply = vec![0u8; 256];
    let mut got = Vec::new();
    while got.windows(2).filter(|w| w == b"\r\n").count() < 2 {
        let n = stream.read(&mut reply).unwrap();
        got.extend_from_slice(&reply[..n]);
    }
    assert_eq!(
        String::from_utf8(got).unwrap(),
        format!("{{\"return\": {{}}}}\r\n{STATUS_PRELAUNCH}\r\n")
    );
}

#[test]
fn an_absurd_reconnect_delay_means_never_and_crashes_nothing() {
    let dir = TempDir::new();
    let chardev = format!(
        "socket,id=m,path={},reconnect=18446744073709551615",
        dir.join("nobody.sock").display()
    );
    let mut kvmon = Vmm::kvmon(&["-chardev", &chardev, "-mon", "chardev=m,mode=control"]);
    std::thread::sleep(Duration::from_millis(200));
    assert!(kvmon.running(), "{}", kvmon.stderr());
    assert!(kvmon
        .stderr()
        .contains("Unable to connect character device m: Failed to connect to"));
    kvmon.signal(libc::SIGTERM);
    assert_eq!(kvmon.wait(Duration::from_secs(5)).code(), Some(0));
}

#[test]
fn a_tcp_monitor_that_connects_out_reconnects() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let chardev = format!("socket,id=t,host=127.0.0.1,port={port},reconnect-ms=50");
    let kvmon = Vmm::kvmon(&["-chardev", &chardev, "-mon", "chardev=t,mode=control"]);
    // Nobody listens yet; kvmon keeps serving its other monitor meanwhile.
    let mut local = kvmon.negotiated();
    for _ in 0..20 {
        assert_eq!(
            local.command(r#"{"execute":"query-status"}"#),
            STATUS_PRELAUNCH
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let listener = TcpListener::bind(("127.0.0.1", port)).unwrap();
    listener.set_nonblocking(false).unwrap();
    let (mut stream, _) = listener.accept().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut greeting = [0u8; 8];
    stream.read_exact(&mut greeting).unwrap();
    assert_eq!(&greeting, br#"{"QMP": "#);
}

#[test]
fn an_inherited_descriptor_serves_one_monitor_only() {
    let (_ours, theirs) = UnixStream::pair().unwrap();
    let fd = theirs.as_raw_fd();
    let mut command = Command::new(kvmon_bin());
    let qmp = format!("unix:fd={fd}");
    command.args(["-M", "none", "-qmp", &qmp, "-qmp", &qmp]);
    inherit(&mut command, fd);
    let output = command.output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&output.stderr),
        format!("kvmon: -qmp {qmp}: File descriptor '{fd}' is used by another monitor\n")
    );
}

#[test]
fn a_listening_socket_passed_as_standard_input_survives_daemonizing() {
    let dir = TempDir::new();
    let path = dir.join("activated.sock");
    let listener = UnixListener::bind(&path).unwrap();
    let output = Command::new(kvmon_bin())
        .args([
            "-M",
            "none",
            "-S",
            "-qmp",
            "unix:fd=0,server=on,wait=off",
            "-daemonize",
        ])
        .stdin(Stdio::from(std::os::fd::OwnedFd::from(listener)))
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let mut client = Client::connect(&path);
    client.negotiate();
    assert_eq!(
        client.command(r#"{"execute":"query-status"}"#),
        STATUS_PRELAUNCH
    );
    assert_eq!(client.command(r#"{"execute":"quit"}"#), r#"{"return": {}}"#);
}
