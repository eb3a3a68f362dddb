//! Image locking as QEMU does it, so that QEMU and kvmon keep each other
//! (and themselves) from writing an image another VM uses: open-file-
//! description locks on single bytes, a shared lock at 100 + bit for each
//! permission held and at 200 + bit for each permission not shared with
//! others.  A permission is refused when another holder has locked the
//! opposite byte.

use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;

const PERMISSION_BASE: i64 = 100;
const SHARED_BASE: i64 = 200;

/// QEMU's block permissions, by bit.
const CONSISTENT_READ: u32 = 0;
const WRITE: u32 = 1;
const PERMISSION_NAMES: [&str; 4] = ["consistent read", "write", "write unchanged", "resize"];

/// Takes the locks of a device on `file`: it reads, writes unless
/// `read_only`, and shares neither writing nor (when writable) reading with
/// writers.  The locks last as long as the file stays open.
pub fn lock_image(file: &File, read_only: bool) -> Result<(), String> {
    // As QEMU's virtio-blk: it holds consistent read (and write), and
    // shares everything but write.
    let held: &[u32] = if read_only {
        &[CONSISTENT_READ]
    } else {
        &[CONSISTENT_READ, WRITE]
    };
    let unshared: &[u32] = &[WRITE];
    for &bit in held {
        read_lock(file, PERMISSION_BASE + i64::from(bit)).map_err(|_| refused(false, bit))?;
    }
    for &bit in unshared {
        read_lock(file, SHARED_BASE + i64::from(bit)).map_err(|_| refused(true, bit))?;
    }
    for &bit in held {
        if locked_by_another(file, SHARED_BASE + i64::from(bit)) {
            return Err(refused(false, bit));
        }
    }
    for &bit in unshared {
        if locked_by_another(file, PERMISSION_BASE + i64::from(bit)) {
            return Err(refused(true, bit));
        }
    }
    Ok(())
}

/// QEMU's words for a refused permission.
fn refused(shared: bool, bit: u32) -> String {
    let name = PERMISSION_NAMES[bit as usize];
    if shared {
        format!("Failed to get shared \"{name}\" lock")
    } else {
        format!("Failed to get \"{name}\" lock")
    }
}

fn byte(kind: libc::c_int, at: i64) -> libc::flock {
    // SAFETY: flock is plain data; zero is a valid value for every field.
    let mut lock: libc::flock = unsafe { std::mem::zeroed() };
    lock.l_type = kind as libc::c_short;
    lock.l_whence = libc::SEEK_SET as libc::c_short;
    lock.l_start = at;
    lock.l_len = 1;
    lock
}

fn read_lock(file: &File, at: i64) -> io::Result<()> {
    let lock = byte(libc::F_RDLCK, at);
    // SAFETY: F_OFD_SETLK reads the flock we pass, which outlives the call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_SETLK, &lock) };
    if result < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// Whether another open file holds a lock on the byte at `at`.
fn locked_by_another(file: &File, at: i64) -> bool {
    let mut lock = byte(libc::F_WRLCK, at);
    // SAFETY: F_OFD_GETLK reads and rewrites the flock we pass, which
    // outlives the call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_OFD_GETLK, &mut lock) };
    result == 0 && lock.l_type != libc::F_UNLCK as libc::c_short
}

#[cfg(test)]
mod tests {
    use super::*;

    fn open(path: &std::path::Path) -> File {
        File::options().read(true).write(true).open(path).unwrap()
    }

    #[test]
    fn a_second_writer_and_a_reader_beside_a_writer_are_refused() {
        let dir = std::env::temp_dir().join(format!("kvmon-lock-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("disk.img");
        std::fs::write(&path, [0u8; 512]).unwrap();

        let first = open(&path);
        lock_image(&first, false).unwrap();
        assert_eq!(
            lock_image(&open(&path), false),
            Err("Failed to get \"write\" lock".to_string())
        );
        assert_eq!(
            lock_image(&open(&path), true),
            Err("Failed to get shared \"write\" lock".to_string())
        );
        drop(first);
        // Readers share reading with each other, not with a writer.
        let reader = open(&path);
        lock_image(&reader, true).unwrap();
        lock_image(&open(&path), true).unwrap();
        assert!(lock_image(&open(&path), false).is_err());
        drop(reader);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
