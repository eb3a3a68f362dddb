//! A connection's bounded output queue.
//!
//! Responses and events wait here until the socket takes them.  Events are
//! serialised once and shared by every connection.  Above `HIGH_WATER` the
//! connection stops executing commands until the client catches up, which
//! bounds the replies queued; an event that would take the queue past
//! `HARD_LIMIT` means the client is not reading, and it is dropped.

use std::collections::VecDeque;
use std::io::{self, IoSlice, Write};
use std::rc::Rc;

/// Queued bytes past which a connection stops executing in-band commands.
pub const HIGH_WATER: usize = 1 << 20;
/// Queued bytes past which a connection is closed.
pub const HARD_LIMIT: usize = 16 << 20;

/// One message on its way out.
#[derive(Debug, Clone)]
pub enum Chunk {
    Owned(Vec<u8>),
    Shared(Rc<[u8]>),
}

impl AsRef<[u8]> for Chunk {
    fn as_ref(&self) -> &[u8] {
        match self {
            Chunk::Owned(bytes) => bytes,
            Chunk::Shared(bytes) => bytes,
        }
    }
}

/// The queue is over its hard limit.
#[derive(Debug, PartialEq, Eq)]
pub struct Overflow;

#[derive(Debug, Default)]
pub struct Outbox {
    chunks: VecDeque<Chunk>,
    /// Bytes of the first chunk already written.
    written: usize,
    queued: usize,
}

impl Outbox {
    /// Queues an event; fails when the queue would pass the hard limit.
    pub fn push_event(&mut self, chunk: Chunk) -> Result<(), Overflow> {
        if self.queued + chunk.as_ref().len() > HARD_LIMIT {
            return Err(Overflow);
        }
        self.push_reply(chunk);
        Ok(())
    }

    /// Queues a reply: always, since replies wait for the client anyway.
    pub fn push_reply(&mut self, chunk: Chunk) {
        self.queued += chunk.as_ref().len();
        self.chunks.push_back(chunk);
    }

    /// Bytes waiting to be written.
    pub fn queued(&self) -> usize {
        self.queued
    }

    pub fn is_empty(&self) -> bool {
        self.queued == 0
    }

    /// Writes as much as the writer takes without blocking.  Returns
    /// `Ok(true)` once everything is written.
    pub fn flush(&mut self, writer: &mut impl Write) -> io::Result<bool> {
        const BATCH: usize = 64;
        while !self.chunks.is_empty() {
            let mut slices = [IoSlice::new(&[]); BATCH];
            let mut count = 0;
            for (index, chunk) in self.chunks.iter().take(BATCH).enumerate() {
                let bytes = chunk.as_ref();
                slices[index] = IoSlice::new(if index == 0 {
                    &bytes[self.written..]
                } else {
                    bytes
                });
                count += 1;
            }
            let written = match writer.write_vectored(&slices[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(written) => written,
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(error) if error.kind() == io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            self.consume(written);
        }
        Ok(true)
    }

    fn consume(&mut self, mut count: usize) {
        self.queued -= count;
        while let Some(first) = self.chunks.front() {
            let left = first.as_ref().len() - self.written;
            if count < left {
                self.written += count;
                return;
            }
            count -= left;
            self.written = 0;
            self.chunks.pop_front();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A writer that takes at most `budget` bytes per call, then would block.
    struct Trickle {
        got: Vec<u8>,
        budget: usize,
        calls: usize,
    }

    impl Write for Trickle {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.calls == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.calls -= 1;
            let n = buf.len().min(self.budget);
            self.got.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_resume_where_they_stopped() {
        let mut outbox = Outbox::default();
        let shared: Rc<[u8]> = Rc::from(&b"event\r\n"[..]);
        outbox.push_reply(Chunk::Owned(b"first\r\n".to_vec()));
        outbox.push_event(Chunk::Shared(shared.clone())).unwrap();
        outbox.push_reply(Chunk::Owned(b"last\r\n".to_vec()));
        let mut writer = Trickle {
            got: vec![],
            budget: 3,
            calls: 2,
        };
        assert!(!outbox.flush(&mut writer).unwrap());
        assert_eq!(outbox.queued(), 20 - 6);
        writer.calls = usize::MAX;
        assert!(outbox.flush(&mut writer).unwrap());
        assert_eq!(writer.got, b"first\r\nevent\r\nlast\r\n");
        assert!(outbox.is_empty());
    }

    #[test]
    fn events_are_refused_past_the_hard_limit_replies_are_not() {
        let mut outbox = Outbox::default();
        let big: Rc<[u8]> = vec![b'x'; HARD_LIMIT / 2].into();
        outbox.push_event(Chunk::Shared(big.clone())).unwrap();
        outbox.push_event(Chunk::Shared(big.clone())).unwrap();
        assert_eq!(outbox.push_event(Chunk::Shared(big.clone())), Err(Overflow));
        assert_eq!(outbox.queued(), HARD_LIMIT);
        outbox.push_reply(Chunk::Shared(big));
        assert_eq!(outbox.queued(), HARD_LIMIT + HARD_LIMIT / 2);
    }
}
