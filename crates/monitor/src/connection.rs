//! One client connection: its socket, its parser, its protocol state, the
//! in-band requests waiting to run and the output waiting to be written.

use std::collections::VecDeque;
use std::io::{self, Read};
use std::rc::Rc;

use qmp::json::Parser;
use qmp::{QmpError, Value};

use crate::dispatch::Session;
use crate::outbox::{Chunk, Outbox, Overflow, HARD_LIMIT, HIGH_WATER};
use crate::socket::Stream;

/// Parsed in-band requests a connection may hold before it stops reading
/// (QEMU stops at 8; kvmon's commands never block, so it can hold more).
pub const MAX_QUEUED: usize = 64;

/// Input bytes read while in-band requests wait, past which reading stops:
/// a stalled client cannot make kvmon hold many huge requests.
pub const MAX_QUEUED_INPUT: usize = 1 << 20;

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
    /// Input read since in-band requests started waiting.
    queued_input: usize,
    /// Reading stopped because the queue was full; read again as soon as
    /// there is room, so out-of-band requests behind it are seen.
    pub held_back: bool,
    pub outbox: Outbox,
    /// The client closed its side; queued work still runs.
    pub eof: bool,
    /// Read budget left in this turn.
    pub budget: usize,
    /// To be closed: yanked, or too far behind with its output.
    pub doomed: bool,
    /// A connection out that is still being set up: no greeting yet.
    pub connecting: bool,
}

/// What a read turned up.
#[derive(Debug, PartialEq, Eq)]
pub enum ReadResult {
    Data,
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
            queued_input: 0,
            held_back: false,
            outbox: Outbox::default(),
            eof: false,
            budget: READ_BUDGET,
            doomed: false,
            connecting: false,
        }
    }

    /// Output is backed up: in-band commands wait until the client reads.
    pub fn stalled(&self) -> bool {
        self.outbox.queued() >= HIGH_WATER
    }

    /// The in-band queue holds as much as kvmon will hold for a client.
    pub fn queue_full(&self) -> bool {
        self.inband.len() >= MAX_QUEUED
            || (!self.inband.is_empty() && self.queued_input >= MAX_QUEUED_INPUT)
    }

    /// Whether another read is allowed now.  Past the output's hard limit
    /// nothing is read, so even out-of-band requests cannot grow the output.
    pub fn may_read(&self) -> bool {
        !self.eof && self.budget > 0 && self.outbox.queued() < HARD_LIMIT && !self.queue_full()
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
                if !self.inband.is_empty() {
                    self.queued_input += count;
                }
                self.parser.feed(&scratch[..count], items);
                Ok(ReadResult::Data)
            }
            Err(error) if error.kind() == io::ErrorKind::WouldBlock => Ok(ReadResult::WouldBlock),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => Ok(ReadResult::Data),
            Err(error) => Err(error),
        }
    }

    /// The next queued in-band request.
    pub fn next_inband(&mut self) -> Option<Item> {
        let item = self.inband.pop_front();
        if self.inband.is_empty() {
            self.queued_input = 0;
        }
        item
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

    /// Whether the client has closed its side.  Reads once: input still
    /// arriving is discarded, and a client that keeps talking cannot hold
    /// kvmon's exit.
    pub fn hung_up(&mut self, scratch: &mut [u8]) -> bool {
        match self.stream.read(scratch) {
            Ok(0) => true,
            Ok(_) => false,
            Err(error) => !matches!(
                error.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ),
        }
    }

    /// Writes what the socket takes now.
    pub fn flush(&mut self) -> io::Result<bool> {
        self.outbox.flush(&mut self.stream)
    }
}
