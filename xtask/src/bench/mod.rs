//! `cargo xtask bench ...`.

pub fn run(args: &[String]) -> Result<(), String> {
    match args.first().map(String::as_str) {
        _ => Err("usage: cargo xtask bench qmp [--quick] [--record]".to_string()),
    }
}
