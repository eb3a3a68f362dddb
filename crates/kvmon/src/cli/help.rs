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
-no-shutdown    stop before shutdown
-no-reboot      exit instead of rebooting

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
-nodefaults -no-user-config -nographic -display none -vga none

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
    "Supported machines are:\nnone                 empty machine\n".to_string()
}

pub fn accelerators() -> String {
    "Accelerators supported in QEMU binary:\nkvm\ntcg (only with -machine none, where no guest code runs)\n"
        .to_string()
}
