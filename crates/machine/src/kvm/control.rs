//! Pausing, resuming, resetting and interrupting the vCPU threads from the
//! main loop.  A vCPU runs guest code only while the control says run; to
//! get it out of KVM_RUN the main loop sets the state, then kicks the
//! thread with a signal whose handler sets the thread's `immediate_exit`,
//! so a kick that lands just before KVM_RUN is not lost.  `pause` returns
//! once every vCPU has parked.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};

use kvm_bindings::kvm_run;
use vmm_sys_util::signal::{register_signal_handler, SIGRTMIN};

use super::registers::Entry;

thread_local! {
    /// This vCPU thread's `kvm_run`, for the kick handler.
    static KVM_RUN: Cell<*mut kvm_run> = const { Cell::new(std::ptr::null_mut()) };
}

/// The signal that kicks a vCPU out of the guest.
pub fn kick_signal() -> libc::c_int {
    SIGRTMIN()
}

extern "C" fn on_kick(_: libc::c_int, _: *mut libc::siginfo_t, _: *mut libc::c_void) {
    let run = KVM_RUN.with(Cell::get);
    if !run.is_null() {
        // SAFETY: the pointer is this thread's own kvm_run mapping, set by
        // `enter` before any kick can reach the thread and valid for the
        // thread's life; a byte store is async-signal-safe.
        unsafe { std::ptr::addr_of_mut!((*run).immediate_exit).write_volatile(1) };
    }
}

/// Installs the kick handler (once per process).
pub fn install_kick_handler() -> Result<(), String> {
    register_signal_handler(kick_signal(), on_kick)
        .map_err(|e| format!("cannot install the vCPU kick handler: {e}"))
}

/// Registers this thread's `kvm_run` for the kick handler.
pub fn enter(run: *mut kvm_run) {
    KVM_RUN.with(|cell| cell.set(run));
}

#[derive(Debug)]
struct State {
    run: bool,
    exit: bool,
    /// Bumped by each reset; a vCPU that sees a new epoch reloads its boot
    /// state, parked or not.
    epoch: u64,
    entry: Entry,
    /// vCPUs that have reloaded their boot state for `epoch`.
    reset_done: usize,
    /// Bumped by each resume: a vCPU that failed tries again.
    resumes: u64,
    parked: usize,
    /// (pthread, Linux thread id) of each started vCPU.
    threads: Vec<Option<(libc::pthread_t, i32)>>,
}

/// What a vCPU thread keeps between turns.
#[derive(Debug)]
pub struct Turn {
    epoch: Option<u64>,
    parked: bool,
    /// Set after a failure: the vCPU stays out of the guest until the next
    /// reset or resume (epoch, resumes).
    stuck_in: Option<(u64, u64)>,
}

impl Turn {
    pub fn new() -> Turn {
        Turn {
            epoch: None,
            parked: false,
            stuck_in: None,
        }
    }
}

/// What the vCPU should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Next {
    Run,
    /// Load the boot state (`entry` for the boot CPU), then ask again.
    Reset(Entry),
    /// Take an NMI (if the local APIC accepts one), then ask again.
    Nmi,
    /// Re-enter KVM_RUN with `immediate_exit` set, so that KVM completes
    /// the I/O of the last exit, before the vCPU parks or resets: KVM keeps
    /// that state where a reset or a migration cannot see it.
    Complete,
    Exit,
}

#[derive(Debug)]
pub struct Control {
    state: Mutex<State>,
    changed: Condvar,
    nmi: Vec<AtomicBool>,
}

impl Control {
    pub fn new(vcpus: usize, entry: Entry) -> Control {
        Control {
            state: Mutex::new(State {
                run: false,
                exit: false,
                epoch: 0,
                entry,
                reset_done: 0,
                resumes: 0,
                parked: 0,
                threads: vec![None; vcpus],
            }),
            changed: Condvar::new(),
            nmi: (0..vcpus).map(|_| AtomicBool::new(false)).collect(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn wait<'a>(&self, state: MutexGuard<'a, State>) -> MutexGuard<'a, State> {
        self.changed
            .wait(state)
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called by vCPU `index`'s thread when it starts.
    pub fn started(&self, index: usize, tid: i32) {
        // SAFETY: pthread_self has no preconditions.
        let thread = unsafe { libc::pthread_self() };
        self.lock().threads[index] = Some((thread, tid));
        self.changed.notify_all();
    }

    /// The Linux thread id of each vCPU.
    pub fn thread_ids(&self) -> Vec<i32> {
        self.lock()
            .threads
            .iter()
            .map(|t| t.map_or(0, |(_, tid)| tid))
            .collect()
    }

    /// What vCPU `index` does next: blocks while it may not run.
    /// `io_pending`: the last exit's I/O is not complete yet, so the vCPU
    /// must complete it before it parks or resets.
    pub fn next(&self, index: usize, turn: &mut Turn, io_pending: bool) -> Next {
        let mut state = self.lock();
        loop {
            if state.exit {
                return Next::Exit;
            }
            if turn.epoch != Some(state.epoch) {
                if io_pending {
                    return Next::Complete;
                }
                turn.epoch = Some(state.epoch);
                turn.stuck_in = None;
                state.reset_done += 1;
                self.changed.notify_all();
                return Next::Reset(state.entry);
            }
            if self.nmi[index].swap(false, Ordering::SeqCst) {
                return Next::Nmi;
            }
            let stuck = turn.stuck_in == Some((state.epoch, state.resumes));
            if state.run && !stuck {
                break;
            }
            if io_pending {
                return Next::Complete;
            }
            if !turn.parked {
                turn.parked = true;
                state.parked += 1;
                self.changed.notify_all();
            }
            state = self.wait(state);
        }
        if turn.parked {
            turn.parked = false;
            state.parked -= 1;
        }
        Next::Run
    }

    /// The vCPU cannot go on (KVM failed it, or the guest triple-faulted):
    /// it stays out of the guest until the next reset or resume.
    pub fn stuck(&self, turn: &mut Turn) {
        let state = self.lock();
        turn.stuck_in = Some((state.epoch, state.resumes));
    }

    /// Returns once every vCPU is out of the guest and parked.
    pub fn pause(&self) {
        let mut state = self.lock();
        state.run = false;
        self.kick_all(&state);
        let vcpus = state.threads.len();
        while state.parked < vcpus {
            state = self.wait(state);
        }
    }

    pub fn resume(&self) {
        let mut state = self.lock();
        state.run = true;
        state.resumes += 1;
        drop(state);
        self.changed.notify_all();
    }

    /// Every vCPU reloads its boot state (`entry` for the boot CPU), now,
    /// while paused; NMIs not yet taken are dropped, as a CPU reset does.
    pub fn reset(&self, entry: Entry) {
        for pending in &self.nmi {
            pending.store(false, Ordering::SeqCst);
        }
        let mut state = self.lock();
        state.epoch += 1;
        state.entry = entry;
        state.reset_done = 0;
        self.changed.notify_all();
        let vcpus = state.threads.len();
        while state.reset_done < vcpus && !state.exit {
            state = self.wait(state);
        }
    }

    /// Offers every vCPU an NMI, which it takes at once, running or not,
    /// if its local APIC accepts one.
    pub fn inject_nmi(&self) {
        for pending in &self.nmi {
            pending.store(true, Ordering::SeqCst);
        }
        let state = self.lock();
        self.kick_all(&state);
        drop(state);
        self.changed.notify_all();
    }

    /// Ends every vCPU thread.
    pub fn exit(&self) {
        let mut state = self.lock();
        state.exit = true;
        self.kick_all(&state);
        drop(state);
        self.changed.notify_all();
    }

    fn kick_all(&self, state: &State) {
        for (thread, _) in state.threads.iter().flatten() {
            // SAFETY: the thread is a live vCPU thread (threads are joined
            // only after `exit`), and the kick handler is installed.
            unsafe { libc::pthread_kill(*thread, kick_signal()) };
        }
    }

    /// Waits until every vCPU thread has started, loaded its boot state
    /// and parked.
    pub fn wait_started(&self) {
        let mut state = self.lock();
        while state.parked < state.threads.len() || state.threads.iter().any(Option::is_none) {
            state = self.wait(state);
        }
    }
}
