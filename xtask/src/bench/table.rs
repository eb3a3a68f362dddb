//! The report: a markdown table of kvmon beside QEMU with the ratios and
//! the targets, and its place in docs/benchmarks.md.

/// One line of the report: how to read it off the results and show it.
pub struct Measure<R> {
    pub name: String,
    pub value: fn(&R) -> f64,
    pub show: fn(f64) -> String,
    /// Whether more is better (throughput) rather than less (time, memory).
    pub more_is_better: bool,
    /// The target: the ratio to QEMU kvmon must reach, and its wording.
    pub target: Option<(f64, &'static str)>,
}

impl<R> Measure<R> {
    /// A measure where less is better, without a target.
    pub fn new(name: impl Into<String>, value: fn(&R) -> f64, show: fn(f64) -> String) -> Self {
        Measure {
            name: name.into(),
            value,
            show,
            more_is_better: false,
            target: None,
        }
    }

    /// The target: kvmon must be `ratio` times better than QEMU.
    pub fn target(mut self, ratio: f64, wording: &'static str) -> Self {
        self.target = Some((ratio, wording));
        self
    }
}

/// The table's rows, with a header.
pub fn render<R>(measures: &[Measure<R>], kvmon: &R, qemu: Option<&R>) -> String {
    format!("{HEADER}{}", rows(measures, kvmon, qemu))
}

/// The header of [`render`]'s table, for tables built from several
/// [`rows`].
pub const HEADER: &str =
    "| Measure | kvmon | QEMU 10.0 | Ratio | Target |\n|---|---|---|---|---|\n";

/// The table's rows alone.
pub fn rows<R>(measures: &[Measure<R>], kvmon: &R, qemu: Option<&R>) -> String {
    let mut out = String::new();
    for m in measures {
        let ours = (m.value)(kvmon);
        let theirs = qemu.map(|q| (m.value)(q));
        let ratio = theirs.map(|theirs| {
            let (better, worse) = if m.more_is_better {
                (ours, theirs)
            } else {
                (theirs, ours)
            };
            better / worse.max(1e-12)
        });
        let verdict = match (m.target, ratio) {
            (Some((needed, wording)), Some(ratio)) => {
                format!("{wording} {}", if ratio >= needed { "✔" } else { "✘" })
            }
            (Some((_, wording)), None) => wording.to_string(),
            _ => String::new(),
        };
        out.push_str(&format!(
            "| {} | {} | {} | {} | {verdict} |\n",
            m.name,
            (m.show)(ours),
            theirs.map_or("—".into(), m.show),
            ratio.map_or("—".into(), |ratio| format!("{ratio:.1}×")),
        ));
    }
    out
}

/// Replaces the section of docs/benchmarks.md marked for `bench NAME`.
pub fn record(name: &str, report: &str) -> Result<(), String> {
    let path = crate::root().join("docs/benchmarks.md");
    let text = std::fs::read_to_string(&path)
        .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
    let start = format!("<!-- bench {name}: start -->");
    let end = format!("<!-- bench {name}: end -->");
    let (Some(from), Some(to)) = (text.find(&start), text.find(&end)) else {
        return Err(format!(
            "{} lacks the {start} … {end} markers",
            path.display()
        ));
    };
    let machine = machine_description();
    let section = format!("{start}\nMeasured {machine}.\n\n{report}{end}");
    let updated = format!("{}{section}{}", &text[..from], &text[to + end.len()..]);
    std::fs::write(&path, updated).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    println!("recorded in {}", path.display());
    Ok(())
}

fn machine_description() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_string())
        .unwrap_or_else(|| "an unknown CPU".into());
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1);
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_default();
    format!("on {cores} cores of {cpu}, kvmon at {commit}")
}
