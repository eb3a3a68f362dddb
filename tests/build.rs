//! Builds the firmware programs the tests boot; the harness names them.
fn main() {
    firmware_build::rerun_if_changed();
    let out = std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR");
    match firmware_build::build(&std::path::Path::new(&out).join("firmware")) {
        Ok(firmware) => {
            println!(
                "cargo:rustc-env=KVMON_TEST_GUEST={}",
                firmware.test_guest.display()
            );
            println!(
                "cargo:rustc-env=KVMON_FIRMWARE={}",
                firmware.default.display()
            );
        }
        Err(error) => panic!("{error}"),
    }
}
