//! `cargo xtask testhost [shell]`: the test host, a machine with real KVM
//! for kvmon, built from Debian's packages into target/testhost/:
//!
//! - `vmlinuz`: Debian's generic kernel, which QEMU runs under software
//!   emulation (`-accel tcg -cpu max`: an AMD CPU with SVM, so kvm_amd loads);
//! - `initramfs.cpio`: busybox, the KVM modules, kvmon with its libraries,
//!   QEMU with its libraries and ROMs (the reference, inside too), and the
//!   guests under guest/: the same kernel as bzImage and as ELF vmlinux
//!   (PVH), its initramfs (`guest-init.sh` plays a scenario), and the
//!   firmware programs.
//!
//! `shell` then boots it with its console on this terminal.

mod cpio;
mod kernel;
mod packages;

use std::path::{Path, PathBuf};
use std::process::Command;

use cpio::Archive;
use kernel::Kernel;

/// What the test host loads besides its kernel's built-ins (dependencies
/// follow): KVM for AMD, the NIC of QEMU's `-nic user,model=e1000`, virtio
/// consoles, the harness's channels, loop devices and ext2 (as ext4,
/// which needs crc32c), for disk images that take O_DIRECT, which tmpfs
/// does not, and taps for the guests' NICs.
const HOST_MODULES: &[&str] = &[
    "kvm-amd",
    "e1000",
    "virtio_pci",
    "virtio_console",
    "loop",
    "crc32c_generic",
    "ext4",
    "tun",
];
/// What the guest's busybox acpid needs (the ACPI power button as an
/// input device), virtio-blk on virtio-mmio (found through ACPI), the ib700
/// watchdog's driver (which binds without a probe), pvpanic's (which
/// binds to the ACPI node QEMU0001), the balloon's and the NIC's.
/// rtc_cmos is built in.
const GUEST_MODULES: &[&str] = &[
    "button",
    "evdev",
    "virtio_mmio",
    "virtio_blk",
    "ib700wdt",
    "pvpanic_mmio",
    "virtio_balloon",
    "virtio_net",
];

/// Files under /usr/share that QEMU loads: its ROMs and SeaBIOS.
const QEMU_DATA: &[&str] = &["/usr/share/qemu", "/usr/share/seabios"];

pub fn run(args: &[String]) -> Result<(), String> {
    let dir = build()?;
    println!("{}", dir.join("vmlinuz").display());
    println!("{}", dir.join("initramfs.cpio").display());
    match args.first().map(String::as_str) {
        None => Ok(()),
        Some("shell") => shell(&dir),
        Some(other) => Err(format!("testhost: unknown argument {other}")),
    }
}

/// Builds the test host (packages are downloaded once; the archives are
/// rewritten each time, which takes a second); returns its directory.
pub fn build() -> Result<PathBuf, String> {
    let dir = crate::root().join("target/testhost");
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let kernel = Kernel::open(&packages::unpacked(&dir, &packages::kernel_package()?)?)?;
    let busybox = packages::unpacked(&dir, packages::BUSYBOX)?.join("bin/busybox");
    let vmlinux = dir.join(format!("vmlinux-{}", kernel.release));
    kernel::extract_vmlinux(&kernel.bzimage, &vmlinux)?;

    crate::process::run("cargo", &["build", "--release", "--package", "kvmon"], &[])?;
    let kvmon = crate::root().join("target/release/kvmon");
    let firmware = firmware_build::build(&crate::root().join("target/firmware"))?;

    let guest_initramfs = dir.join("guest-initramfs.cpio");
    let mut guest = Archive::create(&guest_initramfs)?;
    add_busybox(&mut guest, &busybox)?;
    add_modules(&mut guest, &kernel, GUEST_MODULES)?;
    guest.file("init", 0o755, include_bytes!("guest-init.sh"))?;
    guest.file("etc/acpi/PWRF/00000080", 0o755, b"#!/bin/sh\npoweroff -f\n")?;
    guest.directory("var/log")?;
    guest.finish()?;

    let mut host = Archive::create(&dir.join("initramfs.cpio"))?;
    add_busybox(&mut host, &busybox)?;
    add_modules(&mut host, &kernel, HOST_MODULES)?;
    host.file("init", 0o755, include_bytes!("host-init.sh"))?;
    add_program(&mut host, "bin/kvmon", &kvmon)?;
    add_program(
        &mut host,
        "usr/bin/qemu-system-x86_64",
        &kvmon_tests::qemu_bin(),
    )?;
    for data in QEMU_DATA {
        add_tree(&mut host, Path::new(data))?;
    }
    host.copy("guest/vmlinuz", &kernel.bzimage)?;
    host.copy("guest/vmlinux", &vmlinux)?;
    host.copy("guest/initramfs.cpio", &guest_initramfs)?;
    host.copy("guest/test-guest", &firmware.test_guest)?;
    host.copy("guest/kvmon-firmware", &firmware.default)?;
    host.finish()?;

    let link = dir.join("vmlinuz");
    let _ = std::fs::remove_file(&link);
    std::os::unix::fs::symlink(&kernel.bzimage, &link)
        .map_err(|e| format!("cannot link {}: {e}", link.display()))?;
    Ok(dir)
}

/// The static busybox, a link per applet, the root's mount points and the
/// console device (init's first stdin and stdout).
fn add_busybox(archive: &mut Archive, busybox: &Path) -> Result<(), String> {
    archive.copy("bin/busybox", busybox)?;
    let output = Command::new(busybox)
        .arg("--list")
        .output()
        .map_err(|e| format!("cannot run {}: {e}", busybox.display()))?;
    for applet in String::from_utf8_lossy(&output.stdout).lines() {
        if applet != "busybox" {
            archive.symlink(&format!("bin/{applet}"), "busybox")?;
        }
    }
    for directory in ["proc", "sys", "dev", "tmp", "root"] {
        archive.directory(directory)?;
    }
    archive.character_device("dev/console", 5, 1)
}

/// The modules under modules/, and modules/order to load them by.
fn add_modules(archive: &mut Archive, kernel: &Kernel, wanted: &[&str]) -> Result<(), String> {
    let mut order = String::new();
    for (name, file) in kernel.modules(wanted)? {
        archive.copy(&format!("modules/{name}.ko"), &file)?;
        order.push_str(&name);
        order.push('\n');
    }
    archive.file("modules/order", 0o644, order.as_bytes())
}

/// A dynamically linked program at `name`, with the libraries `ldd` finds
/// for it at the paths it finds them.
fn add_program(archive: &mut Archive, name: &str, program: &Path) -> Result<(), String> {
    archive.copy(name, program)?;
    let output = Command::new("ldd")
        .arg(program)
        .output()
        .map_err(|e| format!("cannot run ldd: {e}"))?;
    // Lines: "libc.so.6 => /lib/.../libc.so.6 (0x...)" or "/lib64/ld-linux-x86-64.so.2 (0x...)".
    for library in String::from_utf8_lossy(&output.stdout)
        .split_whitespace()
        .filter(|word| word.starts_with('/'))
    {
        archive.copy(library.trim_start_matches('/'), Path::new(library))?;
    }
    Ok(())
}

/// A host directory, at the same path, with its symbolic links as links.
fn add_tree(archive: &mut Archive, dir: &Path) -> Result<(), String> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| format!("cannot read {}: {e}", dir.display()))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let name = path.to_string_lossy();
        let name = name.trim_start_matches('/');
        let kind = entry.file_type().map_err(|e| e.to_string())?;
        if kind.is_symlink() {
            let target = std::fs::read_link(&path).map_err(|e| e.to_string())?;
            archive.symlink(name, &target.to_string_lossy())?;
        } else if kind.is_dir() {
            archive.directory(name)?;
            add_tree(archive, &path)?;
        } else {
            archive.copy(name, &path)?;
        }
    }
    Ok(())
}

/// Boots the test host with its console (and a shell) on this terminal.
fn shell(dir: &Path) -> Result<(), String> {
    let status = Command::new(kvmon_tests::qemu_bin())
        .args([
            "-accel", "tcg", "-cpu", "max", "-M", "q35", "-m", "3G", "-smp", "2",
        ])
        .args(["-nographic", "-no-reboot", "-nic", "user,model=e1000"])
        .arg("-kernel")
        .arg(dir.join("vmlinuz"))
        .arg("-initrd")
        .arg(dir.join("initramfs.cpio"))
        .args(["-append", "console=ttyS0 quiet testhost=shell"])
        .status()
        .map_err(|e| format!("cannot run QEMU: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("QEMU failed: {status}"))
    }
}
