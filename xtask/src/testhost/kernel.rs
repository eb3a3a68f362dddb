//! Debian's kernel package: the bzImage, the ELF vmlinux inside it (what a
//! PVH boot loads), and modules with their dependencies.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// An unpacked linux-image package.
pub struct Kernel {
    pub release: String,
    pub bzimage: PathBuf,
    modules: PathBuf,
    /// Module name (with `_`) → its path under `modules`.
    paths: HashMap<String, String>,
}

impl Kernel {
    pub fn open(tree: &Path) -> Result<Kernel, String> {
        let lib = tree.join("lib/modules");
        let release = std::fs::read_dir(&lib)
            .map_err(|e| format!("{} has no modules: {e}", tree.display()))?
            .flatten()
            .find_map(|entry| entry.file_name().into_string().ok())
            .ok_or_else(|| format!("{} has no modules", lib.display()))?;
        let modules = lib.join(&release);
        let order = std::fs::read_to_string(modules.join("modules.order"))
            .map_err(|e| format!("cannot read modules.order: {e}"))?;
        let paths = order
            .lines()
            .filter_map(|path| {
                let file = path.rsplit('/').next()?;
                let name = file.strip_suffix(".ko")?;
                Some((name.replace('-', "_"), path.to_string()))
            })
            .collect();
        Ok(Kernel {
            bzimage: tree.join(format!("boot/vmlinuz-{release}")),
            release,
            modules,
            paths,
        })
    }

    /// The modules `wanted` and everything they depend on, in loading order:
    /// (name, file).
    pub fn modules(&self, wanted: &[&str]) -> Result<Vec<(String, PathBuf)>, String> {
        let mut ordered = Vec::new();
        for name in wanted {
            self.add_with_dependencies(&name.replace('-', "_"), &mut ordered)?;
        }
        Ok(ordered)
    }

    fn add_with_dependencies(
        &self,
        name: &str,
        ordered: &mut Vec<(String, PathBuf)>,
    ) -> Result<(), String> {
        if ordered.iter().any(|(known, _)| known == name) {
            return Ok(());
        }
        let relative = self.paths.get(name).ok_or_else(|| {
            format!(
                "kernel {} has no module {name} (compressed modules are not supported)",
                self.release
            )
        })?;
        let file = self.modules.join(relative);
        let object =
            std::fs::read(&file).map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        for dependency in modinfo(&object, "depends") {
            self.add_with_dependencies(&dependency.replace('-', "_"), ordered)?;
        }
        ordered.push((name.to_string(), file));
        Ok(())
    }
}

/// The comma-separated values of `key=` in a module's .modinfo strings.
fn modinfo(object: &[u8], key: &str) -> Vec<String> {
    let needle = format!("\0{key}=");
    object
        .windows(needle.len())
        .position(|window| window == needle.as_bytes())
        .map(|at| {
            let value = &object[at + needle.len()..];
            let end = value.iter().position(|&b| b == 0).unwrap_or(value.len());
            String::from_utf8_lossy(&value[..end])
                .split(',')
                .filter(|name| !name.is_empty())
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// The ELF vmlinux a bzImage carries, decompressed into `out` unless it is
/// there already.  The setup header locates the payload
/// (Documentation/arch/x86/boot.rst); its last four bytes are the size.
pub fn extract_vmlinux(bzimage: &Path, out: &Path) -> Result<(), String> {
    if out.exists() {
        return Ok(());
    }
    let image =
        std::fs::read(bzimage).map_err(|e| format!("cannot read {}: {e}", bzimage.display()))?;
    let u32_at = |offset: usize| -> Option<usize> {
        let bytes = image.get(offset..offset + 4)?;
        Some(u32::from_le_bytes(bytes.try_into().ok()?) as usize)
    };
    let setup_sectors = *image.get(0x1f1).ok_or("the bzImage is truncated")? as usize;
    let offset = (setup_sectors + 1) * 512 + u32_at(0x248).ok_or("no payload offset")?;
    let length = u32_at(0x24c).ok_or("no payload length")?;
    let payload = image
        .get(offset..offset + length)
        .ok_or("the bzImage payload is outside the file")?;
    let (compressed, size) = payload.split_at(length.saturating_sub(4));
    let expected = u32::from_le_bytes(size.try_into().map_err(|_| "the payload is empty")?);
    let decompressor = match compressed.get(..4) {
        Some([0xfd, b'7', b'z', b'X']) => "xz",
        Some([0x28, 0xb5, 0x2f, 0xfd]) => "zstd",
        _ => return Err("the bzImage payload is neither xz nor zstd".to_string()),
    };
    println!("+ {decompressor} -dc (vmlinux from {})", bzimage.display());
    let mut child = Command::new(decompressor)
        .arg("-dc")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run {decompressor}: {e}"))?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let input = compressed.to_vec();
    let feeder = std::thread::spawn(move || stdin.write_all(&input));
    let output = child
        .wait_with_output()
        .map_err(|e| format!("{decompressor} failed: {e}"))?;
    let _ = feeder.join();
    if output.stdout.len() != expected as usize || !output.stdout.starts_with(b"\x7fELF") {
        return Err(format!(
            "the vmlinux from {} is {} bytes, not the {expected} its header says",
            bzimage.display(),
            output.stdout.len()
        ));
    }
    let partial = out.with_extension("partial");
    std::fs::write(&partial, &output.stdout)
        .and_then(|()| std::fs::rename(&partial, out))
        .map_err(|e| format!("cannot write {}: {e}", out.display()))
}
