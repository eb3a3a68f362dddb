//! Many clients and hostile ones: none can stop kvmon, starve the others
//! or make it grow without bound.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use kvmon_tests::{Client, Vmm};

const STATUS: &str = r#"{"execute":"query-status"}"#;

#[test]
fn a_thousand_concurrent_clients_each_get_every_event() {
    monitor::raise_fd_limit();
    let kvmon = Vmm::kvmon(&[]);
    let mut clients: Vec<Client> = (0..1000).map(|_| kvmon.negotiated()).collect();
    let mut control = kvmon.negotiated();
    assert_eq!(
        control.command(r#"{"execute":"cont"}"#),
        r#"{"return": {}}"#
    );
    assert_eq!(
        control.command(r#"{"execute":"stop"}"#),
        r#"{"return": {}}"#
    );
    let resume = control.events[0].clone();
    let stop = control.events[1].clone();
    for client in &mut clients {
        assert_eq!(client.event(), resume);
        assert_eq!(client.event(), stop);
    }
    for client in &mut clients {
        assert_eq!(
            client.command(STATUS),
            r#"{"return": {"status": "paused", "running": false}}"#
        );
    }
}

#[test]
fn a_client_that_stops_reading_is_dropped_and_the_rest_carry_on() {
    let kvmon = Vmm::kvmon(&[]);
    let mut sleeper = kvmon.negotiated();
    let mut control = kvmon.negotiated();
    // Each cont/stop pair makes two events of 84 bytes; 16 MiB of them
    // queued for the sleeper is the bound.
    let batch = r#"{"execute":"cont"}{"execute":"stop"}"#.repeat(500);
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    for _ in 0..240 {
        let sent = Instant::now();
        control.send(&batch);
        for _ in 0..1000 {
            control.reply();
        }
        slowest = slowest.max(sent.elapsed());
        control.events.clear();
    }
    assert!(started.elapsed() < Duration::from_secs(120));
    // The controller never waited on the sleeper: each batch of 1000
    // commands came back while the sleeper's output piled up.
    eprintln!("slowest batch of 1000 commands: {slowest:?}");
    assert!(
        kvmon.stderr().contains("it is not reading its output"),
        "{}",
        kvmon.stderr()
    );
    // The sleeper gets what was written before it was dropped, then EOF.
    let mut received = 0;
    while let Some(line) = sleeper.try_line(Duration::from_secs(10)) {
        assert!(line.starts_with(r#"{"timestamp": "#), "{line}");
        received += 1;
    }
    assert!(sleeper.at_eof(Duration::ZERO), "dropped, not just slow");
    assert!(
        received > 0,
        "the sleeper was a negotiated client and got events first"
    );
    let rss = kvmon.rss_kib();
    assert!(
        rss < 64 * 1024,
        "kvmon holds {rss} KiB after dropping the client"
    );
    assert_eq!(
        control.command(STATUS),
        r#"{"return": {"status": "paused", "running": false}}"#
    );
}

#[test]
fn clients_vanishing_mid_command_leave_kvmon_serving() {
    monitor::raise_fd_limit();
    let mut kvmon = Vmm::kvmon(&[]);
    let before = kvmon.rss_kib();
    for n in 0..1000 {
        let mut stream = UnixStream::connect(&kvmon.qmp).unwrap();
        let half = match n % 4 {
            0 => &b""[..],
            1 => br#"{"execute":"qmp_capa"#,
            2 => br#"{"execute":"qmp_capabilities"}{"execute":"query-qmp-schema"}{"execute":"query-st"#,
            _ => br#"{"execute":"qmp_capabilities"}{"execute":"cont"}{"execute":"stop"}"#,
        };
        let _ = stream.write_all(half);
        drop(stream);
    }
    let mut client = kvmon.negotiated();
    assert!(client
        .command(STATUS)
        .starts_with(r#"{"return": {"status": "#));
    assert!(kvmon.running());
    let after = kvmon.rss_kib();
    assert!(
        after < before + 16 * 1024,
        "RSS grew from {before} to {after} KiB"
    );
}

#[test]
fn half_a_command_holds_up_nobody_else() {
    let kvmon = Vmm::kvmon(&[]);
    let mut waiting = kvmon.negotiated();
    waiting.send(r#"{"execute": "query-st"#);
    let mut busy = kvmon.negotiated();
    for _ in 0..1000 {
        assert_eq!(
            busy.command(STATUS),
            r#"{"return": {"status": "prelaunch", "running": false}}"#
        );
    }
    assert_eq!(waiting.try_line(Duration::from_millis(100)), None);
    waiting.send(r#"atus", "id": 1}"#);
    assert_eq!(
        waiting.line(),
        r#"{"return": {"status": "prelaunch", "running": false}, "id": 1}"#
    );
}

#[test]
fn random_bytes_never_break_the_connection_or_kvmon() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    // A simple generator: the same garbage every run.
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let mut garbage = Vec::with_capacity(1 << 20);
    for _ in 0..(1 << 20) {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        let byte = (state >> 32) as u8;
        // Mostly JSON's own characters, so the parser goes deep, and any byte.
        let bytes = b"{}[]:,\"'\\0123456789.-eEtrufalsn ";
        garbage.push(if byte.is_multiple_of(4) {
            byte
        } else {
            bytes[byte as usize % bytes.len()]
        });
    }
    // Write from another thread: the garbage provokes replies, and kvmon
    // stops reading a client that does not read them.
    let mut writer = client.stream.try_clone().unwrap();
    let sender = std::thread::spawn(move || {
        writer.write_all(&garbage).unwrap();
        writer
            .write_all(b"\x01\n{\"execute\":\"query-status\",\"id\":\"alive\"}")
            .unwrap();
    });
    loop {
        let line = client.line();
        if line.contains(r#""id": "alive""#) {
            break;
        }
        assert!(
            line.starts_with(r#"{"error": "#)
                || line.starts_with(r#"{"return": "#)
                || line.starts_with(r#"{"id": "#),
            "{line}"
        );
    }
    sender.join().unwrap();
    let mut other = kvmon.negotiated();
    assert!(other.command(STATUS).starts_with(r#"{"return": "#));
}

#[test]
fn a_client_that_sends_then_hangs_up_gets_its_answer_and_then_the_end() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    client.send(r#"{"execute":"query-status","id":"last"}"#);
    client.stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(
        client.line(),
        r#"{"return": {"status": "prelaunch", "running": false}, "id": "last"}"#
    );
    assert!(
        client.at_eof(Duration::from_secs(5)),
        "kvmon closes once the client is done"
    );
}

#[test]
fn clients_that_hang_up_leave_no_descriptor_behind() {
    let kvmon = Vmm::kvmon(&[]);
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", kvmon.pid()))
            .unwrap()
            .count()
    };
    // Once a command has run, kvmon has finished starting (its signalfd
    // comes after the socket); this client stays for the count.
    let mut first = kvmon.negotiated();
    assert!(first.command(STATUS).starts_with(r#"{"return": "#));
    let baseline = open_fds();
    // An unfinished command gets no reply, so kvmon learns of the hang-up
    // only by reading to the end of file.
    for _ in 0..500 {
        let mut client = kvmon.negotiated();
        client.send(r#"{"execute":"query-sta"#);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while open_fds() > baseline {
        assert!(
            Instant::now() < deadline,
            "{} descriptors open, {baseline} before",
            open_fds()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes `message` over and over from another thread until kvmon stops
/// taking it (or `limit` bytes), and returns how much it took.
fn flood(client: &Client, message: &[u8], limit: usize) -> std::thread::JoinHandle<usize> {
    let mut writer = client.stream.try_clone().unwrap();
    writer
        .set_write_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let message = message.to_vec();
    std::thread::spawn(move || {
        let mut written = 0;
        while written < limit && writer.write_all(&message).is_ok() {
            written += message.len();
        }
        written
    })
}

#[test]
fn an_out_of_band_flood_from_a_client_that_never_reads_is_bounded() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.connect();
    client.negotiate_oob();
    let batch =
        r#"{"exec-oob":"query-yank","id":"a-long-id-to-make-the-replies-bigger"}"#.repeat(1000);
    let written = flood(&client, batch.as_bytes(), 1 << 30).join().unwrap();
    // kvmon stopped reading once 16 MiB of replies were waiting.
    assert!(written < 200 << 20, "kvmon took {written} bytes");
    let rss = kvmon.rss_kib();
    assert!(rss < 96 * 1024, "{rss} KiB");
    let mut other = kvmon.negotiated();
    assert!(other.command(STATUS).starts_with(r#"{"return": "#));
}

#[test]
fn a_stalled_client_cannot_make_kvmon_hold_many_huge_requests() {
    let kvmon = Vmm::kvmon(&[]);
    let mut client = kvmon.negotiated();
    // Stall the client with one reply bigger than kvmon lets pile up, so
    // that nothing is queued yet: only the byte bound can stop what follows.
    let echo = format!(
        r#"{{"execute":"query-status","id":"{}"}}"#,
        "y".repeat(4 << 20)
    );
    client.send(&echo);
    std::thread::sleep(Duration::from_millis(200));
    let huge = format!(
        r#"{{"execute":"query-status","id":"{}"}}"#,
        "x".repeat(8 << 20)
    );
    let written = flood(&client, huge.as_bytes(), 400 << 20).join().unwrap();
    assert!(written < 200 << 20, "kvmon took {written} bytes");
    let rss = kvmon.rss_kib();
    // One message being parsed (at most 64 MiB) and about 1 MiB of waiting
    // ones, not fifty 8 MiB requests.
    assert!(rss < 160 * 1024, "{rss} KiB");
}

#[test]
fn a_command_right_after_a_passed_descriptor_is_answered() {
    // qemu.qmp sends one blank byte carrying a descriptor (SCM_RIGHTS), then
    // the command that uses it; a read stops at the descriptor's byte.
    let kvmon = Vmm::kvmon(&[]);
    for _ in 0..50 {
        let mut client = kvmon.negotiated();
        let passed = std::fs::File::open("/dev/null").unwrap();
        send_with_fd(&client.stream, b" ", passed.as_raw_fd());
        client.send(STATUS);
        assert_eq!(
            client.line(),
            r#"{"return": {"status": "prelaunch", "running": false}}"#
        );
    }
}

fn send_with_fd(stream: &UnixStream, byte: &[u8], fd: i32) {
    let mut iov = libc::iovec {
        iov_base: byte.as_ptr() as *mut libc::c_void,
        iov_len: byte.len(),
    };
    // SAFETY: CMSG_SPACE is arithmetic on a constant.
    let space = unsafe { libc::CMSG_SPACE(std::mem::size_of::<i32>() as u32) } as usize;
    let mut control = vec![0u8; space];
    // SAFETY: an all-zero msghdr is valid; every pointer set below outlives sendmsg.
    let mut message: libc::msghdr = unsafe { std::mem::zeroed() };
    message.msg_iov = &mut iov;
    message.msg_iovlen = 1;
    message.msg_control = control.as_mut_ptr().cast();
    message.msg_controllen = space;
    // SAFETY: the control buffer holds one cmsg with room for one fd.
    unsafe {
        let header = libc::CMSG_FIRSTHDR(&message);
        (*header).cmsg_level = libc::SOL_SOCKET;
        (*header).cmsg_type = libc::SCM_RIGHTS;
        (*header).cmsg_len = libc::CMSG_LEN(std::mem::size_of::<i32>() as u32) as usize;
        std::ptr::write_unaligned(libc::CMSG_DATA(header).cast::<i32>(), fd);
        assert_eq!(
            libc::sendmsg(stream.as_raw_fd(), &message, 0),
            byte.len() as isize
        );
    }
}

#[test]
fn running_out_of_descriptors_is_logged_once_and_recovered_from() {
    use std::os::unix::process::CommandExt;
    let dir = kvmon_tests::TempDir::new();
    let socket = dir.join("few.sock");
    let qmp = format!("unix:{},server=on,wait=off", socket.display());
    let mut command = std::process::Command::new(kvmon_tests::kvmon_bin());
    command.args(["-machine", "none", "-S", "-qmp", &qmp]);
    // SAFETY: setrlimit is async-signal-safe and touches only its argument.
    unsafe {
        command.pre_exec(|| {
            let limit = libc::rlimit {
                rlim_cur: 24,
                rlim_max: 24,
            };
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
            Ok(())
        });
    }
    let mut kvmon = Vmm::spawn_command(command, dir);
    kvmon.qmp = socket;
    // Not wait_for_socket(): its probe connection would free a descriptor
    // when it closes, and end the shortage early.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !kvmon.qmp.exists() {
        assert!(Instant::now() < deadline, "no socket");
        std::thread::sleep(Duration::from_millis(5));
    }
    // More clients than descriptors: the rest wait in the listen backlog.
    let mut streams: Vec<UnixStream> = (0..40)
        .map(|_| UnixStream::connect(&kvmon.qmp).unwrap())
        .collect();
    std::thread::sleep(Duration::from_millis(500));
    let warnings = kvmon.stderr().matches("cannot accept a QMP client").count();
    assert_eq!(warnings, 1, "{}", kvmon.stderr());
    // Room again: the waiting clients are served.
    streams.drain(..30);
    let mut last = Client::over(streams.pop().unwrap());
    assert!(last.line().starts_with(r#"{"QMP": "#));
    assert!(kvmon.running());
}
