//! An initramfs writer: the kernel's "newc" cpio format, uncompressed
//! (unpacking is a copy, which is what an emulated CPU does fastest).

use std::collections::BTreeSet;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, Write};
use std::path::Path;

const DIRECTORY: u32 = 0o040_755;
const SYMLINK: u32 = 0o120_777;
const CHARACTER_DEVICE: u32 = 0o020_600;
const REGULAR: u32 = 0o100_000;

/// An archive being written; parent directories are added on demand.
pub struct Archive {
    out: BufWriter<File>,
    directories: BTreeSet<String>,
    inode: u32,
}

impl Archive {
    pub fn create(path: &Path) -> Result<Archive, String> {
        let file =
            File::create(path).map_err(|e| format!("cannot create {}: {e}", path.display()))?;
        Ok(Archive {
            out: BufWriter::with_capacity(1 << 20, file),
            directories: BTreeSet::new(),
            inode: 0,
        })
    }

    /// A regular file with `data`, and permission bits `mode`.
    pub fn file(&mut self, name: &str, mode: u32, data: &[u8]) -> Result<(), String> {
        self.parents(name)?;
        self.entry(name, REGULAR | mode, data, (0, 0))
    }

    /// A copy of the host file `source` (symbolic links followed).
    pub fn copy(&mut self, name: &str, source: &Path) -> Result<(), String> {
        use std::os::unix::fs::PermissionsExt;
        let data =
            std::fs::read(source).map_err(|e| format!("cannot read {}: {e}", source.display()))?;
        let mode = std::fs::metadata(source)
            .map(|m| m.permissions().mode() & 0o7777)
            .unwrap_or(0o644);
        self.file(name, mode, &data)
    }

    pub fn symlink(&mut self, name: &str, target: &str) -> Result<(), String> {
        self.parents(name)?;
        self.entry(name, SYMLINK, target.as_bytes(), (0, 0))
    }

    pub fn character_device(&mut self, name: &str, major: u32, minor: u32) -> Result<(), String> {
        self.parents(name)?;
        self.entry(name, CHARACTER_DEVICE, &[], (major, minor))
    }

    pub fn directory(&mut self, name: &str) -> Result<(), String> {
        self.parents(name)?;
        if self.directories.insert(name.to_string()) {
            self.entry(name, DIRECTORY, &[], (0, 0))?;
        }
        Ok(())
    }

    /// Ends the archive, padded with zeros to a whole page: QEMU's microvm
    /// would otherwise load some sizes over the ACPI tables at the top of
    /// RAM (docs/testhost.md).
    pub fn finish(mut self) -> Result<(), String> {
        self.entry("TRAILER!!!", 0, &[], (0, 0))?;
        self.pad_to_page()
            .map_err(|e| format!("cannot write the archive: {e}"))
    }

    fn pad_to_page(&mut self) -> io::Result<()> {
        const PAGE: u64 = 4096;
        let end = self.out.stream_position()?;
        let padding = (PAGE - end % PAGE) % PAGE;
        io::copy(&mut io::repeat(0).take(padding), &mut self.out)?;
        self.out.flush()
    }

    fn parents(&mut self, name: &str) -> Result<(), String> {
        match name.rsplit_once('/') {
            Some((parent, _)) if !parent.is_empty() && !self.directories.contains(parent) => {
                self.directory(parent)
            }
            _ => Ok(()),
        }
    }

    fn entry(
        &mut self,
        name: &str,
        mode: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> Result<(), String> {
        self.write_entry(name, mode, data, rdev)
            .map_err(|e| format!("cannot write {name} to the archive: {e}"))
    }

    fn write_entry(
        &mut self,
        name: &str,
        mode: u32,
        data: &[u8],
        rdev: (u32, u32),
    ) -> io::Result<()> {
        self.inode += 1;
        let size = u32::try_from(data.len()).map_err(|_| io::Error::other("file over 4 GiB"))?;
        let fields = [
            self.inode,
            mode,
            0, // uid
            0, // gid
            1, // links
            0, // mtime
            size,
            0, // device major
            0, // device minor
            rdev.0,
            rdev.1,
            name.len() as u32 + 1,
            0, // checksum
        ];
        let mut header = String::from("070701");
        for field in fields {
            header.push_str(&format!("{field:08x}"));
        }
        self.out.write_all(header.as_bytes())?;
        self.out.write_all(name.as_bytes())?;
        self.out.write_all(&[0])?;
        self.pad(header.len() + name.len() + 1)?;
        self.out.write_all(data)?;
        self.pad(data.len())
    }

    /// Pads to the format's four-byte alignment.
    fn pad(&mut self, written: usize) -> io::Result<()> {
        let padding = (4 - written % 4) % 4;
        self.out.write_all(&[0; 3][..padding])
    }
}
