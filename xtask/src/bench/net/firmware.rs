//! The firmware half of `bench net`: kvmon and QEMU's microvm, both on
//! this host's KVM, the test guest's own driver at the NIC
//! (`net-bench tx|rx FRAMES BYTES`).  The tap is this host's, up, with no
//! address and no IPv6, so the host's kernel sends nothing on it; it is
//! made persistent before the VMMs open it, so that its counters outlast
//! a VMM that exits the moment its guest has finished.  A
//! packet socket on it sends the guest its go frame and, host to guest,
//! the frames: no more than a window ahead of what the VMM has read (the
//! tap's tx_packets), so the tap's queue never drops one.  Guest to host,
//! the frames counted are those the tap's rx_packets shows arrived.

use std::io::{BufRead, BufReader};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use kvmon_tests::QEMU_KVM;

use crate::bench::stats::{thread_times, vmm_cpu_between};
use crate::bench::throughput::{
    in_turn, start_test_guest, table, Figures, Mode, Units, MODERN_MMIO,
};

const TAP: &str = "kvbench0";
const MODES: [Mode; 4] = [
    Mode {
        label: "guest→host, 1514-byte frames",
        guest: "tx",
        bytes: 1514,
    },
    Mode {
        label: "guest→host, 60-byte frames",
        guest: "tx",
        bytes: 60,
    },
    Mode {
        label: "host→guest, 1514-byte frames",
        guest: "rx",
        bytes: 1514,
    },
    Mode {
        label: "host→guest, 60-byte frames",
        guest: "rx",
        bytes: 60,
    },
];
const UNITS: Units = Units {
    item: "frame",
    rate: true,
    bits: true,
};
/// Frames this host sends ahead of what the VMM has read: well inside the
/// tap's queue of 500.
const WINDOW: u64 = 256;
/// The guest's EtherType and address for the bench (firmware/src/virtio_net.rs).
const ETHERTYPE: [u8; 2] = [0x88, 0xb5];
const GUEST_MAC: [u8; 6] = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

pub fn part(quick: bool) -> Result<String, String> {
    let (runs, frames) = if quick { (1, 2000) } else { (5, 20000) };
    let _tap = PersistentTap::add(TAP)?;
    let mut ours = Vec::new();
    let mut theirs = Vec::new();
    for number in 0..runs {
        let (a, b) = round(frames, number % 2 == 1)?;
        println!("firmware, round {}: kvmon {a:?}\n  QEMU {b:?}", number + 1);
        ours.push(a);
        theirs.push(b);
    }
    Ok(format!(
        "Firmware test guest on this host's KVM, its own virtio-net driver without offloads, \
         {frames} frames per run, median of {runs} run(s) per VMM; a tap on this host, up, with \
         no address.\n\n{}",
        table(&MODES, &UNITS, &ours, &theirs)
    ))
}

/// Each mode's figures from one run of each VMM: (kvmon, QEMU).
fn round(frames: u64, qemu_first: bool) -> Result<(Vec<Figures>, Vec<Figures>), String> {
    let kvmon = crate::root().join("target/release/kvmon");
    let qemu = PathBuf::from("/usr/bin/qemu-system-x86_64");
    let qemu_machine: Vec<&str> = [QEMU_KVM, MODERN_MMIO].concat();
    let (mut ours, mut theirs) = (Vec::new(), Vec::new());
    for mode in &MODES {
        let (a, b) = in_turn(
            qemu_first,
            (&kvmon, &[][..]),
            (&qemu, &qemu_machine[..]),
            |(program, machine)| measure(program, machine, mode, frames),
        )?;
        ours.push(a);
        theirs.push(b);
    }
    Ok((ours, theirs))
}

fn measure(program: &Path, machine: &[&str], mode: &Mode, frames: u64) -> Result<Figures, String> {
    let netdev = format!("tap,id=n0,ifname={TAP},script=no,downscript=no");
    let append = format!("net-bench {} {frames} {}", mode.guest, mode.bytes);
    let (mut child, stdout) = start_test_guest(
        program,
        machine,
        "128",
        &append,
        &["-netdev", &netdev, "-device", "virtio-net-device,netdev=n0"],
    )?;
    let pid = child.id();
    let result = follow(BufReader::new(stdout), pid, mode, frames);
    // The guest powers off at the end; anything left is stopped.
    let _ = child.kill();
    let _ = child.wait();
    result.map_err(|e| format!("{}, {}: {e}", program.display(), mode.label))
}

/// Reads the guest's lines: on `ready` brings the tap up and sends go
/// frames until `begin`; then, host to guest, streams frames until `end`.
fn follow(serial: impl BufRead, pid: u32, mode: &Mode, frames: u64) -> Result<Figures, String> {
    let mut go = None;
    let mut begin = None;
    for line in serial.lines() {
        let line = line.map_err(|e| format!("cannot read the serial port: {e}"))?;
        if line.contains("net-bench ready") {
            let wire = Arc::new(Wire::up(TAP)?);
            go = Some(Sender::start(wire, b'G', 60, None));
        } else if line.contains("net-bench begin") {
            let wire = go.take().ok_or("no ready line before begin")?.stop();
            let sender = (mode.guest == "rx")
                .then(|| Sender::start(wire.clone(), b'D', mode.bytes as usize, Some(WINDOW)));
            begin = Some((Instant::now(), thread_times(pid), rx_packets(), sender));
        } else if line.contains("net-bench end") {
            let (started, threads, received_before, sender) =
                begin.take().ok_or("no begin line before end")?;
            let elapsed = started.elapsed();
            let cpu = vmm_cpu_between(&threads, &thread_times(pid))?;
            if let Some(sender) = sender {
                sender.stop();
            }
            // Guest to host, what arrived; host to guest, the guest counted.
            let delivered = match mode.guest {
                "tx" => rx_packets()? - received_before?,
                _ => frames,
            };
            return Ok(Figures::new(delivered, mode.bytes, elapsed, cpu));
        } else if line.contains("kvmon-test: error") {
            return Err(line);
        }
    }
    Err("the guest never finished".into())
}

fn statistic(name: &str) -> Result<u64, String> {
    let path = format!("/sys/class/net/{TAP}/statistics/{name}");
    std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {path}: {e}"))?
        .trim()
        .parse()
        .map_err(|e| format!("{path}: {e}"))
}

/// Frames the VMM wrote to the tap.
fn rx_packets() -> Result<u64, String> {
    statistic("rx_packets")
}

/// A tap that lives until this is dropped, whoever opens and closes it.
struct PersistentTap(&'static str);

impl PersistentTap {
    fn add(name: &'static str) -> Result<PersistentTap, String> {
        // One left by a bench that was killed.
        let _ = std::process::Command::new("ip")
            .args(["link", "del", name])
            .stderr(std::process::Stdio::null())
            .status();
        crate::process::run("ip", &["tuntap", "add", "dev", name, "mode", "tap"], &[])?;
        Ok(PersistentTap(name))
    }
}

impl Drop for PersistentTap {
    fn drop(&mut self) {
        let _ = crate::process::run("ip", &["link", "del", self.0], &[]);
    }
}

/// This host's end of the tap: a packet socket that sends on it.
struct Wire {
    socket: OwnedFd,
    address: libc::sockaddr_ll,
}

impl Wire {
    /// Brings the tap up, without IPv6, and opens a socket on it.
    fn up(name: &str) -> Result<Wire, String> {
        std::fs::write(format!("/proc/sys/net/ipv6/conf/{name}/disable_ipv6"), "1")
            .map_err(|e| format!("cannot turn IPv6 off on {name}: {e}"))?;
        crate::process::run("ip", &["link", "set", name, "up"], &[])?;
        let c_name = std::ffi::CString::new(name).map_err(|e| e.to_string())?;
        // SAFETY: if_nametoindex reads a NUL-terminated string.
        let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
        if index == 0 {
            return Err(format!("no interface {name}"));
        }
        // SAFETY: socket() with constant arguments; the result is checked.
        let fd = unsafe { libc::socket(libc::AF_PACKET, libc::SOCK_RAW, 0) };
        if fd < 0 {
            return Err(format!(
                "cannot open a packet socket: {}",
                std::io::Error::last_os_error()
            ));
        }
        // SAFETY: a fresh fd, owned from here on.
        let socket = unsafe { OwnedFd::from_raw_fd(fd) };
        // SAFETY: sockaddr_ll is plain data; all zeroes is valid.
        let mut address: libc::sockaddr_ll = unsafe { std::mem::zeroed() };
        address.sll_family = libc::AF_PACKET as u16;
        address.sll_ifindex = index as i32;
        address.sll_halen = 6;
        address.sll_addr[..6].copy_from_slice(&GUEST_MAC);
        Ok(Wire { socket, address })
    }

    fn send(&self, frame: &[u8]) {
        // SAFETY: sendto reads frame.len() bytes of `frame` and the address.
        unsafe {
            libc::sendto(
                self.socket.as_raw_fd(),
                frame.as_ptr().cast(),
                frame.len(),
                0,
                (&self.address as *const libc::sockaddr_ll).cast(),
                std::mem::size_of::<libc::sockaddr_ll>() as u32,
            )
        };
    }
}

/// A thread sending frames marked `marker` to the guest: go frames every
/// 10 ms, or data frames as fast as the window allows.
struct Sender {
    stop: Arc<AtomicBool>,
    thread: JoinHandle<Arc<Wire>>,
}

impl Sender {
    fn start(wire: Arc<Wire>, marker: u8, len: usize, window: Option<u64>) -> Sender {
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let mut frame = GUEST_MAC.to_vec();
        frame.extend_from_slice(&[0x02, 0, 0, 0, 0, 2]);
        frame.extend_from_slice(&ETHERTYPE);
        frame.push(marker);
        frame.resize(len.max(60), 0);
        let thread = std::thread::spawn(move || {
            let read_by_vmm = || statistic("tx_packets").unwrap_or(0);
            let start = read_by_vmm();
            let mut sent = 0;
            while !stopped.load(Ordering::Relaxed) {
                match window {
                    None => {
                        wire.send(&frame);
                        std::thread::sleep(Duration::from_millis(10));
                    }
                    Some(window) => {
                        let ahead = sent - (read_by_vmm() - start).min(sent);
                        for _ in ahead..window {
                            wire.send(&frame);
                            sent += 1;
                        }
                        if ahead >= window {
                            std::thread::sleep(Duration::from_micros(50));
                        }
                    }
                }
            }
            wire
        });
        Sender { stop, thread }
    }

    fn stop(self) -> Arc<Wire> {
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.join() {
            Ok(wire) => wire,
            Err(panic) => std::panic::resume_unwind(panic),
        }
    }
}
