//! `cargo xtask ci`: what CI runs on a fresh machine, and what a developer
//! runs before submitting.

use std::fs;

use crate::process::{have, run};

/// QEMU, the reference the tests compare kvmon with, comes from here.
const BACKPORTS: &str = "bookworm-backports";
/// The Python QMP client the tests drive kvmon with.
const PYTHON_PACKAGES: &[&str] = &["qemu.qmp==0.0.6", "pytest==8.3.5"];

pub fn ci() -> Result<(), String> {
    install()?;
    let kvmon = crate::root().join("target/release/kvmon");
    let kvmon = kvmon.to_string_lossy().into_owned();
    let env = [("KVMON_BIN", kvmon.as_str())];
    run("cargo", &["fmt", "--all", "--", "--check"], &[])?;
    run(
        "cargo",
        &[
            "clippy",
            "--workspace",
            "--all-targets",
            "--",
            "-D",
            "warnings",
        ],
        &[],
    )?;
    run("cargo", &["build", "--release", "--package", "kvmon"], &[])?;
    run("cargo", &["test", "--workspace", "--release"], &env)?;
    run("python3", &["-m", "pytest", "-q", "tests/python"], &env)?;
    // A smoke run: it keeps the benchmark working, and its small counts are
    // too noisy to gate on; the recorded full run is in docs/benchmarks.md.
    run("cargo", &["xtask", "bench", "qmp", "--quick"], &[])?;
    run("cargo", &["xtask", "bench", "boot", "--quick"], &[])?;
    run("cargo", &["xtask", "bench", "linux", "--quick"], &[])?;
    run("cargo", &["xtask", "bench", "blk", "--quick"], &[])?;
    run("cargo", &["xtask", "bench", "net", "--quick"], &[])?;
    println!("ci: all passed");
    Ok(())
}

/// Debian packages (QEMU 10 from backports) and Python packages.
fn install() -> Result<(), String> {
    if !have("apt-get") {
        return Err("apt-get is missing: kvmon's tests need a Debian machine".to_string());
    }
    add_backports()?;
    let noninteractive = [("DEBIAN_FRONTEND", "noninteractive")];
    run("apt-get", &["update", "-q"], &noninteractive)?;
    run(
        "apt-get",
        &["install", "-y", "-q", "-t", BACKPORTS, "qemu-system-x86"],
        &noninteractive,
    )?;
    // The NIC tests address a tap in a network namespace and ping the guest.
    run(
        "apt-get",
        &["install", "-y", "-q", "iproute2", "iputils-ping"],
        &noninteractive,
    )?;
    let mut pip = vec!["-m", "pip", "install", "-q", "--disable-pip-version-check"];
    pip.extend_from_slice(PYTHON_PACKAGES);
    run("python3", &pip, &[])
}

/// Adds bookworm-backports on the machine's own Debian mirror if no
/// apt source has it yet.
fn add_backports() -> Result<(), String> {
    let sources = apt_sources();
    if sources.contains(BACKPORTS) {
        return Ok(());
    }
    let mirror = sources
        .lines()
        .find_map(|line| {
            let line = line.trim();
            line.strip_prefix("URIs:")
                .map(|uris| {
                    uris.split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string()
                })
                .or_else(|| {
                    let mut words = line.strip_prefix("deb ")?.split_whitespace();
                    let uri = words.find(|word| word.contains("://"))?;
                    Some(uri.to_string())
                })
        })
        .filter(|uri| !uri.contains("security"))
        .unwrap_or_else(|| "http://deb.debian.org/debian".to_string());
    let file = "/etc/apt/sources.list.d/kvmon-backports.sources";
    let content = format!(
        "Types: deb\nURIs: {mirror}\nSuites: {BACKPORTS}\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    );
    println!("+ adding {BACKPORTS} from {mirror} in {file}");
    fs::write(file, content).map_err(|e| format!("cannot write {file}: {e}"))
}

/// Every enabled apt source, concatenated.
fn apt_sources() -> String {
    let mut text = fs::read_to_string("/etc/apt/sources.list").unwrap_or_default();
    if let Ok(entries) = fs::read_dir("/etc/apt/sources.list.d") {
        for entry in entries.flatten() {
            let path = entry.path();
            let enabled = matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("list" | "sources")
            );
            if enabled {
                text.push_str(&fs::read_to_string(&path).unwrap_or_default());
                text.push('\n');
            }
        }
    }
    text
}
