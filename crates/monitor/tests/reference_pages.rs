//! docs/qmp/ must be what the schema says: regenerate with `cargo xtask qmp-docs`.

use std::path::Path;

#[test]
fn generated_pages_are_current() {
    let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/qmp");
    for (name, content) in monitor::reference_pages() {
        let path = docs.join(name);
        let on_disk = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            on_disk == content,
            "{} is stale: run `cargo xtask qmp-docs`",
            path.display()
        );
    }
}
