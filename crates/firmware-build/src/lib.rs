//! Builds the guest programs in `firmware/`, a cargo workspace of its own
//! with its own flags (firmware/.cargo/config.toml), with the cargo that
//! runs the caller.  Build scripts call it to embed or locate the programs;
//! `cargo xtask firmware` calls it to put them where QEMU can boot them.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The firmware workspace in this source tree.
pub fn source_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../firmware")
}

/// The programs, as built ELF files.
#[derive(Debug, Clone)]
pub struct Firmware {
    /// Booted when no -kernel is given.
    pub default: PathBuf,
    /// The scenarios the end-to-end tests run.
    pub test_guest: PathBuf,
}

/// Builds every program into `target_dir` (release profile).
pub fn build(target_dir: &Path) -> Result<Firmware, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(source_dir())
        .args(["build", "--release", "--quiet", "--target-dir"])
        .arg(target_dir);
    // What the calling cargo sets for its own build must not leak into
    // this one: the firmware's flags come from its own config.
    for variable in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_TARGET",
        "CARGO_BUILD_RUSTFLAGS",
        "CARGO_TARGET_DIR",
        "CARGO_BUILD_TARGET_DIR",
        "RUSTC_WORKSPACE_WRAPPER",
    ] {
        command.env_remove(variable);
    }
    let status = command
        .status()
        .map_err(|e| format!("cannot run cargo to build the firmware: {e}"))?;
    if !status.success() {
        return Err(format!("building the firmware failed ({status})"));
    }
    let out = target_dir.join("x86_64-unknown-linux-gnu/release");
    Ok(Firmware {
        default: out.join("kvmon-firmware"),
        test_guest: out.join("test-guest"),
    })
}

/// Tells cargo to rerun the calling build script when the firmware's
/// sources change.
pub fn rerun_if_changed() {
    let dir = source_dir();
    for entry in [
        "src",
        "Cargo.toml",
        "build.rs",
        "link.ld",
        ".cargo/config.toml",
    ] {
        println!("cargo:rerun-if-changed={}", dir.join(entry).display());
    }
}
