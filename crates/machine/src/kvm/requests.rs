//! What vCPU threads and devices ask of the machine, which only the main
//! loop can do (reset, power off, stop on an error): a channel plus the
//! main loop's waker.

use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};

use devices::{PowerControl, PowerRequest};
use mio::Waker;

use crate::Request;

/// The sending side, shared by every vCPU and device.
#[derive(Debug, Clone)]
pub struct Requests {
    sender: Arc<Mutex<Sender<Request>>>,
    waker: Arc<Waker>,
}

impl Requests {
    pub fn new(waker: Arc<Waker>) -> (Requests, Receiver<Request>) {
        let (sender, receiver) = channel();
        let requests = Requests {
            sender: Arc::new(Mutex::new(sender)),
            waker,
        };
        (requests, receiver)
    }

    pub fn send(&self, request: Request) {
        let sent = self
            .sender
            .lock()
            .map(|sender| sender.send(request.clone()).is_ok())
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

impl PowerControl for Requests {
    fn request(&self, request: PowerRequest) {
        self.send(Request::Power(request));
    }
}
