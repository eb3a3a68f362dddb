//! `cargo xtask bench ...`: kvmon against QEMU, side by side, in one run.

mod blk;
mod boot;
mod linux;
mod net;
mod qmp;
mod stats;
mod table;
mod throughput;

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        Some("qmp") => qmp::run(&args[1..]),
        Some("boot") => boot::run(&args[1..]),
        Some("linux") => linux::run(&args[1..]),
        Some("blk") => blk::run(&args[1..]),
        Some("net") => net::run(&args[1..]),
        _ => Err(
            "usage: cargo xtask bench qmp|boot|linux|blk|net [firmware|linux] [--quick] [--record]"
                .to_string(),
        ),
    }
}
