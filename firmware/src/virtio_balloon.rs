//! A virtio-balloon driver for the test guest.  It owns a region of pages:
//! it inflates the balloon with them from the top down as the host's
//! target grows, deflates it (and touches the pages again) as the target
//! shrinks, reports `actual` after each buffer as Linux does, and answers
//! the device's requests for statistics.

use crate::virtio::{write_u16, write_u32, write_u64, Device, Queue};

const BALLOON_ID: u32 = 5;
const F_STATS_VQ: u32 = 1;
/// Where the rings go: inflate, deflate, stats, 16 KiB apart.
const RINGS: u64 = 0x60_0000;
/// One page of frame numbers per buffer, and the statistics.
const FRAME_LIST: u64 = 0x70_0000;
const FRAMES_PER_BUFFER: u64 = 1024;
const STATS: u64 = 0x70_1000;
const QUEUE_SIZE: u16 = 8;
const PAGE: u64 = 4096;

/// Statistics tags.
const SWAP_IN: u16 = 0;
const FREE_MEMORY: u16 = 4;
const TOTAL_MEMORY: u16 = 5;

pub struct Balloon {
    device: Device,
    inflate: Queue,
    deflate: Queue,
    stats: Option<Queue>,
    /// The pages it may give: frames `first..first + count`.
    first: u64,
    count: u64,
    /// How many it has given, the highest first.
    held: u64,
    /// Statistics sent so far (reported as swap-ins, so that fresh ones
    /// are told from old).
    reports: u64,
}

impl Balloon {
    /// The balloon, set up to give frames `first..first + count`.
    pub fn find(first: u64, count: u64) -> Option<Balloon> {
        let device = Device::find(BALLOON_ID)?;
        let accepted = device.negotiate(1 << F_STATS_VQ)?;
        let inflate = device.queue(0, RINGS, QUEUE_SIZE)?;
        let deflate = device.queue(1, RINGS + 0x4000, QUEUE_SIZE)?;
        let stats = match accepted & 1 << F_STATS_VQ {
            0 => None,
            _ => Some(device.queue(2, RINGS + 0x8000, QUEUE_SIZE)?),
        };
        device.driver_ok();
        Some(Balloon {
            device,
            inflate,
            deflate,
            stats,
            first,
            count,
            held: 0,
            reports: 0,
        })
    }

    /// The pages the host asks for, as far as the region goes.
    pub fn target(&self) -> u64 {
        u64::from(self.device.config(0)).min(self.count)
    }

    pub fn held(&self) -> u64 {
        self.held
    }

    /// Moves one buffer's worth toward the target; false when there.
    pub fn step(&mut self) -> bool {
        let target = self.target();
        let (queue, frames) = if target > self.held {
            let n = (target - self.held).min(FRAMES_PER_BUFFER);
            (&mut self.inflate, self.held..self.held + n)
        } else if target < self.held {
            let n = (self.held - target).min(FRAMES_PER_BUFFER);
            (&mut self.deflate, self.held - n..self.held)
        } else {
            return false;
        };
        let top = self.first + self.count - 1;
        for (i, index) in frames.clone().enumerate() {
            write_u32(FRAME_LIST + 4 * i as u64, (top - index) as u32);
        }
        let len = 4 * (frames.end - frames.start) as u32;
        queue.transfer(&[(FRAME_LIST, len, false)]);
        if target < self.held {
            // The pages are the guest's again: use them.
            for index in frames.clone() {
                write_u64((top - index) * PAGE, top - index);
            }
            self.held = frames.start;
        } else {
            self.held = frames.end;
        }
        self.device.set_config(4, self.held as u32);
        true
    }

    /// Whether the device asked for fresh statistics (it returned the
    /// buffer), or none were sent yet.
    pub fn stats_wanted(&mut self) -> bool {
        match &mut self.stats {
            Some(queue) => self.reports == 0 || queue.returned(),
            None => false,
        }
    }

    /// Sends statistics: the region's pages not in the balloon as free
    /// memory, `total` bytes of memory, and the count of reports.
    pub fn send_stats(&mut self, total: u64) {
        let Some(queue) = &mut self.stats else {
            return;
        };
        self.reports += 1;
        let free = (self.count - self.held) * PAGE;
        for (i, (tag, value)) in [(SWAP_IN, self.reports), (FREE_MEMORY, free), (TOTAL_MEMORY, total)]
            .into_iter()
            .enumerate()
        {
            let at = STATS + 10 * i as u64;
            write_u16(at, tag);
            for (byte, part) in value.to_le_bytes().chunks(2).enumerate() {
                write_u16(at + 2 + 2 * byte as u64, u16::from_le_bytes([part[0], part[1]]));
            }
        }
        queue.offer(&[(STATS, 30, false)]);
    }
}
