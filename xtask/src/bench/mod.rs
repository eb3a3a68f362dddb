//! `cargo xtask bench ...`: kvmon against QEMU, side by side, in one run.

mod qmp;
mod stats;

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("qmp") => qmp::run(&args[1..]),
        _ => Err("usage: cargo xtask bench qmp [--quick] [--record]".to_string()),
    }
}
