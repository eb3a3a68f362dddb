//! Booting a KVM guest from the command line: what the guest is given
//! (memory, vCPUs, the kernel, its serial port) and the one-line errors
//! for what cannot be booted.

// In tests a failed unwrap is a failed test.
#![allow(clippy::unwrap_used)]

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::time::{Duration, Instant};

use kvmon_tests::{kvmon_bin, run_kvmon, test_guest, TempDir, Vmm};

#[test]
fn what_cannot_be_booted_is_one_error_line_and_exit_status_1() {
    let dir = TempDir::new();
    let corrupt = dir.join("corrupt.elf");
    let mut bytes = b"\x7fELF".to_vec();
    bytes.extend((0..3000u32).map(|i| (i * 7919 % 251) as u8));
    std::fs::write(&corrupt, bytes).unwrap();
    let text = dir.join("notes.txt");
    std::fs::write(&text, "not a kernel\n").unwrap();
    let truncated = dir.join("truncated.elf");
    std::fs::write(&truncated, &std::fs::read(test_guest()).unwrap()[..600]).unwrap();
    let fifo = dir.join("kernel.fifo");
    assert!(std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success());
    let guest = test_guest();
    let guest = guest.to_str().unwrap();
    let cases: Vec<(Vec<&str>, String)> = vec![
        (
            vec!["-kernel", fifo.to_str().unwrap()],
            format!(
                "kvmon: could not open kernel file '{}': it is not a regular file",
                fifo.display()
            ),
        ),
        (
            vec!["-kernel", guest, "-initrd", "/dev/zero"],
            "kvmon: could not open initrd '/dev/zero': it is not a regular file".to_string(),
        ),
        (
            vec!["-kernel", "/nonexistent/vmlinux"],
            "kvmon: could not open kernel file '/nonexistent/vmlinux': No such file or directory"
                .to_string(),
        ),
        (
            vec!["-kernel", corrupt.to_str().unwrap()],
            format!("kvmon: {}: cannot load the kernel: ", corrupt.display()),
        ),
        (
            vec!["-kernel", truncated.to_str().unwrap()],
            format!("kvmon: {}: cannot load the kernel: ", truncated.display()),
        ),
        (
            vec!["-kernel", text.to_str().unwrap()],
            format!(
                "kvmon: {}: not a kernel kvmon can boot (a PVH or 64-bit ELF, or a bzImage)",
                text.display()
            ),
        ),
        (
            vec!["-kernel", guest, "-initrd", "/nonexistent/initrd"],
            "kvmon: could not open initrd '/nonexistent/initrd': No such file or directory"
                .to_string(),
        ),
        (
            vec!["-append", "console=ttyS0"],
            "kvmon: -append console=ttyS0: -append only allowed with -kernel option".to_string(),
        ),
        (
            vec!["-m", "lots"],
            "kvmon: -m lots: Parameter 'size' expects a non-negative number below 2^64".to_string(),
        ),
        (
            vec!["-smp", "0"],
            "kvmon: Invalid CPU topology: CPU topology parameters must be greater than zero"
                .to_string(),
        ),
        (
            vec!["-accel", "tcg"],
            "kvmon: kvmon runs guest code only with KVM; without it, only '-machine none' can run"
                .to_string(),
        ),
        (
            vec!["-M", "microvm,pit=off"],
            "kvmon: Property 'microvm-machine.pit' is not supported by kvmon".to_string(),
        ),
    ];
    for (args, expected) in cases {
        let (code, _, stderr) = run_kvmon(&args);
        assert_eq!(code, Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with(&expected),
            "{args:?}:\n{stderr}\nwanted: {expected}"
        );
        assert!(!stderr.contains("os error"), "{stderr}");
    }
}

#[test]
fn the_guest_gets_the_memory_and_vcpus_asked_for() {
    // -m 3.5G crosses the 3 GiB MMIO hole: the rest is above 4 GiB.
    let vmm = Vmm::scenario("idle", &["-m", "3.5G", "-smp", "3"]);
    let mut client = vmm.negotiated();
    assert_eq!(client.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    // The e820 map leaves out only the EBDA and BIOS area below 1 MiB.
    let ram = (7u64 << 29) - (0x100000 - 0x9fc00);
    vmm.wait_for_serial(&format!(
        "kvmon-test: start scenario=idle cpu=0 ram={ram} acpi=true power-button=true"
    ));
    let reply = client.command(r#"{"execute":"query-cpus-fast"}"#);
    assert_eq!(reply.matches("\"cpu-index\"").count(), 3, "{reply}");
}

/// Starts kvmon with exactly `args`, plus a QMP socket, in a fresh directory.
fn start(args: &[&str]) -> Vmm {
    let dir = TempDir::new();
    let qmp = format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display());
    let mut all = vec!["-qmp", &qmp];
    all.extend_from_slice(args);
    let mut vmm = Vmm::spawn(&kvmon_bin(), &all, dir);
    vmm.wait_for_socket();
    vmm
}

#[test]
fn serial_stdio_and_nographic_print_on_standard_output() {
    for args in [&["-serial", "stdio"][..], &["-nographic"][..]] {
        let vmm = start(args);
        vmm.wait_for_output("stdout", "kvmon firmware 0.1.0: the machine is up.\r\n", 1);
    }
}

#[test]
fn serial_null_and_none_boot_without_output() {
    for serial in ["null", "none"] {
        let mut vmm = start(&["-serial", serial]);
        let mut client = vmm.negotiated();
        assert_eq!(
            client.command(r#"{"execute":"query-status"}"#),
            r#"{"return": {"status": "running", "running": true}}"#
        );
        // The firmware still powers off, with or without a console.
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(
            client.command(r#"{"execute":"system_powerdown"}"#),
            r#"{"return": {}}"#
        );
        assert_eq!(
            vmm.wait(Duration::from_secs(10)).code(),
            Some(0),
            "{serial}"
        );
        assert_eq!(std::fs::read_to_string(vmm.dir.join("stdout")).unwrap(), "");
    }
}

fn read_until(stream: &mut UnixStream, needle: &str) -> String {
    stream
        .set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut text = Vec::new();
    let mut buffer = [0u8; 4096];
    while !String::from_utf8_lossy(&text).contains(needle) {
        assert!(
            Instant::now() < deadline,
            "no {needle:?}: {:?}",
            String::from_utf8_lossy(&text)
        );
        if let Ok(n) = stream.read(&mut buffer) {
            text.extend_from_slice(&buffer[..n]);
        }
    }
    String::from_utf8_lossy(&text).into_owned()
}

fn connect(path: &std::path::Path) -> UnixStream {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match UnixStream::connect(path) {
            Ok(stream) => return stream,
            Err(error) => {
                assert!(
                    Instant::now() < deadline,
                    "no socket at {}: {error}",
                    path.display()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
}

#[test]
fn a_serial_socket_carries_output_and_input() {
    let dir = TempDir::new();
    let socket = dir.join("serial.sock");
    let serial = format!("unix:{},server=on,wait=off", socket.display());
    let guest = test_guest();
    let qmp = format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display());
    let args = [
        "-S",
        "-qmp",
        &qmp,
        "-serial",
        &serial,
        "-kernel",
        guest.to_str().unwrap(),
        "-append",
        "echo",
    ];
    let mut vmm = Vmm::spawn(&kvmon_bin(), &args, dir);
    vmm.wait_for_socket();
    let mut console = connect(&socket);
    let mut client = vmm.negotiated();
    assert_eq!(client.command(r#"{"execute":"cont"}"#), r#"{"return": {}}"#);
    read_until(&mut console, "kvmon-test: start scenario=echo");
    console.write_all(b"hi").unwrap();
    read_until(
        &mut console,
        "kvmon-test: got 0x68\r\nkvmon-test: got 0x69\r\n",
    );
    // The next client gets the console once this one leaves.
    drop(console);
    let mut second = connect(&vmm.dir.join("serial.sock"));
    second.write_all(b"!").unwrap();
    read_until(&mut second, "kvmon-test: got 0x21");
}

#[test]
fn serial_chardev_and_waiting_for_the_console_client() {
    let dir = TempDir::new();
    let socket = dir.join("console.sock");
    let chardev = format!("socket,id=con,path={},server=on", socket.display());
    let qmp = format!("unix:{},server=on,wait=off", dir.join("qmp.sock").display());
    // wait=on (the default): kvmon starts once the console has a client.
    let mut vmm = Vmm::spawn(
        &kvmon_bin(),
        &["-qmp", &qmp, "-chardev", &chardev, "-serial", "chardev:con"],
        dir,
    );
    let mut console = connect(&socket);
    let banner = read_until(&mut console, "kvmon firmware 0.1.0: the machine is up.");
    assert!(
        banner.starts_with("kvmon firmware"),
        "nothing was lost: {banner:?}"
    );
    vmm.wait_for_socket();
    assert!(
        vmm.stderr().contains(&format!(
            "QEMU waiting for connection on: disconnected:unix:{},server=on",
            socket.display()
        )),
        "{}",
        vmm.stderr()
    );
}
