//! Debian packages, fetched with `apt-get download` into the build
//! directory and unpacked there; nothing is installed on the machine.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The generic kernel's metapackage; it names the versioned image package.
const KERNEL_METAPACKAGE: &str = "linux-image-amd64";
pub const BUSYBOX: &str = "busybox-static";

/// The versioned kernel package the metapackage depends on today (the name
/// moves with security updates, so it is never written down).
pub fn kernel_package() -> Result<String, String> {
    let output = Command::new("apt-cache")
        .args(["depends", KERNEL_METAPACKAGE])
        .output()
        .map_err(|e| format!("cannot run apt-cache: {e}"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .filter_map(|line| line.trim().strip_prefix("Depends: "))
        .find(|name| name.starts_with("linux-image-"))
        .map(str::to_string)
        .ok_or_else(|| {
            format!(
                "apt-cache names no kernel for {KERNEL_METAPACKAGE}; run `apt-get update` first"
            )
        })
}

/// The package unpacked under `dir/NAME`, downloaded into `dir/debs` first
/// unless it is already there.
pub fn unpacked(dir: &Path, name: &str) -> Result<PathBuf, String> {
    let tree = dir.join(name);
    if tree.join(".unpacked").exists() {
        return Ok(tree);
    }
    let deb = download(&dir.join("debs"), name)?;
    let _ = std::fs::remove_dir_all(&tree);
    println!("+ dpkg-deb -x {} {}", deb.display(), tree.display());
    let status = Command::new("dpkg-deb")
        .arg("-x")
        .arg(&deb)
        .arg(&tree)
        .status()
        .map_err(|e| format!("cannot run dpkg-deb: {e}"))?;
    if !status.success() {
        return Err(format!("dpkg-deb cannot unpack {}", deb.display()));
    }
    std::fs::write(tree.join(".unpacked"), "").map_err(|e| e.to_string())?;
    Ok(tree)
}

fn download(debs: &Path, name: &str) -> Result<PathBuf, String> {
    if let Some(deb) = find_deb(debs, name) {
        return Ok(deb);
    }
    std::fs::create_dir_all(debs).map_err(|e| format!("cannot create {}: {e}", debs.display()))?;
    println!("+ apt-get download {name}");
    let status = Command::new("apt-get")
        .args(["download", "-q", "-o", "APT::Sandbox::User=root", name])
        .current_dir(debs)
        .status()
        .map_err(|e| format!("cannot run apt-get: {e}"))?;
    if !status.success() {
        return Err(format!("apt-get cannot download {name}"));
    }
    find_deb(debs, name).ok_or_else(|| format!("apt-get downloaded no {name} package"))
}

/// `NAME_VERSION_ARCH.deb` in `debs`.
fn find_deb(debs: &Path, name: &str) -> Option<PathBuf> {
    let prefix = format!("{name}_");
    std::fs::read_dir(debs)
        .ok()?
        .flatten()
        .map(|entry| entry.path())
        .find(|path| {
            path.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(&prefix) && n.ends_with(".deb"))
        })
}
