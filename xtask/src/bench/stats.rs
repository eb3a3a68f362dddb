//! Percentiles, memory and formatting.

use std::time::Duration;

/// The `p`th percentile (0..=100) of `samples`, which it sorts.
pub fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    if samples.is_empty() {
        return Duration::ZERO;
    }
    samples.sort_unstable();
    let rank = ((p / 100.0) * (samples.len() - 1) as f64).round() as usize;
    samples[rank.min(samples.len() - 1)]
}

pub fn micros(duration: Duration) -> String {
    format!("{:.1} µs", duration.as_secs_f64() * 1e6)
}

/// Resident KiB in a process's /proc/PID/smaps, leaving out the mappings of
/// at least `ram_bytes` (the guest's RAM): what the VMM itself uses.
pub fn rss_without_guest_ram(smaps: &str, ram_bytes: u64) -> u64 {
    let mut total = 0;
    let mut guest_ram = false;
    for line in smaps.lines() {
        let mut words = line.split_whitespace();
        let Some(first) = words.next() else { continue };
        if let Some((start, end)) = first.split_once('-') {
            let (Ok(start), Ok(end)) =
                (u64::from_str_radix(start, 16), u64::from_str_radix(end, 16))
            else {
                continue;
            };
            guest_ram = end - start >= ram_bytes;
        } else if first == "Rss:" && !guest_ram {
            total += words
                .next()
                .and_then(|kib| kib.parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    total
}
