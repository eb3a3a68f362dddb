//! What vCPU threads and devices ask of the machine, which only the main
//! loop can do (reset, power off, stop on an error): a channel plus the
//! main loop's waker.  Each request carries the reset generation it was
//! made in: a guest asks several ways to be reset (Linux tries the ACPI
//! register, then the keyboard controller, ...), and what it asked before a
//! reset must not reset the machine again after it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use devices::{DeviceRequest, MachineControl};
use mio::Waker;

use crate::Request;

/// The sending side, shared by every vCPU and device.
#[derive(Debug, Clone)]
pub struct Requests {
    sender: Arc<Mutex<Sender<(u64, Request)>>>,
    waker: Arc<Waker>,
    generation: Arc<AtomicU64>,
}

/// The receiving side, on the main loop.
#[derive(Debug)]
pub struct Inbox {
    receiver: Receiver<(u64, Request)>,
    generation: Arc<AtomicU64>,
}

impl Inbox {
    /// The requests made since the last reset.
    pub fn take(&self) -> Vec<Request> {
        let current = self.generation.load(Ordering::SeqCst);
        self.receiver
            .try_iter()
            .filter(|(generation, _)| *generation == current)
            .map(|(_, request)| request)
            .collect()
    }

    /// A reset happened: what was asked before it is void.
    pub fn reset(&self) {
        self.generation.fetch_add(1, Ordering::SeqCst);
    }
}

impl Requests {
    pub fn new(waker: Arc<Waker>) -> (Requests, Inbox) {
        let (sender, receiver) = channel();
        let generation = Arc::new(AtomicU64::new(0));
        let requests = Requests {
            sender: Arc::new(Mutex::new(sender)),
            waker,
            generation: generation.clone(),
        };
        (
            requests,
            Inbox {
                receiver,
                generation,
            },
        )
    }

    pub fn send(&self, request: Request) {
        let generation = self.generation.load(Ordering::SeqCst);
        let sent = self
            .sender
            .lock()
            .map(|sender| sender.send((generation, request.clone())).is_ok())
            .unwrap_or(false);
        if !sent {
            // Only when the machine is being torn down.
            log::debug!("dropped {request:?}: the machine is gone");
            return;
        }
        if let Err(error) = self.waker.wake() {
            log::error!("cannot wake the main loop for {request:?}: {error}");
        }
    }
}

impl MachineControl for Requests {
    fn request(&self, request: DeviceRequest) {
        self.send(Request::Device(request));
    }
}
