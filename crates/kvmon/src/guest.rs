//! A KVM guest from its command-line description: the kernel and initrd
//! files opened (or the default firmware), the serial console opened, and
//! the platform built with its vCPUs parked.

use std::os::unix::fs::OpenOptionsExt;
use std::sync::Arc;

use events::Publisher;
use machine::kvm::{
    BlockDevice, BootSource, Image, KvmConfig, KvmPlatform, Nic, PlatformConfig, DEFAULT_FIRMWARE,
};
use mio::Waker;
use virtio::block::Drive;

use crate::cli::{CliError, GuestConfig};
use crate::console::Console;

pub fn build(
    guest: &GuestConfig,
    waker: Arc<Waker>,
    events: Publisher,
    say: &mut dyn FnMut(String),
) -> Result<(KvmPlatform, Console), CliError> {
    let boot = boot_source(guest)?;
    let disks = guest
        .disks
        .iter()
        .map(|disk| {
            let drive = Drive::open(disk.drive.clone())
                .map_err(|error| CliError::at(&disk.location, error))?;
            Ok(BlockDevice {
                drive: Arc::new(drive),
                id: disk.device_id.clone(),
                qom_path: disk.qom_path.clone(),
            })
        })
        .collect::<Result<_, CliError>>()?;
    let nics = guest
        .nics
        .iter()
        .map(|config| {
            let tap = config
                .open()
                .map_err(|error| CliError::at(&config.location, error))?;
            Ok(Nic {
                config: config.clone(),
                tap,
            })
        })
        .collect::<Result<_, CliError>>()?;
    let (console, serial) = Console::open(&guest.serial, say)?;
    let config = KvmConfig {
        ram_size: guest.ram_size,
        vcpus: guest.vcpus,
        boot,
        platform: PlatformConfig {
            serial,
            rtc: guest.rtc,
            ib700: guest.ib700,
            pvpanic: guest.pvpanic,
        },
        disks,
        nics,
        balloon: guest.balloon.clone(),
    };
    let platform = KvmPlatform::new(config, waker, events).map_err(CliError::bare)?;
    Ok((platform, console))
}

fn boot_source(guest: &GuestConfig) -> Result<BootSource, CliError> {
    // A regular file no larger than guest memory: not /dev/zero, not a FIFO.
    let open = |path: &std::path::Path, what: &str| {
        let fail = |why: String| {
            CliError::bare(format!("could not open {what} '{}': {why}", path.display()))
        };
        // Non-blocking, so that opening a FIFO does not wait for a writer
        // before it is turned away (reading a regular file is unaffected).
        let file = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(path)
            .map_err(|e| fail(monitor::os_error(&e)))?;
        let metadata = file.metadata().map_err(|e| fail(monitor::os_error(&e)))?;
        if !metadata.is_file() {
            return Err(fail("it is not a regular file".into()));
        }
        if metadata.len() > guest.ram_size {
            return Err(fail("it is larger than guest memory".into()));
        }
        Ok(Image::File(Arc::new(file)))
    };
    let (kernel_name, kernel) = match &guest.kernel {
        Some(path) => (path.display().to_string(), open(path, "kernel file")?),
        None => (
            "the default firmware".to_string(),
            Image::Memory(DEFAULT_FIRMWARE.to_vec()),
        ),
    };
    let initrd = match &guest.initrd {
        Some(path) => Some(open(path, "initrd")?),
        None => None,
    };
    Ok(BootSource {
        kernel_name,
        kernel,
        initrd,
        cmdline: guest.append.clone(),
    })
}
