//! Which unexpected member QEMU names when an object has several.
//!
//! QEMU's input visitor puts an object's keys in a GLib hash table, removes
//! each member as it visits it, and reports the first key left in the table.
//! That order is GLib's (2.74, as Debian 12 and QEMU 10 link it): djb2
//! hashes, a prime-modulus probe start, quadratic probing, tombstones and
//! in-place resizes.  This module reproduces it.

use crate::json::writer::qdict_order;

/// `g_hash_table` moduli by table shift: the largest prime below 2^shift.
const PRIMES: [u64; 32] = [
    1, 2, 3, 7, 13, 31, 61, 127, 251, 509, 1021, 2039, 4093, 8191, 16381, 32749, 65521, 131071,
    262139, 524287, 1048573, 2097143, 4194301, 8388593, 16777213, 33554393, 67108859, 134217689,
    268435399, 536870909, 1073741789, 2147483647,
];
const UNUSED: u32 = 0;
const TOMBSTONE: u32 = 1;

/// The key QEMU reports first, given the object's keys in insertion order
/// and the members the visitor consumed, in visiting order.
pub fn first_unexpected<'k>(keys: &[&'k str], consumed: &[&str]) -> Option<&'k str> {
    let mut table = Table::new();
    for index in qdict_order(keys.iter().copied()) {
        table.insert(keys[index]);
    }
    for key in consumed {
        table.remove(key);
    }
    table.first()
}

fn g_str_hash(key: &str) -> u32 {
    key.bytes().fold(5381u32, |hash, byte| {
        // GLib hashes signed chars.
        hash.wrapping_mul(33).wrapping_add(byte as i8 as u32)
    })
}

fn hash_of(key: &str) -> u32 {
    g_str_hash(key).max(2)
}

struct Table<'k> {
    size: usize,
    modulus: u64,
    mask: usize,
    keys: Vec<Option<&'k str>>,
    hashes: Vec<u32>,
    nodes: usize,
    occupied: usize,
}

impl<'k> Table<'k> {
    fn new() -> Self {
        let mut table = Table {
            size: 0,
            modulus: 1,
            mask: 0,
            keys: Vec::new(),
            hashes: Vec::new(),
            nodes: 0,
            occupied: 0,
        };
        table.set_shift(3);
        table.keys = vec![None; table.size];
        table.hashes = vec![UNUSED; table.size];
        table
    }

    fn set_shift(&mut self, shift: usize) {
        self.size = 1 << shift;
        self.modulus = PRIMES[shift];
        self.mask = self.size - 1;
    }

    fn start(&self, hash: u32) -> usize {
        (u64::from(hash.wrapping_mul(11)) % self.modulus) as usize
    }

    /// The slot holding `key`, or where it would go.
    fn lookup(&self, key: &str, hash: u32) -> (usize, bool) {
        let mut index = self.start(hash);
        let mut step = 0;
        let mut tombstone = None;
        while self.hashes[index] != UNUSED {
            if self.hashes[index] == hash && self.keys[index] == Some(key) {
                return (index, true);
            }
            if self.hashes[index] == TOMBSTONE && tombstone.is_none() {
                tombstone = Some(index);
            }
            step += 1;
            index = (index + step) & self.mask;
        }
        (tombstone.unwrap_or(index), false)
    }

    fn insert(&mut self, key: &'k str) {
        let hash = hash_of(key);
        let (index, found) = self.lookup(key, hash);
        if found {
            return;
        }
        let was_tombstone = self.hashes[index] == TOMBSTONE;
        self.keys[index] = Some(key);
        self.hashes[index] = hash;
        self.nodes += 1;
        if !was_tombstone {
            self.occupied += 1;
            self.maybe_resize();
        }
    }

    fn remove(&mut self, key: &str) {
        let (index, found) = self.lookup(key, hash_of(key));
        if !found {
            return;
        }
        self.hashes[index] = TOMBSTONE;
        self.keys[index] = None;
        self.nodes -= 1;
        self.maybe_resize();
    }

    fn maybe_resize(&mut self) {
        let shrink = self.size > self.nodes * 4 && self.size > 8;
        let grow = self.size <= self.occupied + self.occupied / 16;
        if shrink || grow {
            self.resize();
        }
    }

    /// GLib's in-place rehash: each entry is moved to its new home, the
    /// entry it displaces carried along in turn.
    fn resize(&mut self) {
        let old_size = self.size;
        let mut wanted = self.nodes * 4 / 3;
        let mut shift = 0;
        while wanted != 0 {
            wanted >>= 1;
            shift += 1;
        }
        self.set_shift(shift.max(3));
        if self.size > old_size {
            self.keys.resize(self.size, None);
            self.hashes.resize(self.size, UNUSED);
        }
        let mut placed = vec![false; self.size.max(old_size)];
        for index in 0..old_size {
            let mut hash = self.hashes[index];
            if hash <= TOMBSTONE {
                self.hashes[index] = UNUSED;
                continue;
            }
            if placed[index] {
                continue;
            }
            self.hashes[index] = UNUSED;
            let mut key = self.keys[index].take();
            loop {
                let mut slot = self.start(hash);
                let mut step = 0;
                while placed[slot] {
                    step += 1;
                    slot = (slot + step) & self.mask;
                }
                placed[slot] = true;
                let displaced = self.hashes[slot];
                self.hashes[slot] = hash;
                if displaced <= TOMBSTONE {
                    self.keys[slot] = key;
                    break;
                }
                hash = displaced;
                key = std::mem::replace(&mut self.keys[slot], key);
            }
        }
        if self.size < old_size {
            self.keys.truncate(self.size);
            self.hashes.truncate(self.size);
        }
        self.occupied = self.nodes;
    }

    fn first(&self) -> Option<&'k str> {
        self.hashes
            .iter()
            .zip(&self.keys)
            .find(|(hash, _)| **hash > TOMBSTONE)
            .and_then(|(_, key)| *key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_qemu_observations() {
        // From QEMU 10.0.2 with GLib 2.74 (query-status, qom-get).
        assert_eq!(first_unexpected(&["foo", "bar"], &[]), Some("bar"));
        assert_eq!(first_unexpected(&["bar", "foo"], &[]), Some("bar"));
        assert_eq!(first_unexpected(&["a", "b", "c"], &[]), Some("b"));
        assert_eq!(first_unexpected(&["c", "b", "a"], &[]), Some("b"));
        assert_eq!(
            first_unexpected(&["path", "property", "zzz", "aaa"], &["path", "property"]),
            Some("zzz")
        );
        assert_eq!(first_unexpected(&["only"], &[]), Some("only"));
        assert_eq!(first_unexpected(&["path"], &["path"]), None);
    }

    #[test]
    fn tables_grow_as_far_as_a_message_can_take_them() {
        // A 64 MiB message holds at most about 500,000 members; GLib's table
        // then has 2^20 slots.  Past 61,680 keys it outgrows 2^16.
        let keys: Vec<String> = (0..600_000).map(|n| format!("k{n}")).collect();
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let consumed: Vec<&str> = keys[..keys.len() - 2].to_vec();
        let first = first_unexpected(&keys, &consumed).unwrap();
        assert!(first == "k599998" || first == "k599999");
        assert!(first_unexpected(&keys, &[]).is_some());
    }
}
