//! A vCPU thread: runs KVM_RUN while the control lets it, and handles
//! each exit — port and MMIO accesses go to the buses; a triple fault, a
//! failed entry or an internal error go to the main loop as requests.

use std::sync::Arc;
use std::thread::JoinHandle;

use devices::{Bus, PowerRequest};
use kvm_bindings::{
    KVM_INTERNAL_ERROR_EMULATION, KVM_SYSTEM_EVENT_RESET, KVM_SYSTEM_EVENT_SHUTDOWN,
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
    block_process_signals();
    control::enter(vcpu.get_kvm_run());
    // SAFETY: gettid has no preconditions.
    let tid = unsafe { libc::gettid() };
    shared.control.started(index as usize, tid);
    let mut turn = Turn::new();
    let mut io_pending = false;
    loop {
        vcpu.set_kvm_immediate_exit(0);
        let reset_to = match shared.control.next(&mut turn, io_pending) {
            Next::Exit => return,
            Next::Complete => {
                vcpu.set_kvm_immediate_exit(1);
                io_pending = false;
                match exit(index, &mut vcpu, &shared) {
                    Outcome::Continue => {}
                    Outcome::Io => io_pending = true,
                    Outcome::Stuck => shared.control.stuck(&mut turn),
                }
                continue;
            }
            Next::Run { reset_to } => reset_to,
        };
        if let Some(entry) = reset_to {
            if let Err(error) = registers::reset(&vcpu, index, &initial, entry, &shared.msrs) {
                log::error!("cannot put vCPU {index} in its boot state: {error}");
                fail(index, &shared, &mut turn);
                continue;
            }
        }
        if shared.control.take_nmi(index as usize) {
            if let Err(error) = vcpu.nmi() {
                log::warn!("cannot inject an NMI into vCPU {index}: {error}");
            }
        }
        io_pending = false;
        match exit(index, &mut vcpu, &shared) {
            Outcome::Continue => {}
            Outcome::Io => io_pending = true,
            Outcome::Stuck => shared.control.stuck(&mut turn),
        }
    }
}

fn fail(index: u32, shared: &Shared, turn: &mut Turn) {
    shared.requests.send(Request::InternalError { cpu: index });
    shared.control.stuck(turn);
}

fn exit(index: u32, vcpu: &mut VcpuFd, shared: &Shared) -> Outcome {
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
            shared.pio.read(u64::from(port), data);
            return Outcome::Io;
        }
        VcpuExit::IoOut(port, data) => {
            shared.pio.write(u64::from(port), data);
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
            shared.requests.send(Request::Power(PowerRequest::Reset));
            return Outcome::Stuck;
        }
        VcpuExit::SystemEvent(kind, _) => {
            let request = match kind {
                KVM_SYSTEM_EVENT_SHUTDOWN => PowerRequest::PowerOff,
                KVM_SYSTEM_EVENT_RESET => PowerRequest::Reset,
                other => {
                    log::warn!("vCPU {index}: ignoring KVM system event {other}");
                    return Outcome::Continue;
                }
            };
            shared.requests.send(Request::Power(request));
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
/// delivered to a vCPU thread.
fn block_process_signals() {
    // SAFETY: the set is initialised by sigemptyset before use, and
    // pthread_sigmask changes only this thread's mask.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        for signal in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
            libc::sigaddset(&mut set, signal);
        }
        libc::pthread_sigmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
    }
}
