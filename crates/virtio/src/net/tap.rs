//! A tap interface, the network backend: opened by name through
//! /dev/net/tun (the kernel creates the interface if it is missing, and it
//! goes when kvmon exits) or taken as an open fd (as libvirt passes one).
//! Frames carry the virtio-net header (IFF_VNET_HDR), so the guest's
//! checksum and segmentation offloads go through the host's stack as they
//! are.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::fs::OpenOptionsExt;

/// The header every frame carries: virtio 1's, with `num_buffers`.
pub const VNET_HDR_LEN: usize = 12;

#[derive(Debug)]
pub struct Tap {
    file: File,
    name: String,
}

/// An `ifreq` with the interface's name and flags.
fn request(name: &str, flags: i32) -> io::Result<libc::ifreq> {
    // SAFETY: ifreq is plain old data, for which all zeroes is valid.
    let mut ifreq: libc::ifreq = unsafe { std::mem::zeroed() };
    if name.len() >= ifreq.ifr_name.len() || name.contains('\0') {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "the interface name is too long",
        ));
    }
    for (to, from) in ifreq.ifr_name.iter_mut().zip(name.bytes()) {
        *to = from as libc::c_char;
    }
    ifreq.ifr_ifru.ifru_flags = flags as libc::c_short;
    Ok(ifreq)
}

/// Runs an ioctl whose argument is `arg`'s address.
fn ioctl<T>(fd: RawFd, request: libc::Ioctl, arg: &mut T) -> io::Result<()> {
    // SAFETY: every request used here reads or writes a value of the size
    // of T at the address given, which lives for the call.
    let result = unsafe { libc::ioctl(fd, request, arg as *mut T) };
    match result {
        0.. => Ok(()),
        _ => Err(io::Error::last_os_error()),
    }
}

impl Tap {
    /// The tap named `name`, created if it does not exist.
    pub fn open(name: &str) -> io::Result<Tap> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC)
            .open("/dev/net/tun")?;
        let mut ifreq = request(name, libc::IFF_TAP | libc::IFF_NO_PI | libc::IFF_VNET_HDR)?;
        ioctl(file.as_raw_fd(), libc::TUNSETIFF, &mut ifreq)?;
        Tap::ready(file)
    }

    /// A tap someone else opened: it must be a tap with the virtio-net
    /// header.
    pub fn from_fd(fd: OwnedFd) -> io::Result<Tap> {
        let file = File::from(fd);
        // SAFETY: F_GETFL and F_SETFL on an fd this function owns; no
        // memory is passed.
        let set = unsafe {
            let flags = libc::fcntl(file.as_raw_fd(), libc::F_GETFL);
            flags >= 0
                && libc::fcntl(file.as_raw_fd(), libc::F_SETFL, flags | libc::O_NONBLOCK) >= 0
        };
        if !set {
            return Err(io::Error::last_os_error());
        }
        Tap::ready(file)
    }

    /// Checks the interface is a tap with the header, learns its name, and
    /// sets the header's size.
    fn ready(file: File) -> io::Result<Tap> {
        let mut ifreq = request("", 0)?;
        ioctl(file.as_raw_fd(), libc::TUNGETIFF, &mut ifreq)?;
        // SAFETY: TUNGETIFF filled the flags member of the union.
        let flags = i32::from(unsafe { ifreq.ifr_ifru.ifru_flags });
        if flags & libc::IFF_TAP == 0 || flags & libc::IFF_VNET_HDR == 0 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                "it is not a tap with the virtio-net header (IFF_VNET_HDR)",
            ));
        }
        let name = ifreq
            .ifr_name
            .iter()
            .take_while(|&&c| c != 0)
            .map(|&c| c as u8 as char)
            .collect();
        let mut size = VNET_HDR_LEN as libc::c_int;
        ioctl(file.as_raw_fd(), libc::TUNSETVNETHDRSZ, &mut size)?;
        Ok(Tap { file, name })
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// Which offloads the tap may hand the guest (TUN_F_* bits).
    pub fn set_offloads(&self, offloads: libc::c_uint) -> io::Result<()> {
        // SAFETY: TUNSETOFFLOAD takes its argument by value.
        let result = unsafe {
            libc::ioctl(
                self.file.as_raw_fd(),
                libc::TUNSETOFFLOAD,
                offloads as libc::c_ulong,
            )
        };
        match result {
            0.. => Ok(()),
            _ => Err(io::Error::last_os_error()),
        }
    }

    /// A second handle on the same queue, for another thread.
    pub fn try_clone(&self) -> io::Result<Tap> {
        Ok(Tap {
            file: self.file.try_clone()?,
            name: self.name.clone(),
        })
    }

    pub fn file(&self) -> &File {
        &self.file
    }
}

impl AsRawFd for Tap {
    fn as_raw_fd(&self) -> RawFd {
        self.file.as_raw_fd()
    }
}

/// Takes ownership of fd `number` (a `-netdev tap,fd=N` the caller left
/// open for kvmon).
///
/// # Safety
/// Nothing else in the process may own or close `number`.
pub unsafe fn inherited_fd(number: RawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_GETFD only checks that the fd is open.
    if unsafe { libc::fcntl(number, libc::F_GETFD) } < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: the fd is open and, as the caller promises, owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(number) })
}
