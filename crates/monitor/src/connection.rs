//! One client connection: its socket, its parser, its protocol state, the
//! in-band requests waiting to run and the output waiting to be written.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

use qmp::json::Parser;
use qmp::{QmpError, Value};

use crate::dispatch::Session;
use crate::outbox::{Chunk, Outbox, Overflow, HIGH_WATER};
use crate::socket::Stream;

/// Parsed in-band requests a connection may hold before it stops reading
/// (QEMU stops at 8; kvmon's commands never block, so it can hold more).
pub const MAX_QUEUED: usize = 64;

/// Bytes read from one connection per turn of the main loop, so that one
/// busy client cannot starve the others.
pub const READ_BUDGET: usize = 256 << 10;

/// A parsed message, or the parse error that stands in for it.
pub type Item = Result<Value, QmpError>;

#[derive(Debug)]
pub struct Connection {
    pub stream: Stream,
    /// Index of the monitor (chardev) this connection belongs to.
    pub monitor: usize,
    pub session: Session,
    pub pretty: bool,
    parser: Parser,
    pub inband: VecDeque<Item>,
    pub outbox: Outbox,
    /// The client closed its side; queued work still runs.
    pub eof: bool,
    /// Read budget left in this turn.
    pub budget: usize,
    /// To be closed: yanked, or too far behind with its output.
    pub doomed: bool,
    /// The peer has shut its side: read on to the end of file.
    pub peer_closed: bool,
}

/// What a read turned up.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    /// Data, and maybe more where it came from.
    Data,
    /// Data that emptied the socket: with edge-triggered readiness, more
    /// data raises a new event, so there is no need to read again now.
    Drained,
    WouldBlock,
    Eof,
}

impl Connection {
    pub fn new(stream: Stream, monitor: usize, pretty: bool) -> Self {
        Connection {
            stream,
            monitor,
            session: Session::default(),
            pretty,
            parser: Parser::default(),
            inband: VecDeque::new(),
            outbox: Outbox::default(),
            eof: false,
            budget: READ_BUDGET,
            doomed: false,
            peer_closed: false,
        }
    }

    /// Output is backed up: in-band commands wait until the client reads.
    pub fn stalled(&self) -> bool {
        self.outbox.queued() >= HIGH_WATER
    }

    /// Whether another read is allowed now.
    pub fn may_read(&self) -> bool {
        !self.eof && self.inband.len() < MAX_QUEUED && self.budget > 0
    }

    /// Reads once into `scratch` and parses what arrived into `items`.
    pub fn read(&mut self, scratch: &mut [u8], items: &mut Vec<Item>) -> io::Result<ReadResult> {
        let want = scratch.len().min(self.budget);
        match self.stream.read(&mut scratch[..want]) {
            Ok(0) => {
                self.eof = true;
                Ok(ReadResult::Eof)
            }
            Ok(count) => {
                self.budget -= count;
                self.parser.feed(&scratch[..count], items);
                // A hang-up came with the same readiness event: read to the end.
                if count < want && !self.peer_closed {
                    Ok(ReadResult::Drained)
                } else {
                    Ok(ReadResult::Data)
                }
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(ReadResult::WouldBlock),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(ReadResult::Data),
            Err(error) => Err(error),
        }
    }

    /// Queues a reply, serialised for this connection.
    pub fn reply(&mut self, message: &Value) {
        self.outbox
            .push_reply(Chunk::Owned(qmp::wire::frame(message, self.pretty)));
    }

    /// Queues an event serialised once for many connections; fails when the
    /// client has stopped reading.
    pub fn send_event(&mut self, bytes: &Rc<[u8]>) -> Result<(), Overflow> {
        self.outbox.push_event(Chunk::Shared(bytes.clone()))
    }

    /// Whether the client has closed its side; input still arriving is discarded.
    pub fn hung_up(&mut self, scratch: &mut [u8]) -> bool {
        loop {
            match self.stream.read(scratch) {
                Ok(0) => return true,
                Ok(_) => continue,
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return error.kind() != io::ErrorKind::WouldBlock,
            }
        }
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) -> io::Result<bool> {
        self.outbox.flush(&mut self.stream)
    }
}
