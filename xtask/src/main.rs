//! `cargo xtask <task>`: kvmon's development tasks.
//!
//! - `ci`: install what the tests need, then format check, clippy and every test.
//! - `qmp-docs`: regenerate docs/qmp/ from the schema.
//! - `firmware`: build the guest programs of firmware/ into target/firmware/.
//! - `bench qmp|boot|linux [--quick] [--record]`: kvmon against QEMU, side by side.
//! - `testhost [shell]`: build the test host (real KVM under emulation).

mod bench;
mod ci;
mod process;
mod testhost;

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("ci") => ci::ci(),
        Some("qmp-docs") => qmp_docs(),
        Some("firmware") => firmware(),
        Some("bench") => bench::run(&args[1..]),
        Some("testhost") => testhost::run(&args[1..]),
        _ => Err(
            "usage: cargo xtask ci | qmp-docs | firmware | testhost [shell] | bench qmp|boot|linux [--quick] [--record]"
                .to_string(),
        ),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: {error}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .map(PathBuf::from)
        .unwrap_or_default()
}

fn qmp_docs() -> Result<(), String> {
    let dir = root().join("docs/qmp");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    for (name, content) in monitor::reference_pages() {
        let path = dir.join(name);
        std::fs::write(&path, content)
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
        println!("wrote {}", path.display());
    }
    Ok(())
}

/// Builds the firmware programs where QEMU (or kvmon's `-kernel`) can boot
/// them: target/firmware/.
fn firmware() -> Result<(), String> {
    let built = firmware_build::build(&root().join("target/firmware"))?;
    println!("{}", built.default.display());
    println!("{}", built.test_guest.display());
    Ok(())
}
