//! A drive's I/O accounting, as QEMU keeps it for `query-blockstats`:
//! bytes, operations and time per kind of request, failed and invalid
//! requests, the highest offset written and when the drive was last used.

use std::time::{Duration, Instant};

/// The kinds of request QEMU accounts separately.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Read,
    Write,
    Flush,
    /// Discards.
    Unmap,
}

/// Per kind of request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub bytes: u64,
    pub operations: u64,
    pub total_time_ns: u64,
    pub failed: u64,
    pub invalid: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub read: Counters,
    pub write: Counters,
    pub flush: Counters,
    pub unmap: Counters,
    /// One past the last byte ever written.
    pub wr_highest_offset: u64,
    /// When a request last finished, in any way.
    pub last_access: Option<Instant>,
}

impl Stats {
    fn counters(&mut self, operation: Operation) -> &mut Counters {
        match operation {
            Operation::Read => &mut self.read,
            Operation::Write => &mut self.write,
            Operation::Flush => &mut self.flush,
            Operation::Unmap => &mut self.unmap,
        }
    }

    /// A request of `bytes` that took `elapsed` succeeded.
    pub fn done(&mut self, operation: Operation, bytes: u64, elapsed: Duration) {
        let counters = self.counters(operation);
        counters.bytes += bytes;
        counters.operations += 1;
        counters.total_time_ns += elapsed.as_nanos() as u64;
        self.last_access = Some(Instant::now());
    }

    /// A request failed in the host.
    pub fn failed(&mut self, operation: Operation) {
        self.counters(operation).failed += 1;
        self.last_access = Some(Instant::now());
    }

    /// A request was malformed (outside the disk, a partial sector, ...).
    pub fn invalid(&mut self, operation: Operation) {
        self.counters(operation).invalid += 1;
        self.last_access = Some(Instant::now());
    }

    /// Bytes up to `end` have been written.
    pub fn wrote_up_to(&mut self, end: u64) {
        self.wr_highest_offset = self.wr_highest_offset.max(end);
    }
}
