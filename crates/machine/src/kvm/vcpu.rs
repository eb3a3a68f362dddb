//! A vCPU thread: runs KVM_RUN while the control lets it, and handles
//! each exit — port and MMIO accesses go to the buses; a triple fault, a
//! failed entry or an internal error go to the main loop as requests.

use std::sync::Arc;
use std::thread::JoinHandle;

use devices::{Bus, DeviceRequest};
use kvm_bindings::{
    kvm_run, KVM_INTERNAL_ERROR_EMULATION, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
};
use kvm_ioctls::{VcpuExit, VcpuFd};

use super::control::{self, Control, Next, Turn};
use super::registers::{self, Initial};
use super::requests::Requests;
use crate::Request;

/// What every vCPU thread shares.
#[derive(Debug, Clone)]
pub struct Shared {
    pub control: Arc<Control>,
    pub pio: Arc<Bus>,
    pub mmio: Arc<Bus>,
    pub requests: Requests,
    pub msrs: Arc<Vec<(u32, u64)>>,
}

/// What one exit means for the loop.
enum Outcome {
    Continue,
    /// A port or MMIO access, which KVM completes on the next KVM_RUN.
    Io,
    /// Stop running until a reset.
    Stuck,
}

pub fn spawn(
    index: u32,
    vcpu: VcpuFd,
    initial: Initial,
    shared: Shared,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("CPU {index}/KVM"))
        .spawn(move || run(index, vcpu, initial, shared))
}

fn run(index: u32, mut vcpu: VcpuFd, initial: Initial, shared: Shared) {
    set_signal_mask();
    control::enter(vcpu.get_kvm_run());
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    shared.control.started(index as usize, tid);
    let mut turn = Turn::new();
    let mut io_pending = false;
    loop {
        vcpu.set_kvm_immediate_exit(0);
        match shared.control.next(index as usize, &mut turn, io_pending) {
            Next::Exit => return,
            Next::Reset(entry) => {
                if let Err(error) = registers::reset(&vcpu, index, &initial, entry, &shared.msrs) {
                    log::error!("cannot put vCPU {index} in its boot state: {error}");
                    shared.requests.send(Request::InternalError { cpu: index });
                    shared.control.stuck(&mut turn);
                }
                continue;
            }
            Next::Nmi => {
                take_nmi(index, &vcpu);
                continue;
            }
            Next::Complete => vcpu.set_kvm_immediate_exit(1),
            Next::Run => {}
        }
        io_pending = false;
        match exit(index, &mut vcpu, &shared) {
            Outcome::Continue => {}
            Outcome::Io => io_pending = true,
            Outcome::Stuck => shared.control.stuck(&mut turn),
        }
    }
}

/// Injects an NMI if the local APIC takes one on LINT1 (unmasked, NMI
/// delivery), as QEMU does for `inject-nmi`; a CPU fresh from reset, whose
/// LINT1 is masked, does not.
fn take_nmi(index: u32, vcpu: &VcpuFd) {
    const LVT_LINT1: usize = 0x360;
    let lint1 = match vcpu.get_lapic() {
        Ok(lapic) => u32::from_le_bytes(std::array::from_fn(|i| lapic.regs[LVT_LINT1 + i] as u8)),
        Err(error) => {
            log::warn!("cannot read vCPU {index}'s local APIC: {error}");
            return;
        }
    };
    let masked = lint1 & (1 << 16) != 0;
    let nmi_delivery = (lint1 >> 8) & 0x7 == 0x4;
    if masked || !nmi_delivery {
        return;
    }
    if let Err(error) = vcpu.nmi() {
        log::warn!("cannot inject an NMI into vCPU {index}: {error}");
    }
}

fn exit(index: u32, vcpu: &mut VcpuFd, shared: &Shared) -> Outcome {
    let run: *const kvm_run = vcpu.get_kvm_run();
    let exit = match vcpu.run() {
        Ok(exit) => exit,
        // A kick (EINTR), or a request to retry.
        Err(error) if matches!(error.errno(), libc::EINTR | libc::EAGAIN) => {
            return Outcome::Continue
        }
        Err(error) => {
            log::error!("KVM_RUN failed on vCPU {index}: {error}");
            shared.requests.send(Request::InternalError { cpu: index });
            return Outcome::Stuck;
        }
    };
    match exit {
        VcpuExit::IoIn(port, data) => {
            data.fill(0xff);
            for access in data.chunks_mut(io_size(run)) {
                shared.pio.read(u64::from(port), access);
            }
            return Outcome::Io;
        }
        VcpuExit::IoOut(port, data) => {
            for access in data.chunks(io_size(run)) {
                if !shared.pio.write(u64::from(port), access) {
                    log::trace!("vCPU {index}: write of {access:x?} to unclaimed port {port:#x}");
                }
            }
            return Outcome::Io;
        }
        VcpuExit::MmioRead(address, data) => {
            data.fill(0);
            shared.mmio.read(address, data);
            return Outcome::Io;
        }
        VcpuExit::MmioWrite(address, data) => {
            shared.mmio.write(address, data);
            return Outcome::Io;
        }
        VcpuExit::Intr | VcpuExit::Hlt => {}
        VcpuExit::Shutdown => {
            // A triple fault: the machine resets, as a PC's does.
            log::info!("vCPU {index}: triple fault, resetting");
            shared.requests.send(Request::Device(DeviceRequest::Reset));
            return Outcome::Stuck;
        }
        VcpuExit::SystemEvent(kind, _) => {
            let request = match kind {
                KVM_SYSTEM_EVENT_SHUTDOWN => DeviceRequest::PowerOff,
                KVM_SYSTEM_EVENT_RESET => DeviceRequest::Reset,
                other => {
                    log::warn!("vCPU {index}: ignoring KVM system event {other}");
                    return Outcome::Continue;
                }
            };
            shared.requests.send(Request::Device(request));
            return Outcome::Stuck;
        }
        VcpuExit::FailEntry(reason, cpu) => {
            log::error!(
                "KVM: entry failed on vCPU {index} (host CPU {cpu}), hardware error {reason:#x}"
            );
            shared.requests.send(Request::InternalError { cpu: index });
            return Outcome::Stuck;
        }
        VcpuExit::InternalError => {
            let run = vcpu.get_kvm_run();
            // SAFETY: after KVM_EXIT_INTERNAL_ERROR the exit union holds
            // its `internal` member.
            let suberror = unsafe { run.__bindgen_anon_1.internal.suberror };
            let what = if suberror == KVM_INTERNAL_ERROR_EMULATION {
                " (emulation failure)"
            } else {
                ""
            };
            log::error!(
                "KVM internal error on vCPU {index}. Suberror: {suberror}{what}; {}",
                describe_state(vcpu)
            );
            shared.requests.send(Request::InternalError { cpu: index });
            return Outcome::Stuck;
        }
        other => {
            log::error!("vCPU {index}: unhandled KVM exit {other:?}");
            shared.requests.send(Request::InternalError { cpu: index });
            return Outcome::Stuck;
        }
    }
    Outcome::Continue
}

/// The size of each access of a port I/O exit: a string instruction
/// (`rep outsb`) comes as `count` accesses of `size` bytes in one exit.
fn io_size(run: *const kvm_run) -> usize {
    // SAFETY: `run` is the vCPU's kvm_run mapping, alive as long as the
    // vCPU; after a KVM_EXIT_IO the union holds `io`, and its `size` byte
    // lies outside the data area the exit's slice covers.
    let size = unsafe { std::ptr::addr_of!((*run).__bindgen_anon_1.io.size).read_volatile() };
    usize::from(size).max(1)
}

/// Where the vCPU stands, for the log line of a failure.
fn describe_state(vcpu: &VcpuFd) -> String {
    match (vcpu.get_regs(), vcpu.get_sregs()) {
        (Ok(regs), Ok(sregs)) => format!(
            "RIP={:#x} RSP={:#x} CS={:#x} CR0={:#x} CR3={:#x} CR4={:#x} EFER={:#x}",
            regs.rip, regs.rsp, sregs.cs.selector, sregs.cr0, sregs.cr3, sregs.cr4, sregs.efer
        ),
        _ => "its registers cannot be read".to_string(),
    }
}

/// The signals the main loop takes through its signalfd must never be
/// delivered to a vCPU thread; the kick must always be.
fn set_signal_mask() {
    // SAFETY: the sets are initialised by sigemptyset before use, and
    // pthread_sigmask changes only this thread's mask.
    unsafe {
        let mut blocked: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut blocked);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut blocked, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &blocked, std::ptr::null_mut());
        let mut kick: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut kick);
        libc::sigaddset(&mut kick, control::kick_signal());
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &kick, std::ptr::null_mut());
    }
}
