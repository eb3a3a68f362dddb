//! The guest's memory statistics, as the driver sends them on the stats
//! queue: packed entries of a 16-bit tag and a 64-bit value, little-endian.
//! A tag the device does not know is ignored; a stat the guest never sent
//! reads as all ones (QEMU's -1 as u64).

/// QEMU's names for the tags, in tag order.
pub const STAT_NAMES: [&str; 16] = [
    "stat-swap-in",
    "stat-swap-out",
    "stat-major-faults",
    "stat-minor-faults",
    "stat-free-memory",
    "stat-total-memory",
    "stat-available-memory",
    "stat-disk-caches",
    "stat-htlb-pgalloc",
    "stat-htlb-pgfail",
    "stat-oom-kills",
    "stat-alloc-stalls",
    "stat-async-scans",
    "stat-direct-scans",
    "stat-async-reclaims",
    "stat-direct-reclaims",
];

/// The bytes of one entry.
pub const ENTRY_LEN: usize = 10;

/// What the guest last reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GuestStats {
    /// By tag; all ones for a stat never reported.
    pub values: [u64; STAT_NAMES.len()],
    /// When the guest last sent them, in seconds since the epoch (0: never).
    pub last_update: i64,
}

impl Default for GuestStats {
    fn default() -> GuestStats {
        GuestStats {
            values: [u64::MAX; STAT_NAMES.len()],
            last_update: 0,
        }
    }
}

impl GuestStats {
    /// Takes one entry the guest sent.
    pub fn record(&mut self, entry: [u8; ENTRY_LEN]) {
        let tag = u16::from_le_bytes([entry[0], entry[1]]);
        let mut value = [0u8; 8];
        value.copy_from_slice(&entry[2..]);
        if let Some(slot) = self.values.get_mut(usize::from(tag)) {
            *slot = u64::from_le_bytes(value);
        }
    }

    /// Each stat with its name, in tag order.
    pub fn named(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        STAT_NAMES.iter().copied().zip(self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(tag: u16, value: u64) -> [u8; ENTRY_LEN] {
        let mut entry = [0u8; ENTRY_LEN];
        entry[..2].copy_from_slice(&tag.to_le_bytes());
        entry[2..].copy_from_slice(&value.to_le_bytes());
        entry
    }

    #[test]
    fn known_tags_are_kept_and_unknown_ones_ignored() {
        let mut stats = GuestStats::default();
        assert!(stats.values.iter().all(|&v| v == u64::MAX));
        stats.record(entry(4, 123 << 20));
        stats.record(entry(15, 7));
        stats.record(entry(16, 1));
        stats.record(entry(u16::MAX, 1));
        let named: Vec<_> = stats.named().collect();
        assert_eq!(named[4], ("stat-free-memory", 123 << 20));
        assert_eq!(named[15], ("stat-direct-reclaims", 7));
        assert_eq!(named[0], ("stat-swap-in", u64::MAX));
        assert_eq!(named.len(), 16);
    }
}
