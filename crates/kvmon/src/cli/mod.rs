//! QEMU's command line, for the options kvmon supports: single or double
//! dash, the value in the next word, every option checked before any is
//! acted on, errors as `PROG: LOCATION: MESSAGE`.

mod balloon;
mod block;
mod chardev;
mod guest;
mod help;
mod net;
mod opts;
mod peripherals;
mod platform;
mod serial;

use std::fmt;
use std::path::PathBuf;

use machine::{Actions, MachineConfig, Uuid};
use monitor::MonitorSpec;
use qmp::commands::{RebootAction, SetAction, ShutdownAction};
use qmp::schema::{Field, SchemaType};

pub use block::DiskSpec;
use chardev::{Chardev, Compat};
pub use guest::GuestConfig;
use opts::Schema;
pub use serial::SerialSpec;

/// What the command line asks for.
#[derive(Debug)]
pub enum Invocation {
    Run(Box<Config>),
    /// Print this on standard output and exit 0 (`-help`, `-version`, `help`).
    Print(String),
}

/// A checked command line.
#[derive(Debug)]
pub struct Config {
    pub machine: MachineConfig,
    /// The KVM guest; `None` for `-machine none`.
    pub guest: Option<GuestConfig>,
    /// Accelerators to try in order, each with the option that named it.
    pub accelerators: Vec<(String, Option<String>)>,
    pub monitors: Vec<MonitorSpec>,
    pub daemonize: bool,
    pub pidfile: Option<PathBuf>,
    /// `-name process=`: the name the process shows in `ps`.
    pub process_name: Option<String>,
    /// Lines to print (after `PROG: `) before starting.
    pub warnings: Vec<String>,
}

/// A command-line error: lines printed as QEMU prints them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError {
    lines: Vec<(Option<String>, String)>,
    hint: Option<String>,
}

impl CliError {
    /// `PROG: LOCATION: MESSAGE`.
    pub fn at(location: &str, message: impl Into<String>) -> Self {
        CliError {
            lines: vec![(Some(location.to_string()), message.into())],
            hint: None,
        }
    }

    /// `PROG: MESSAGE`, for errors found after the options were read.
    pub fn bare(message: impl Into<String>) -> Self {
        CliError {
            lines: vec![(None, message.into())],
            hint: None,
        }
    }

    /// A further located line.
    pub fn also(mut self, location: &str, message: impl Into<String>) -> Self {
        self.lines
            .push((Some(location.to_string()), message.into()));
        self
    }

    /// A last line printed as is.
    pub fn hint(mut self, text: &str) -> Self {
        self.hint = Some(text.to_string());
        self
    }

    /// The lines to print on standard error, each error line after `PROG: `.
    pub fn render(&self, program: &str) -> String {
        self.lines(&format!("{program}: "))
            .into_iter()
            .map(|line| line + "\n")
            .collect()
    }

    fn lines(&self, prefix: &str) -> Vec<String> {
        self.lines
            .iter()
            .map(|(location, message)| match location {
                Some(location) => format!("{prefix}{location}: {message}"),
                None => format!("{prefix}{message}"),
            })
            .chain(self.hint.clone())
            .collect()
    }
}

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.lines("").join("\n"))
    }
}

/// Every option kvmon knows, and whether it takes a value.
const OPTIONS: &[(&str, bool)] = &[
    ("h", false),
    ("help", false),
    ("version", false),
    ("machine", true),
    ("M", true),
    ("accel", true),
    ("enable-kvm", false),
    ("S", false),
    ("name", true),
    ("uuid", true),
    ("qmp", true),
    ("qmp-pretty", true),
    ("chardev", true),
    ("mon", true),
    ("daemonize", false),
    ("pidfile", true),
    ("no-shutdown", false),
    ("no-reboot", false),
    ("action", true),
    ("watchdog-action", true),
    ("rtc", true),
    ("m", true),
    ("smp", true),
    ("kernel", true),
    ("initrd", true),
    ("append", true),
    ("serial", true),
    // Harmless for kvmon: it has no user config file, default devices,
    // display or VGA.
    ("nodefaults", false),
    ("no-user-config", false),
    ("display", true),
    ("vga", true),
    ("nographic", false),
    ("drive", true),
    ("blockdev", true),
    ("device", true),
    ("netdev", true),
];

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Invocation, CliError> {
    // First pass: every option must exist and have its value.
    let mut options = Vec::new();
    let mut words = args.iter();
    while let Some(word) = words.next() {
        let Some(name) = word.strip_prefix('-') else {
            return Err(CliError::at(
                word,
                "a disk image without an option is not supported by kvmon",
            ));
        };
        let name = name.strip_prefix('-').unwrap_or(name);
        let Some(&(name, takes_value)) = OPTIONS.iter().find(|(known, _)| *known == name) else {
            return Err(CliError::at(word, "invalid option"));
        };
        let value = if takes_value {
            let value = words
                .next()
                .ok_or_else(|| CliError::at(word, "requires an argument"))?;
            Some(value.as_str())
        } else {
            None
        };
        options.push((name, word.as_str(), value));
    }
    // Second pass: act on them in order.
    let mut builder = Builder::default();
    for (name, typed, value) in options {
        if let Some(text) = builder.apply(name, typed, value.unwrap_or_default())? {
            return Ok(Invocation::Print(text));
        }
    }
    builder
        .finish()
        .map(|config| Invocation::Run(Box::new(config)))
}

#[derive(Debug, Default)]
struct Builder {
    machine: opts::Opts,
    machine_location: Option<String>,
    accel_options: Vec<(String, String)>,
    enable_kvm: bool,
    name: opts::Opts,
    uuid: Option<Uuid>,
    start_paused: bool,
    actions: Actions,
    ram_size: Option<u64>,
    vcpus: Option<u32>,
    kernel: Option<PathBuf>,
    initrd: Option<(PathBuf, String)>,
    append: Option<(String, String)>,
    serials: Vec<SerialSpec>,
    /// Where `-serial stdio` was given, which `-daemonize` cannot have.
    stdio_serial: Option<String>,
    nographic: bool,
    nodefaults: bool,
    daemonize: bool,
    pidfile: Option<PathBuf>,
    chardevs: Vec<Chardev>,
    /// Monitors in the order they were asked for: chardev id, pretty, location.
    mons: Vec<(String, bool, String)>,
    compat_count: usize,
    disks: block::Disks,
    balloon: Option<machine::BalloonConfig>,
    net: net::Netdevs,
    peripherals: peripherals::Peripherals,
    platform: platform::Platform,
    warnings: Vec<String>,
}

impl Builder {
    /// Acts on one option; returns text to print for `help` requests.
    fn apply(&mut self, name: &str, typed: &str, value: &str) -> Result<Option<String>, CliError> {
        let location = format!("{typed} {value}");
        match name {
            "h" | "help" => return Ok(Some(help::usage())),
            "version" => return Ok(Some(help::version())),
            "machine" | "M" => {
                let opts = opts::parse_keyval(value, "type", &location)?;
                if opts.get("type") == Some("help") {
                    return Ok(Some(help::machines()));
                }
                self.machine.merge(opts);
                self.machine_location = Some(location);
            }
            "accel" => {
                const ACCEL: Schema<'static> = Schema {
                    implied: Some("accel"),
                    strings: &["accel"],
                    booleans: &[],
                };
                let accel = value.split(',').next().unwrap_or_default();
                if accel == "help" {
                    return Ok(Some(help::accelerators()));
                }
                if let Some(property) = value.split(',').nth(1).and_then(|p| p.split('=').next()) {
                    return Err(CliError::at(
                        &location,
                        format!("Property '{accel}-accel.{property}' not found"),
                    ));
                }
                let opts = opts::parse(value, &ACCEL, &location)?;
                let accel = opts.get("accel").unwrap_or_default();
                if !matches!(accel, "kvm" | "tcg") {
                    return Err(CliError::at(
                        &location,
                        format!("invalid accelerator {accel}"),
                    ));
                }
                self.accel_options.push((accel.to_string(), location));
            }
            "enable-kvm" => self.enable_kvm = true,
            "S" => self.start_paused = true,
            "name" => {
                const NAME: Schema<'static> = Schema {
                    implied: Some("guest"),
                    strings: &["guest", "process"],
                    booleans: &["debug-threads"],
                };
                self.name.merge(opts::parse(value, &NAME, &location)?);
            }
            "uuid" => {
                self.uuid = Some(value.parse().map_err(|()| {
                    CliError::at(&location, "failed to parse UUID string: wrong format")
                })?);
            }
            "qmp" | "qmp-pretty" => {
                let index = self.compat_count;
                self.compat_count += 1;
                let pretty = name == "qmp-pretty";
                match chardev::parse_compat(typed, value, index)? {
                    Compat::Socket(chardev) => {
                        self.mons
                            .push((chardev.id.clone(), pretty, location.clone()));
                        self.add_chardev(chardev, &location)?;
                    }
                    Compat::Existing { id, location } => self.mons.push((id, pretty, location)),
                }
            }
            "chardev" => {
                let chardev = chardev::parse_chardev(value, &mut self.warnings)?;
                self.add_chardev(chardev, &location)?;
            }
            "mon" => {
                let mon = chardev::parse_mon(value, &mut self.warnings)?;
                self.mons.push((mon.chardev, mon.pretty, mon.location));
            }
            "daemonize" => self.daemonize = true,
            "pidfile" => self.pidfile = Some(PathBuf::from(value)),
            "no-shutdown" => self.actions.shutdown = ShutdownAction::Pause,
            "no-reboot" => self.actions.reboot = RebootAction::Shutdown,
            "action" => self.action(value, &location)?,
            // QEMU's shorthand for -action watchdog=.
            "watchdog-action" => self.action(&format!("watchdog={value}"), &location)?,
            "rtc" => self.platform.rtc(value, &location)?,
            "m" => self.ram_size = Some(guest::parse_memory(value, &location)?),
            "smp" => self.vcpus = Some(guest::parse_smp(value, &location)?),
            "kernel" => self.kernel = Some(PathBuf::from(value)),
            "initrd" => self.initrd = Some((PathBuf::from(value), location)),
            "append" => self.append = Some((value.to_string(), location)),
            "serial" => {
                let spec = serial::parse(value, self.serials.len())?;
                if matches!(spec, SerialSpec::Stdio) {
                    self.stdio_serial = Some(location.clone());
                }
                self.serials.push(spec);
                if self.serials.len() > 1 {
                    return Err(CliError::at(&location, "kvmon has one serial port (COM1)"));
                }
            }
            "nographic" => self.nographic = true,
            "drive" => self.disks.drive(value, &location, &mut self.peripherals)?,
            "netdev" => self.net.netdev(value, &location)?,
            "blockdev" => self.disks.blockdev(value, &location)?,
            "device" => self.device(value, &location)?,
            "nodefaults" => self.nodefaults = true,
            "display" if value.split(',').next() != Some("none") => {
                return Err(CliError::at(
                    &location,
                    "kvmon has no display; only '-display none' is accepted",
                ))
            }
            "vga" if value != "none" => {
                return Err(CliError::at(
                    &location,
                    "kvmon has no VGA devices; only '-vga none' is accepted",
                ))
            }
            // The rest are harmless.
            _ => {}
        }
        Ok(None)
    }

    /// `-device`: the disks' (virtio-blk-device), the balloon, the ib700
    /// watchdog and pvpanic.  As QEMU, a device takes its place in the QOM
    /// tree before its properties are set.
    fn device(&mut self, value: &str, location: &str) -> Result<(), CliError> {
        let opts = block::structured(value, location)?;
        let driver = match opts.get("driver") {
            Some(
                driver @ ("virtio-blk-device"
                | "virtio-net-device"
                | "virtio-balloon-device"
                | "ib700"
                | "pvpanic"),
            ) => driver,
            Some(pci @ ("virtio-blk-pci" | "virtio-net-pci" | "virtio-balloon-pci")) => {
                let mmio = pci.replace("-pci", "-device");
                return Err(CliError::at(
                    location,
                    format!("kvmon's virtio devices are virtio-mmio: use {mmio}"),
                ));
            }
            Some(other) => {
                return Err(CliError::at(
                    location,
                    format!("'{other}' is not a valid device model name"),
                ))
            }
            None => return Err(CliError::at(location, "Parameter 'driver' is missing")),
        };
        let qom_path = self
            .peripherals
            .place(opts.get("id"))
            .map_err(|message| CliError::at(location, message))?;
        match driver {
            "virtio-blk-device" => self.disks.device(&opts, location, qom_path),
            "virtio-net-device" => self.net.device(&opts, location, qom_path),
            "virtio-balloon-device" => {
                let spec = balloon::device(&opts, location, qom_path, self.balloon.as_ref())?;
                self.balloon = Some(spec);
                Ok(())
            }
            "ib700" => self.platform.ib700(&opts, location),
            _ => self.platform.pvpanic(&opts, location),
        }
    }

    fn add_chardev(&mut self, chardev: Chardev, location: &str) -> Result<(), CliError> {
        if self.chardevs.iter().any(|other| other.id == chardev.id) {
            return Err(CliError::at(
                location,
                format!("Duplicate ID '{}' for chardev", chardev.id),
            ));
        }
        self.chardevs.push(chardev);
        Ok(())
    }

    /// `-action reboot=...,shutdown=...,panic=...,watchdog=...`: the
    /// arguments of QMP `set-action`, checked by its schema.
    fn action(&mut self, value: &str, location: &str) -> Result<(), CliError> {
        const ACTION: Schema<'static> = Schema {
            implied: None,
            strings: &["reboot", "shutdown", "panic", "watchdog"],
            booleans: &[],
        };
        let opts = opts::parse(value, &ACTION, location)?;
        let arguments: qmp::json::Map<String, qmp::Value> = opts
            .keys()
            .filter_map(|key| Some((key.to_string(), qmp::Value::from(opts.get(key)?))))
            .collect();
        let set = SetAction::from_value(&qmp::Value::Object(arguments), &Field::root())
            .map_err(|error| CliError::at(location, error.desc))?;
        self.actions.apply(&set);
        Ok(())
    }

    fn finish(mut self) -> Result<Config, CliError> {
        if self.daemonize {
            // -nographic puts the default serial port (and QEMU's monitor)
            // on stdio, which a daemon does not have.
            if self.nographic && !self.nodefaults && self.serials.is_empty() {
                return Err(CliError::bare("-nographic cannot be used with -daemonize"));
            }
            if let Some(location) = &self.stdio_serial {
                return Err(CliError::at(location, "cannot use stdio with -daemonize"));
            }
        }
        let machine_type = self.machine.get("type").unwrap_or("microvm").to_string();
        let guest = match machine_type.as_str() {
            "none" => {
                if let Some(property) = self.machine_property(&[]) {
                    return Err(CliError::bare(format!(
                        "Property 'none-machine.{property}' not found"
                    )));
                }
                None
            }
            "microvm" => {
                if let Some(rtc) = self.machine.get("rtc") {
                    self.platform.machine_rtc(rtc)?;
                }
                if let Some(property) = self.machine_property(&["rtc"]) {
                    return Err(CliError::bare(format!(
                        "Property 'microvm-machine.{property}' is not supported by kvmon"
                    )));
                }
                Some(self.guest()?)
            }
            other => {
                return Err(
                    CliError::bare(format!("unsupported machine type: \"{other}\""))
                        .hint("Use -machine help to list supported machines"),
                )
            }
        };
        let accelerators = self.accelerators(guest.is_some())?;
        let monitors = self.monitors()?;
        let name = self.name.get("guest").filter(|name| !name.is_empty());
        Ok(Config {
            machine: MachineConfig {
                name: name.map(str::to_string),
                uuid: self.uuid,
                start_paused: self.start_paused,
                actions: self.actions,
                kvm_enabled: false,
            },
            guest,
            accelerators,
            monitors,
            daemonize: self.daemonize,
            pidfile: self.pidfile,
            process_name: self.name.get("process").map(str::to_string),
            warnings: self.warnings,
        })
    }

    /// A machine property other than the accelerator and `known`.
    fn machine_property(&self, known: &[&str]) -> Option<&str> {
        self.machine
            .keys()
            .find(|key| !matches!(*key, "type" | "accel") && !known.contains(key))
    }

    /// The KVM guest: memory, vCPUs, what to boot and the serial port.  A
    /// `-serial chardev:ID` takes its socket chardev away from the monitors.
    fn guest(&mut self) -> Result<GuestConfig, CliError> {
        if self.kernel.is_none() {
            if let Some((_, location)) = &self.initrd {
                return Err(CliError::at(
                    location,
                    "-initrd only allowed with -kernel option",
                ));
            }
            if let Some((_, location)) = &self.append {
                return Err(CliError::at(
                    location,
                    "-append only allowed with -kernel option",
                ));
            }
        }
        let serial = match self.serials.pop() {
            Some(SerialSpec::Chardev { id, location }) => {
                let Some(index) = self.chardevs.iter().position(|c| c.id == id) else {
                    return Err(CliError::at(
                        &location,
                        format!("chardev \"{id}\" not found"),
                    ));
                };
                if self.mons.iter().any(|(used, _, _)| *used == id) {
                    return Err(CliError::at(
                        &location,
                        format!("chardev '{id}' is already in use"),
                    ));
                }
                let chardev = self.chardevs.remove(index);
                serial::check_server(&chardev, &location)?;
                SerialSpec::Socket(chardev)
            }
            Some(spec) => spec,
            None if self.nographic => SerialSpec::Stdio,
            None if self.nodefaults => SerialSpec::None,
            None => SerialSpec::Null,
        };
        Ok(GuestConfig {
            ram_size: self.ram_size.unwrap_or(guest::DEFAULT_RAM),
            vcpus: self.vcpus.unwrap_or(1),
            kernel: self.kernel.clone(),
            initrd: self.initrd.as_ref().map(|(path, _)| path.clone()),
            append: self
                .append
                .as_ref()
                .map(|(text, _)| text.clone())
                .unwrap_or_default(),
            serial,
            disks: std::mem::take(&mut self.disks).finish()?,
            rtc: self.platform.rtc_config(),
            ib700: self.platform.ib700_config(),
            pvpanic: self.platform.pvpanic_config(),
            balloon: self.balloon.clone(),
            nics: std::mem::take(&mut self.net).finish(&mut self.warnings),
        })
    }

    /// The accelerators to try: from `-accel`, else `-machine accel=` (or
    /// `-enable-kvm`), else QEMU's default for this machine, tcg.
    /// kvmon runs guest code only with KVM, so KVM is the guest's default.
    fn accelerators(&self, guest: bool) -> Result<Vec<(String, Option<String>)>, CliError> {
        let machine_accel = self
            .machine
            .get("accel")
            .map(str::to_string)
            .or_else(|| self.enable_kvm.then(|| "kvm".to_string()));
        match (machine_accel, self.accel_options.is_empty()) {
            (Some(_), false) => Err(CliError::bare(
                "The -accel and \"-machine accel=\" options are incompatible",
            )),
            (Some(list), true) => Ok(list
                .split(':')
                .map(|name| (name.to_string(), None))
                .collect()),
            (None, false) => Ok(self
                .accel_options
                .iter()
                .map(|(name, location)| (name.clone(), Some(location.clone())))
                .collect()),
            (None, true) if guest => Ok(vec![("kvm".to_string(), None)]),
            (None, true) => Ok(vec![("tcg".to_string(), None)]),
        }
    }

    /// One monitor per `-qmp` and `-mon`, in the order the chardevs were
    /// created, as QEMU creates them.
    fn monitors(&self) -> Result<Vec<MonitorSpec>, CliError> {
        let mut used: Vec<(usize, bool)> = Vec::new();
        for (id, pretty, location) in &self.mons {
            let Some(index) = self.chardevs.iter().position(|chardev| chardev.id == *id) else {
                return Err(CliError::at(
                    location,
                    format!("chardev \"{id}\" not found"),
                ));
            };
            if used.iter().any(|(other, _)| *other == index) {
                return Err(CliError::at(
                    location,
                    format!("chardev '{id}' is already in use"),
                ));
            }
            used.push((index, *pretty));
        }
        used.sort_by_key(|(index, _)| *index);
        for (index, chardev) in self.chardevs.iter().enumerate() {
            if !used.iter().any(|(other, _)| *other == index) {
                log::warn!("chardev '{}' is not used by any monitor", chardev.id);
            }
        }
        Ok(used
            .into_iter()
            .map(|(index, pretty)| self.chardevs[index].monitor(pretty))
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use monitor::socket::SocketAddress;

    fn run(args: &str) -> Result<Config, String> {
        let args: Vec<String> = args.split_whitespace().map(str::to_string).collect();
        match parse(&args) {
            Ok(Invocation::Run(config)) => Ok(*config),
            Ok(Invocation::Print(text)) => Err(format!(
                "print: {}",
                text.lines().next().unwrap_or_default()
            )),
            Err(error) => Err(error.to_string()),
        }
    }

    #[test]
    fn platform_devices_take_qemus_options() {
        let config = run("-rtc base=2006-06-17,clock=vm,driftfix=slew -device ib700 \
             -device pvpanic,ioport=0x506,events=1 -watchdog-action pause")
        .unwrap();
        let guest = config.guest.unwrap();
        let rtc = guest.rtc.unwrap();
        assert_eq!(rtc.base, machine::kvm::RtcBase::At(1_150_502_400));
        assert_eq!(rtc.clock, machine::kvm::RtcClock::Vm);
        assert!(guest.ib700);
        let pvpanic = guest.pvpanic.unwrap();
        assert_eq!((pvpanic.port, pvpanic.events), (0x506, 1));
        assert_eq!(
            config.machine.actions.watchdog,
            qmp::commands::WatchdogAction::Pause
        );
        let guest = run("-M microvm,rtc=off").unwrap().guest.unwrap();
        assert!(guest.rtc.is_none() && !guest.ib700 && guest.pvpanic.is_none());
        assert!(run("-M microvm,rtc=on")
            .unwrap()
            .guest
            .unwrap()
            .rtc
            .is_some());
    }

    #[test]
    fn platform_device_errors_are_qemus() {
        for (args, error) in [
            ("-rtc clock=bogus", "invalid option value 'bogus'"),
            ("-rtc driftfix=x", "invalid option value 'x'"),
            ("-rtc foo=1", "-rtc foo=1: Invalid parameter 'foo'"),
            (
                "-rtc base=1969-12-31T23:59:59",
                "invalid datetime format\nvalid formats: '2006-06-17T16:01:21' or '2006-06-17'",
            ),
            (
                "-watchdog-action RESET",
                "-watchdog-action RESET: Parameter 'watchdog' does not accept value 'RESET'",
            ),
            (
                "-device ib700,foo=1",
                "-device ib700,foo=1: Property 'ib700.foo' not found",
            ),
            (
                "-device pvpanic,ioport=0x10000",
                "-device pvpanic,ioport=0x10000: Parameter 'ioport' expects uint16_t",
            ),
            (
                "-device pvpanic,events=abc",
                "-device pvpanic,events=abc: Parameter 'events' expects integer",
            ),
            (
                "-device pvpanic -device pvpanic",
                "-device pvpanic: duplicate fw_cfg file name: etc/pvpanic-port",
            ),
            (
                "-M microvm,rtc=bogus",
                "Parameter 'rtc' does not accept value 'bogus'",
            ),
        ] {
            assert_eq!(run(args).unwrap_err(), error, "{args}");
        }
    }

    #[test]
    fn the_balloon_takes_qemus_properties_and_devices_their_qom_paths() {
        let config = run("-drive file=/dev/null,if=virtio -device ib700 \
             -device virtio-balloon-device,deflate-on-oom=on,free-page-reporting=yes,\
             guest-stats-polling-interval=5")
        .unwrap();
        let balloon = config.guest.unwrap().balloon.unwrap();
        assert_eq!(
            balloon.options,
            virtio::balloon::BalloonOptions {
                deflate_on_oom: true,
                free_page_reporting: true,
                stats_polling_interval: 5,
            }
        );
        // The disk and the watchdog came first.
        assert_eq!(balloon.qom_path, "/machine/peripheral-anon/device[2]");
        let config = run("-device virtio-balloon-device,id=b0").unwrap();
        let balloon = config.guest.unwrap().balloon.unwrap();
        assert_eq!(balloon.qom_path, "/machine/peripheral/b0");
        assert_eq!(balloon.options, Default::default());
    }

    #[test]
    fn balloon_errors_are_qemus() {
        let device = "-device virtio-balloon-device";
        for (args, error) in [
            (
                format!("{device},deflate-on-oom=maybe"),
                format!("{device},deflate-on-oom=maybe: Parameter 'deflate-on-oom' expects 'on' or 'off'"),
            ),
            (
                format!("{device},bogus=1"),
                format!("{device},bogus=1: Property 'virtio-balloon-device.bogus' not found"),
            ),
            (
                format!("{device},id=b1 {device},id=b2"),
                format!("{device},id=b2: Only one balloon device is supported"),
            ),
            (
                format!("{device},id=a -device ib700,id=a"),
                "-device ib700,id=a: Duplicate ID 'a' for device".to_string(),
            ),
            (
                format!("{device},guest-stats-polling-interval=-1"),
                format!("{device},guest-stats-polling-interval=-1: timer value must be greater than zero"),
            ),
            (
                "-device virtio-balloon-pci".to_string(),
                "-device virtio-balloon-pci: kvmon's virtio devices are virtio-mmio: use virtio-balloon-device".to_string(),
            ),
        ] {
            assert_eq!(run(&args).unwrap_err(), error, "{args}");
        }
    }

    #[test]
    fn nics_take_qemus_options_names_and_addresses() {
        let config = run(
            "-netdev tap,id=n0,ifname=abcdefghijklmnopqrstu,script=no,downscript=no \
             -netdev tap,id=n1,fd=3 -netdev tap,id=n2 \
             -device virtio-net-device,netdev=n0,mac=52:54:00:12:34:57 \
             -device virtio-net-device,netdev=n1 -device virtio-net-device,netdev=n2,id=nic2",
        )
        .unwrap();
        let nics = config.guest.unwrap().nics;
        let named: Vec<_> = nics
            .iter()
            .map(|nic| (nic.name.as_str(), nic.mac[5]))
            .collect();
        assert_eq!(
            named,
            [
                ("virtio-net-device.0", 0x57),
                ("virtio-net-device.1", 0x56),
                ("nic2", 0x58)
            ]
        );
        assert_eq!(
            nics[0].source,
            machine::TapSource::Name("abcdefghijklmno".into())
        );
        assert_eq!(nics[1].source, machine::TapSource::Fd(3));
        assert_eq!(nics[2].qom_path, "/machine/peripheral/nic2");
        let config = run("-netdev tap,id=lonely").unwrap();
        assert_eq!(config.warnings, ["netdev lonely has no peer"]);
    }

    #[test]
    fn nic_errors_are_qemus() {
        let tap = "-netdev tap,id=n0,ifname=t0,script=no,downscript=no";
        for (args, error) in [
            ("-netdev tap,ifname=t0".to_string(), "-netdev tap,ifname=t0: Parameter 'id' is missing".to_string()),
            (format!("{tap} {tap}"), format!("{tap}: Duplicate ID 'n0' for netdev")),
            ("-netdev tap,id=n0,bogus=1".into(), "-netdev tap,id=n0,bogus=1: Invalid parameter 'bogus'".into()),
            ("-netdev bogus,id=n0".into(), "-netdev bogus,id=n0: Parameter 'type' does not accept value 'bogus'".into()),
            ("-netdev tap,id=n0,fd=abc".into(), "-netdev tap,id=n0,fd=abc: Invalid file descriptor number 'abc'".into()),
            (
                "-netdev tap,id=n0,fd=3,ifname=x".into(),
                "-netdev tap,id=n0,fd=3,ifname=x: ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and vhostfds= are invalid with fd=".into(),
            ),
            (
                "-device virtio-net-device,netdev=nope".into(),
                "-device virtio-net-device,netdev=nope: Property 'virtio-net-device.netdev' can't find value 'nope'".into(),
            ),
            (
                format!("{tap} -device virtio-net-device,netdev=n0 -device virtio-net-device,netdev=n0"),
                "-device virtio-net-device,netdev=n0: Property 'virtio-net-device.netdev' can't take value 'n0', it's in use".into(),
            ),
            (
                format!("{tap} -device virtio-net-device,netdev=n0,mac=zz"),
                "-device virtio-net-device,netdev=n0,mac=zz: Property 'virtio-net-device.mac' doesn't take value 'zz'".into(),
            ),
            (
                format!("{tap} -device virtio-net-device,netdev=n0,bogus=1"),
                "-device virtio-net-device,netdev=n0,bogus=1: Property 'virtio-net-device.bogus' not found".into(),
            ),
        ] {
            assert_eq!(run(&args).unwrap_err(), error, "{args}");
        }
    }

    #[test]
    fn action_takes_set_actions_arguments_and_errors() {
        let config = run("-M none -no-reboot -action shutdown=pause,panic=none").unwrap();
        let actions = config.machine.actions;
        assert_eq!(actions.reboot, RebootAction::Shutdown);
        assert_eq!(actions.shutdown, ShutdownAction::Pause);
        assert_eq!(actions.panic, qmp::commands::PanicAction::None);
        assert_eq!(
            run("-action shutdown=sleep").unwrap_err(),
            "-action shutdown=sleep: Parameter 'shutdown' does not accept value 'sleep'"
        );
        assert_eq!(
            run("-action foo=bar").unwrap_err(),
            "-action foo=bar: Invalid parameter 'foo'"
        );
    }

    #[test]
    fn the_issue_command_line() {
        let config = run("-machine none -S -qmp unix:/tmp/q.sock,server=on,wait=off").unwrap();
        assert!(config.machine.start_paused);
        assert_eq!(config.monitors.len(), 1);
        assert_eq!(
            config.monitors[0].address,
            SocketAddress::Unix("/tmp/q.sock".into())
        );
        assert_eq!(config.monitors[0].chardev, "compat_monitor0");
        assert_eq!(config.accelerators, [("tcg".to_string(), None)]);
    }

    #[test]
    fn libvirt_probe_line() {
        let config = run("-S -no-user-config -nodefaults -nographic -machine none,accel=kvm:tcg -qmp unix:/tmp/p/qmp.monitor,server=on,wait=off -pidfile /tmp/p/qmp.pid -daemonize").unwrap();
        assert!(config.daemonize);
        assert_eq!(config.pidfile, Some(PathBuf::from("/tmp/p/qmp.pid")));
        let names: Vec<&str> = config
            .accelerators
            .iter()
            .map(|(n, _)| n.as_str())
            .collect();
        assert_eq!(names, ["kvm", "tcg"]);
    }

    #[test]
    fn chardev_and_mon_in_either_order() {
        let config = run("-M none -mon chardev=m,mode=control,pretty=on -chardev socket,id=m,fd=5 -qmp tcp:127.0.0.1:4444,server=on,wait=off").unwrap();
        assert_eq!(config.monitors.len(), 2);
        assert_eq!(config.monitors[0].chardev, "m");
        assert!(config.monitors[0].pretty);
        assert_eq!(config.monitors[1].chardev, "compat_monitor0");
    }

    #[test]
    fn errors_read_as_qemus() {
        assert_eq!(
            run("-machine none -foo").unwrap_err(),
            "-foo: invalid option"
        );
        assert_eq!(run("-version -foo").unwrap_err(), "-foo: invalid option");
        assert_eq!(
            run("-machine none -qmp").unwrap_err(),
            "-qmp: requires an argument"
        );
        assert_eq!(
            run("-machine none -qmp=unix:/x").unwrap_err(),
            "-qmp=unix:/x: invalid option"
        );
        assert_eq!(
            run("--machine none --version").unwrap_err(),
            "print: QEMU emulator version 10.0.0 (kvmon-0.1.0)"
        );
        assert_eq!(
            run("-machine pc").unwrap_err(),
            "unsupported machine type: \"pc\"\nUse -machine help to list supported machines"
        );
        assert_eq!(
            run("-machine none,foo=bar").unwrap_err(),
            "Property 'none-machine.foo' not found"
        );
        assert_eq!(
            run("-machine none -uuid bogus").unwrap_err(),
            "-uuid bogus: failed to parse UUID string: wrong format"
        );
        assert_eq!(
            run("-machine none -accel kvm,x=y").unwrap_err(),
            "-accel kvm,x=y: Property 'kvm-accel.x' not found"
        );
        assert_eq!(
            run("-machine none -accel kvm:tcg").unwrap_err(),
            "-accel kvm:tcg: invalid accelerator kvm:tcg"
        );
        assert_eq!(
            run("-machine none,accel=kvm -accel tcg").unwrap_err(),
            "The -accel and \"-machine accel=\" options are incompatible"
        );
        assert_eq!(
            run("-machine none -mon chardev=y,mode=control").unwrap_err(),
            "-mon chardev=y,mode=control: chardev \"y\" not found"
        );
        assert_eq!(
            run("-machine none -chardev socket,id=x,fd=3 -chardev socket,id=x,fd=4").unwrap_err(),
            "-chardev socket,id=x,fd=4: Duplicate ID 'x' for chardev"
        );
        assert_eq!(
            run("-machine none -chardev socket,id=compat_monitor0,fd=3 -qmp unix:/tmp/x,server=on")
                .unwrap_err(),
            "-qmp unix:/tmp/x,server=on: Duplicate ID 'compat_monitor0' for chardev"
        );
        assert_eq!(
            run("-machine none -chardev socket,id=x,host=::1,port=4,ipv4=on").unwrap_err(),
            "-chardev socket,id=x,host=::1,port=4,ipv4=on: chardev option 'ipv4' is not supported by kvmon"
        );
        assert_eq!(
            run("-machine none -display gtk").unwrap_err(),
            "-display gtk: kvmon has no display; only '-display none' is accepted"
        );
        assert!(run("-machine none foo.img")
            .unwrap_err()
            .starts_with("foo.img: "));
    }

    #[test]
    fn name_and_uuid() {
        let config = run("-M none -name guest=vm1,,x,debug-threads=on -uuid 6A1E4BC2-1B4F-4D5A-9E3B-00112233AABB").unwrap();
        assert_eq!(config.machine.name.as_deref(), Some("vm1,x"));
        assert_eq!(
            config.machine.uuid.unwrap().to_string(),
            "6a1e4bc2-1b4f-4d5a-9e3b-00112233aabb"
        );
    }
}
