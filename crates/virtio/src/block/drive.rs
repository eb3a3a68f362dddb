//! A drive: the raw image file behind a block device, opened and locked
//! as its options say, with the I/O a device does on it, its size, its
//! accounting and its I/O status.  Shared by the device's I/O thread and
//! the machine's QMP commands.

use crate::os_text;
use devices::lock;
use std::fs::File;
use std::io::{self, Seek, SeekFrom};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};

use super::lock::lock_image;
use super::options::DriveOptions;
use super::stats::Stats;
use super::SECTOR;
use vmm_sys_util::eventfd::{EventFd, EFD_NONBLOCK};

use crate::Interrupt;

/// How much of the guest's memory one vectored call may name.
const IOV_MAX: usize = 1024;

/// A drive's I/O status, as `query-block` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IoStatus {
    Ok,
    Failed,
    Nospace,
}

impl IoStatus {
    pub fn name(self) -> &'static str {
        match self {
            IoStatus::Ok => "ok",
            IoStatus::Failed => "failed",
            IoStatus::Nospace => "nospace",
        }
    }
}

#[derive(Debug)]
pub struct Drive {
    options: DriveOptions,
    file: File,
    /// With O_DIRECT, the same file through the page cache, for buffers
    /// O_DIRECT cannot take (not aligned as the host disk needs).
    buffered: Option<File>,
    /// In bytes.
    size: AtomicU64,
    stats: Mutex<Stats>,
    io_status: Mutex<IoStatus>,
    /// The active device's interrupt, told when the size changes.
    config_interrupt: Mutex<Option<Interrupt>>,
    /// Tells the device's I/O thread to retry the requests it keeps.
    retry: EventFd,
}

impl Drive {
    /// Opens and locks the image; the error is QEMU's sentence for it.
    pub fn open(options: DriveOptions) -> Result<Drive, String> {
        let path = options.path.display().to_string();
        let open = |direct: bool| {
            let mut flags = libc::O_CLOEXEC;
            if direct {
                flags |= libc::O_DIRECT;
            }
            if !options.cache.writeback {
                flags |= libc::O_DSYNC;
            }
            File::options()
                .read(true)
                .write(!options.read_only)
                .custom_flags(flags)
                .open(&options.path)
                .map_err(|error| {
                    let why = match error.raw_os_error() {
                        Some(libc::EINVAL) if direct => {
                            "filesystem does not support O_DIRECT".into()
                        }
                        _ => os_text(&error),
                    };
                    format!("Could not open '{path}': {why}")
                })
        };
        let mut file = open(options.cache.direct)?;
        let buffered = match options.cache.direct {
            true => Some(open(false)?),
            false => None,
        };
        lock_image(&file, options.read_only)
            .map_err(|error| format!("{error}: is another process using the image [{path}]?"))?;
        let size = file
            .seek(SeekFrom::End(0))
            .map_err(|error| format!("Could not read the size of '{path}': {}", os_text(&error)))?;
        let retry = EventFd::new(EFD_NONBLOCK)
            .map_err(|error| format!("Could not create an event: {}", os_text(&error)))?;
        Ok(Drive {
            retry,
            options,
            file,
            buffered,
            size: AtomicU64::new(size),
            stats: Mutex::new(Stats::default()),
            io_status: Mutex::new(IoStatus::Ok),
            config_interrupt: Mutex::new(None),
        })
    }

    pub fn options(&self) -> &DriveOptions {
        &self.options
    }

    /// The size the guest sees, in bytes: whole sectors, the last one
    /// partly past the file's end when the file's length is not a multiple
    /// of 512 (reads there see zeroes), as in QEMU.
    pub fn size(&self) -> u64 {
        self.size.load(Ordering::SeqCst).next_multiple_of(SECTOR)
    }

    /// Grows or shrinks the image to `size` bytes; the active device tells
    /// the guest.
    pub fn resize(&self, size: u64) -> io::Result<()> {
        self.file.set_len(size)?;
        self.size.store(size, Ordering::SeqCst);
        if let Some(interrupt) = lock(&self.config_interrupt).as_ref() {
            interrupt.config_changed();
        }
        Ok(())
    }

    /// The device that tells the guest of size changes (`None` when reset).
    pub(super) fn set_config_interrupt(&self, interrupt: Option<Interrupt>) {
        *lock(&self.config_interrupt) = interrupt;
    }

    pub fn stats(&self) -> MutexGuard<'_, Stats> {
        lock(&self.stats)
    }

    pub fn io_status(&self) -> IoStatus {
        *lock(&self.io_status)
    }

    /// The first error since the status was last reset sticks.
    pub(super) fn set_io_error(&self, errno: i32) {
        let mut status = lock(&self.io_status);
        if *status == IoStatus::Ok {
            *status = match errno {
                libc::ENOSPC => IoStatus::Nospace,
                _ => IoStatus::Failed,
            };
        }
    }

    /// `cont`: the errors are old news.
    pub fn reset_io_status(&self) {
        *lock(&self.io_status) = IoStatus::Ok;
    }

    /// The VM runs again: the requests that failed under the `stop` policy
    /// are tried again.
    pub fn retry_failed(&self) {
        if let Err(error) = self.retry.write(1) {
            log::warn!("cannot retry a drive's failed requests: {error}");
        }
    }

    pub(super) fn retry_signal(&self) -> &EventFd {
        &self.retry
    }

    /// Reads the image from `offset` into `buffers`, filling them all.
    ///
    /// # Safety
    /// Every iovec must describe memory that is valid for writes for the
    /// whole call, as mapped guest memory is while the caller holds it.
    pub unsafe fn read(&self, buffers: &mut [libc::iovec], offset: u64) -> io::Result<()> {
        // SAFETY: the caller's promise, passed on.
        unsafe { self.transfer(buffers, offset, false) }
    }

    /// Writes `buffers` to the image at `offset`.
    ///
    /// # Safety
    /// Every iovec must describe memory that is valid for reads for the
    /// whole call.
    pub unsafe fn write(&self, buffers: &mut [libc::iovec], offset: u64) -> io::Result<()> {
        self.writable()?;
        // SAFETY: the caller's promise, passed on.
        unsafe { self.transfer(buffers, offset, true) }
    }

    /// A read-only drive refuses every change, as QEMU's does.
    fn writable(&self) -> io::Result<()> {
        match self.options.read_only {
            true => Err(io::Error::from_raw_os_error(libc::EPERM)),
            false => Ok(()),
        }
    }

    /// Through O_DIRECT when the drive uses it, and through the page cache
    /// when O_DIRECT refuses the buffers' alignment.
    ///
    /// # Safety
    /// As for [`Drive::read`] and [`Drive::write`].
    unsafe fn transfer(
        &self,
        buffers: &mut [libc::iovec],
        offset: u64,
        write: bool,
    ) -> io::Result<()> {
        let Some(buffered) = &self.buffered else {
            // SAFETY: the caller's promise, passed on.
            return unsafe { transfer(&self.file, buffers, offset, write) };
        };
        let original = buffers.to_vec();
        // SAFETY: the caller's promise, passed on.
        match unsafe { transfer(&self.file, buffers, offset, write) } {
            Err(error) if error.raw_os_error() == Some(libc::EINVAL) => {
                log::debug!("O_DIRECT refused a request's buffers; it goes through the page cache");
                let mut buffers = original;
                // SAFETY: the same buffers, which the caller vouched for.
                unsafe { transfer(buffered, &mut buffers, offset, write) }
            }
            result => result,
        }
    }

    /// Makes every completed write durable (nothing with `cache=unsafe`).
    pub fn flush(&self) -> io::Result<()> {
        if self.options.cache.no_flush || self.options.read_only {
            return Ok(());
        }
        self.file.sync_data()
    }

    /// Forgets `len` bytes at `offset` when the drive has `discard=unmap`;
    /// they then read as zeroes.
    pub fn discard(&self, offset: u64, len: u64) -> io::Result<()> {
        self.writable()?;
        if !self.options.discard {
            return Ok(());
        }
        match self.punch_hole(offset, len) {
            // A file system that cannot: the data simply stays.
            Err(error) if error.raw_os_error() == Some(libc::EOPNOTSUPP) => Ok(()),
            result => result,
        }
    }

    /// Makes `len` bytes at `offset` read as zeroes, freeing their space if
    /// `unmap` is allowed.
    pub fn write_zeroes(&self, offset: u64, len: u64, unmap: bool) -> io::Result<()> {
        self.writable()?;
        if unmap && self.options.discard && self.punch_hole(offset, len).is_ok() {
            return Ok(());
        }
        match fallocate(&self.file, libc::FALLOC_FL_ZERO_RANGE, offset, len) {
            Err(error) if error.raw_os_error() == Some(libc::EOPNOTSUPP) => {
                self.write_zero_blocks(offset, len)
            }
            result => result,
        }
    }

    fn punch_hole(&self, offset: u64, len: u64) -> io::Result<()> {
        let mode = libc::FALLOC_FL_PUNCH_HOLE | libc::FALLOC_FL_KEEP_SIZE;
        fallocate(&self.file, mode, offset, len)
    }

    /// Zeroes by writing them, a megabyte at a time.
    fn write_zero_blocks(&self, offset: u64, len: u64) -> io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = self.buffered.as_ref().unwrap_or(&self.file);
        let zeroes = vec![0u8; 1 << 20];
        let mut done = 0;
        while done < len {
            let chunk = (len - done).min(zeroes.len() as u64) as usize;
            file.write_all_at(&zeroes[..chunk], offset + done)?;
            done += chunk as u64;
        }
        Ok(())
    }
}

fn fallocate(file: &File, mode: libc::c_int, offset: u64, len: u64) -> io::Result<()> {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return Err(io::Error::from_raw_os_error(libc::EINVAL));
    };
    // SAFETY: fallocate only reads its integer arguments.
    if unsafe { libc::fallocate(file.as_raw_fd(), mode, offset, len) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// preadv/pwritev until every buffer is done; `buffers` is used up.
///
/// # Safety
/// Every iovec must name memory valid, for the whole call, for writes when
/// reading and for reads when writing.
unsafe fn transfer(
    file: &File,
    mut buffers: &mut [libc::iovec],
    mut offset: u64,
    write: bool,
) -> io::Result<()> {
    while !buffers.is_empty() {
        let count = buffers.len().min(IOV_MAX) as libc::c_int;
        let at = i64::try_from(offset).map_err(|_| io::Error::from_raw_os_error(libc::EINVAL))?;
        // SAFETY: the caller vouches that every iovec names valid memory
        // (guest memory that stays mapped); the kernel reads the array,
        // which lives across the call.
        let done = unsafe {
            match write {
                true => libc::pwritev(file.as_raw_fd(), buffers.as_ptr(), count, at),
                false => libc::preadv(file.as_raw_fd(), buffers.as_ptr(), count, at),
            }
        };
        if done < 0 {
            let error = io::Error::last_os_error();
            if error.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(error);
        }
        if done == 0 && !write {
            // The file ended: in the last sector of a file that is not
            // whole sectors long, or one cut short under us.  QEMU reads
            // zeroes there.
            for buffer in buffers.iter() {
                // SAFETY: the caller vouches that the iovec names memory
                // valid for writes, which preadv was about to fill.
                unsafe { std::ptr::write_bytes(buffer.iov_base.cast::<u8>(), 0, buffer.iov_len) };
            }
            return Ok(());
        }
        if done == 0 {
            return Err(io::Error::from_raw_os_error(libc::EIO));
        }
        offset += done as u64;
        buffers = advance(buffers, done as usize);
    }
    Ok(())
}

/// Drops `done` bytes from the front of `buffers`.
fn advance(buffers: &mut [libc::iovec], mut done: usize) -> &mut [libc::iovec] {
    let mut first = 0;
    while let Some(buffer) = buffers.get_mut(first) {
        if done < buffer.iov_len {
            // SAFETY: `done` is inside this buffer, so the pointer stays
            // within the memory it names.
            buffer.iov_base = unsafe { buffer.iov_base.cast::<u8>().add(done) }.cast();
            buffer.iov_len -= done;
            break;
        }
        done -= buffer.iov_len;
        first += 1;
    }
    &mut buffers[first..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advancing_skips_whole_buffers_then_part_of_one() {
        let mut data = [0u8; 32];
        let base = data.as_mut_ptr();
        let mut buffers: Vec<libc::iovec> = [8usize, 8, 16]
            .iter()
            .scan(0, |at, &len| {
                let iovec = libc::iovec {
                    // SAFETY: inside `data`.
                    iov_base: unsafe { base.add(*at) }.cast(),
                    iov_len: len,
                };
                *at += len;
                Some(iovec)
            })
            .collect();
        let rest = advance(&mut buffers, 10);
        assert_eq!(rest.len(), 2);
        assert_eq!(rest[0].iov_len, 6);
        assert_eq!(rest[0].iov_base as usize, base as usize + 10);
        let rest = advance(rest, 22);
        assert!(rest.is_empty());
    }
}
