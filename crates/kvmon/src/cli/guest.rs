//! The options that describe a KVM guest: `-m`, `-smp`, `-kernel`,
//! `-initrd`, `-append`, with QEMU's syntax and error texts.

use std::path::PathBuf;

use machine::kvm::{PvPanicConfig, RtcConfig};

use super::opts::{self, Schema};
use super::serial::SerialSpec;
use super::CliError;

/// QEMU's default RAM (128 MiB) and the most vCPUs kvmon gives a guest
/// (APIC ids fit in the MADT's byte).
pub const DEFAULT_RAM: u64 = 128 << 20;
pub const MAX_VCPUS: u32 = 254;

/// A KVM guest as the command line describes it.
#[derive(Debug, Clone)]
pub struct GuestConfig {
    pub ram_size: u64,
    pub vcpus: u32,
    pub kernel: Option<PathBuf>,
    pub initrd: Option<PathBuf>,
    pub append: String,
    pub serial: SerialSpec,
    pub disks: Vec<super::DiskSpec>,
    /// The CMOS clock, unless `-M microvm,rtc=off`.
    pub rtc: Option<RtcConfig>,
    /// `-device ib700`
    pub ib700: bool,
    /// `-device pvpanic`
    pub pvpanic: Option<PvPanicConfig>,
    /// `-netdev` and `-device virtio-net-device`
    pub nics: Vec<machine::NicConfig>,
    /// `-device virtio-balloon-device`
    pub balloon: Option<machine::BalloonConfig>,
}

/// A size with QEMU's suffixes (k, M, G, T, P, E; B for bytes), in
/// `default_unit`s when it has none; fractions allowed ("1.5G").
pub fn parse_size(text: &str, default_unit: u64) -> Option<u64> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let unit: u64 = match suffix {
        "" => default_unit,
        "B" | "b" => 1,
        "K" | "k" => 1 << 10,
        "M" | "m" => 1 << 20,
        "G" | "g" => 1 << 30,
        "T" | "t" => 1 << 40,
        "P" | "p" => 1 << 50,
        "E" | "e" => 1 << 60,
        _ => return None,
    };
    if number.is_empty() || number.starts_with('.') {
        return None;
    }
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let whole: u64 = whole.parse().ok()?;
    let mut bytes = whole.checked_mul(unit)?;
    if !fraction.is_empty() {
        let fraction: f64 = format!("0.{fraction}").parse().ok()?;
        bytes = bytes.checked_add((fraction * unit as f64) as u64)?;
    }
    Some(bytes)
}

/// `-m [size=]SIZE[,slots=N,maxmem=SIZE]`; 0 means the default.
pub fn parse_memory(arg: &str, location: &str) -> Result<u64, CliError> {
    const MEMORY: Schema<'static> = Schema {
        implied: Some("size"),
        strings: &["size", "slots", "maxmem"],
        booleans: &[],
    };
    let opts = opts::parse(arg, &MEMORY, location)?;
    if opts.has("slots") || opts.has("maxmem") {
        return Err(CliError::at(
            location,
            "kvmon does not offer memory hotplug (slots, maxmem)",
        ));
    }
    let Some(size) = opts.get("size") else {
        return Ok(DEFAULT_RAM);
    };
    if size.starts_with('-') {
        return Err(CliError::at(
            location,
            format!("Value '{size}' is out of range for parameter 'size'"),
        ));
    }
    let bytes = parse_size(size, 1 << 20).ok_or_else(|| {
        CliError::at(
            location,
            "Parameter 'size' expects a non-negative number below 2^64",
        )
    })?;
    // QEMU rounds up to a whole page; 0 asks for the default.
    match bytes {
        0 => Ok(DEFAULT_RAM),
        bytes => bytes.checked_next_multiple_of(4096).ok_or_else(|| {
            CliError::at(
                location,
                "Parameter 'size' expects a non-negative number below 2^64",
            )
        }),
    }
}

/// `-smp [cpus=]N[,maxcpus=N][,sockets=1][,dies=1][,cores=N][,threads=1]`:
/// kvmon's topology is one socket of single-threaded cores.
pub fn parse_smp(arg: &str, location: &str) -> Result<u32, CliError> {
    const SMP: Schema<'static> = Schema {
        implied: Some("cpus"),
        strings: &[
            "cpus", "maxcpus", "sockets", "dies", "clusters", "cores", "threads",
        ],
        booleans: &[],
    };
    let opts = opts::parse(arg, &SMP, location)?;
    let number = |key: &str| -> Result<Option<u32>, CliError> {
        opts.get(key)
            .map(|value| {
                value
                    .parse::<u32>()
                    .map_err(|_| CliError::bare(format!("Parameter 'smp.{key}' expects integer")))
            })
            .transpose()
    };
    let cores = number("cores")?;
    let cpus = number("cpus")?.or(cores).unwrap_or(1);
    let values = ["maxcpus", "sockets", "dies", "clusters", "cores", "threads"]
        .into_iter()
        .map(|key| Ok((key, number(key)?)))
        .collect::<Result<Vec<_>, CliError>>()?;
    if cpus == 0 || values.iter().any(|(_, value)| *value == Some(0)) {
        return Err(CliError::bare(
            "Invalid CPU topology: CPU topology parameters must be greater than zero",
        ));
    }
    for (key, value) in values {
        let expected = match key {
            "maxcpus" | "cores" => cpus,
            _ => 1,
        };
        if value.is_some_and(|value| value != expected) {
            return Err(CliError::bare(format!(
                "Invalid CPU topology: kvmon offers {cpus} vCPUs as one socket of {cpus} \
                 single-threaded cores, without hotplug; {key}={} does not fit",
                value.unwrap_or_default()
            )));
        }
    }
    if cpus > MAX_VCPUS {
        return Err(CliError::bare(format!(
            "Invalid SMP CPUs {cpus}. The max CPUs supported by machine 'microvm' is {MAX_VCPUS}"
        )));
    }
    Ok(cpus)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u64 = 1 << 20;

    #[test]
    fn sizes_take_qemus_suffixes_and_default_to_mib() {
        assert_eq!(parse_size("256", MIB), Some(256 * MIB));
        assert_eq!(parse_size("1.5G", MIB), Some(1536 * MIB));
        assert_eq!(parse_size("512k", MIB), Some(512 << 10));
        assert_eq!(parse_size("2T", MIB), Some(2 << 40));
        assert_eq!(parse_size("4096B", MIB), Some(4096));
        assert_eq!(parse_size("abc", MIB), None);
        assert_eq!(parse_size("1X", MIB), None);
        assert_eq!(parse_size("", MIB), None);
        assert_eq!(parse_size("99999999999999999999", MIB), None);
        assert_eq!(parse_size("20E", MIB), None, "overflows");
    }

    #[test]
    fn memory_option_as_qemu() {
        assert_eq!(parse_memory("256", "-m 256").unwrap(), 256 * MIB);
        assert_eq!(parse_memory("size=1G", "-m size=1G").unwrap(), 1024 * MIB);
        assert_eq!(parse_memory("0", "-m 0").unwrap(), DEFAULT_RAM);
        assert_eq!(parse_memory("1000B", "-m 1000B").unwrap(), 4096);
        assert_eq!(
            parse_memory("abc", "-m abc").unwrap_err().to_string(),
            "-m abc: Parameter 'size' expects a non-negative number below 2^64"
        );
        assert_eq!(
            parse_memory("-5", "-m -5").unwrap_err().to_string(),
            "-m -5: Value '-5' is out of range for parameter 'size'"
        );
        assert!(parse_memory("128M,slots=2", "-m").is_err());
        assert!(
            parse_memory("18446744073709551615B", "-m").is_err(),
            "no wrap to 0"
        );
    }

    #[test]
    fn smp_option_as_qemu() {
        assert_eq!(parse_smp("2", "-smp 2").unwrap(), 2);
        assert_eq!(
            parse_smp("cpus=4,sockets=1,cores=4,threads=1", "-smp").unwrap(),
            4
        );
        assert_eq!(parse_smp("cores=3", "-smp").unwrap(), 3);
        assert_eq!(
            parse_smp("abc", "-smp abc").unwrap_err().to_string(),
            "Parameter 'smp.cpus' expects integer"
        );
        assert_eq!(
            parse_smp("0", "-smp 0").unwrap_err().to_string(),
            "Invalid CPU topology: CPU topology parameters must be greater than zero"
        );
        assert!(parse_smp("4,sockets=2", "-smp").is_err());
        assert_eq!(
            parse_smp("300", "-smp 300").unwrap_err().to_string(),
            "Invalid SMP CPUs 300. The max CPUs supported by machine 'microvm' is 254"
        );
    }
}
