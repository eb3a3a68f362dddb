//! Percentiles, memory, thread CPU time and formatting.

use std::collections::HashMap;
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

/// The threads of process `pid` as lines "TID NANOSECONDS NAME", the time
/// each has been on a CPU (from schedstat): what [`thread_times_command`]
/// prints in the test host, read here from this host's /proc.
pub fn thread_times(pid: u32) -> String {
    let mut listing = String::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return listing;
    };
    for task in tasks.flatten() {
        let path = task.path();
        let name = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        let schedstat = std::fs::read_to_string(path.join("schedstat")).unwrap_or_default();
        if let Some(ns) = schedstat.split_whitespace().next() {
            let tid = task.file_name().to_string_lossy().into_owned();
            listing.push_str(&format!("{tid} {ns} {}\n", name.trim_end()));
        }
    }
    listing
}

/// A shell command with the same output as [`thread_times`], in shell
/// builtins only (a fork costs milliseconds in the emulated test host).
pub fn thread_times_command(pid: &str) -> String {
    format!(
        "for t in /proc/{pid}/task/*; do \
           read name <$t/comm && read ns _ <$t/schedstat && echo \"${{t##*/}} $ns $name\"; \
         done; true"
    )
}

/// The CPU time the VMM's own threads used between two listings of
/// [`thread_times`]: every thread but the vCPUs (named "CPU n/KVM" by both
/// VMMs), whose time is mostly the guest's; threads started in between
/// count from zero.  An empty listing (the process was gone) is an error,
/// not zero.
pub fn vmm_cpu_between(before: &str, after: &str) -> Result<Duration, String> {
    let vmm_threads = |listing: &str| -> HashMap<String, u64> {
        listing
            .lines()
            .filter_map(|line| {
                let mut words = line.splitn(3, ' ');
                let (tid, ns, name) = (words.next()?, words.next()?, words.next()?);
                let ns = ns.parse().ok()?;
                (!name.starts_with("CPU ")).then(|| (tid.to_string(), ns))
            })
            .collect()
    };
    let (before, after) = (vmm_threads(before), vmm_threads(after));
    if before.is_empty() || after.is_empty() {
        return Err("the VMM's threads could not be read".into());
    }
    let nanos = after
        .iter()
        .map(|(tid, now)| now.saturating_sub(before.get(tid).copied().unwrap_or(0)))
        .sum();
    Ok(Duration::from_nanos(nanos))
}
