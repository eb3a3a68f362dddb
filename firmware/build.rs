//! Links every program with link.ld, which places it at 1 MiB.
fn main() {
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    println!("cargo:rustc-link-arg-bins=-Wl,-T{dir}/link.ld");
    println!("cargo:rerun-if-changed=link.ld");
}
