//! What `-help`, `-version`, `-machine help` and `-accel help` print.

fn banner() -> String {
    let version = monitor::version();
    let qemu = version.qemu;
    format!(
        "QEMU emulator version {}.{}.{} ({})\n",
        qemu.major, qemu.minor, qemu.micro, version.package
    )
}

/// `-version`: QEMU's first line, which tools parse, then kvmon's own.
pub fn version() -> String {
    format!(
        "{}kvmon {}: a KVM virtual machine monitor driven over QMP\n",
        banner(),
        env!("CARGO_PKG_VERSION")
    )
}

pub fn usage() -> String {
    format!(
        "{}usage: kvmon [options]

Standard options:
-h or -help     display this help and exit
-version        display version information and exit
-machine [type=]name[,prop[=value][,...]]
                selects emulated machine ('-machine help' for list)
                property accel=accel1[:accel2[:...]] selects accelerator
-accel [accel=]accelerator
                select accelerator ('-accel help' for a list)
-enable-kvm     enable KVM full virtualization support
-S              freeze CPU at startup (use 'cont' to start)
-name string1[,process=string2][,debug-threads=on|off]
                set the name of the guest
-uuid %08x-%04x-%04x-%04x-%012x
                specify machine UUID
-m [size=]megs  guest RAM in MiB, or with a suffix (k, M, G, T); default 128M
-smp [cpus=]n   number of vCPUs: one socket of n single-threaded cores
-no-shutdown    stop before shutdown
-no-reboot      exit instead of rebooting
-action reboot=reset|shutdown,shutdown=poweroff|pause,panic=...,watchdog=...
                what guest resets, shutdowns, panics and watchdogs do

Boot options (without -kernel, kvmon's own firmware boots):
-kernel file    a PVH ELF, a 64-bit ELF vmlinux or a bzImage
-initrd file    initial ram disk
-append cmdline the kernel command line

Serial port (COM1):
-serial dev     none, null, stdio, file:PATH, unix:PATH,server=on[,wait=off],
                tcp:HOST:PORT,server=on[,wait=off] or chardev:ID
-nographic      the serial port on standard input and output

Monitor options:
-qmp dev        like -mon with mode=control: dev is unix:PATH[,server=on][,wait=off],
                tcp:[HOST]:PORT[,server=on][,wait=off], unix:fd=N or chardev:ID
-qmp-pretty dev like -qmp but uses pretty JSON formatting
-chardev socket,id=id[,path=path|host=host,port=port|fd=N][,server=on|off]
         [,wait=on|off][,reconnect=seconds|reconnect-ms=milliseconds]
                a socket a monitor serves or connects to
-mon [chardev=]name[,mode=control][,pretty[=on|off]]
                a QMP monitor on chardev 'name'

Process options:
-daemonize      daemonize kvmon after initializing
-pidfile file   write PID to 'file'

Accepted and ignored (kvmon has none of these):
-nodefaults (no serial port unless -serial) -no-user-config -display none -vga none

kvmon answers QMP as QEMU {} does; see docs/qmp/ for its commands and events.
",
        banner(),
        qemu_version()
    )
}

fn qemu_version() -> String {
    let qemu = monitor::version().qemu;
    format!("{}.{}.{}", qemu.major, qemu.minor, qemu.micro)
}

pub fn machines() -> String {
    "Supported machines are:\n\
     microvm              microvm (i386) (default)\n\
     none                 empty machine\n"
        .to_string()
}

pub fn accelerators() -> String {
    "Accelerators supported in QEMU binary:\nkvm\ntcg (only with -machine none, where no guest code runs)\n"
        .to_string()
}
