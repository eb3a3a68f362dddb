//! The machine the monitor drives: its run states and lifecycle, and the
//! machine commands, over a platform — KVM with vCPUs and devices, or
//! nothing at all for `-machine none` (what libvirt probes with).

use events::{
    BlockIoErrorEvent, GuestCrashloadedEvent, GuestPanickedEvent, GuestPvshutdownEvent,
    PowerdownEvent, Publisher, WatchdogEvent,
};
use qmp::commands::{
    Balloon, BalloonInfo, BlockInfo, BlockResize, BlockStats, Cont, CpuInfoFast, GuestPanicAction,
    Handles, InjectNmi, KvmInfo, MachineCommands, NameInfo, PanicAction, QomGet, QomSet,
    QueryBalloon, QueryBlock, QueryBlockstats, QueryCpusFast, QueryKvm, QueryName, QueryRxFilter,
    QueryStatus, QueryTarget, QueryUuid, Quit, RxFilterInfo, SetAction, SetLink, ShutdownAction,
    Stop, SysEmuTarget, SystemPowerdown, SystemReset, TargetInfo, UuidInfo, WatchdogAction,
    WatchdogSetAction,
};
use qmp::types::{BlockErrorAction, IoOperationType, RunState, ShutdownCause, StatusInfo};
use qmp::QmpError;

use devices::{DeviceRequest, PanicEvent};
use virtio::block::{ErrorAction, IoError};

use crate::balloon::{self, BalloonDevice};
use crate::block::{self, BlockDevice};
use crate::lifecycle::{Execution, Lifecycle, NoVcpus};
use crate::net::{self, NetDevice};
use crate::qom::{self, QomObject};
use crate::MachineConfig;

/// What vCPU threads and devices ask of the machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Request {
    Device(DeviceRequest),
    /// KVM could not run vCPU `cpu`; the VM stops in internal-error.
    InternalError {
        cpu: u32,
    },
    /// A block device's request failed in the host.
    IoError(IoError),
}

/// What a machine is made of, beneath its run states.
pub trait Platform: Execution + Send {
    /// `system_powerdown`: tell the guest (the ACPI power button).
    fn press_power_button(&mut self) {}

    fn inject_nmi(&mut self) -> Result<(), QmpError> {
        Err(QmpError::generic("machine does not provide NMIs"))
    }

    fn cpus(&self) -> Vec<CpuInfoFast> {
        Vec::new()
    }

    /// Requests that arrived since the last call.
    fn take_requests(&mut self) -> Vec<Request> {
        Vec::new()
    }

    /// Input for the guest's serial console; returns how much was taken.
    fn console_input(&mut self, data: &[u8]) -> usize {
        data.len()
    }

    /// Its disks.
    fn disks(&self) -> &[BlockDevice] {
        &[]
    }

    fn balloon(&self) -> Option<&BalloonDevice> {
        None
    }

    fn nics(&self) -> &[NetDevice] {
        &[]
    }

    /// Stops the vCPUs for good, before kvmon exits.
    fn finish(&mut self) {}
}

impl Platform for NoVcpus {}

#[derive(Debug)]
pub struct Vm {
    config: MachineConfig,
    lifecycle: Lifecycle,
    platform: Box<dyn Platform>,
    events: Publisher,
}

impl Vm {
    /// A machine on `platform`, whose vCPUs are parked until `launch`.
    pub fn new(config: MachineConfig, platform: Box<dyn Platform>, events: Publisher) -> Vm {
        let lifecycle = Lifecycle::new(config.start_paused, config.actions, events.clone());
        Vm {
            config,
            lifecycle,
            platform,
            events,
        }
    }

    /// `-machine none`.
    pub fn none(config: MachineConfig, events: Publisher) -> Vm {
        Vm::new(config, Box::new(NoVcpus), events)
    }

    /// Lets the vCPUs run, once the monitors are up, unless `-S` asked for
    /// prelaunch.
    pub fn launch(&mut self) {
        if self.lifecycle.states.is_running() {
            self.platform.resume();
        }
    }

    /// A shutdown requested from outside the guest, e.g. on SIGTERM.
    pub fn shutdown(&mut self, cause: ShutdownCause) {
        self.lifecycle.shutdown(cause, &mut *self.platform);
    }

    /// Acts on what the vCPUs and devices asked for since the last call.
    pub fn process_requests(&mut self) {
        let mut requests = self.platform.take_requests();
        requests.dedup();
        for request in requests {
            if self.lifecycle.exit_status().is_some() {
                return;
            }
            match request {
                Request::Device(DeviceRequest::Reset) => self
                    .lifecycle
                    .reset(ShutdownCause::GuestReset, &mut *self.platform),
                Request::Device(DeviceRequest::PowerOff) => self
                    .lifecycle
                    .shutdown(ShutdownCause::GuestShutdown, &mut *self.platform),
                Request::Device(DeviceRequest::WatchdogExpired) => self.watchdog_expired(),
                Request::Device(DeviceRequest::Panic(event)) => self.guest_panic(event),
                Request::InternalError { cpu } => {
                    log::error!("vCPU {cpu} cannot go on: the VM stops in internal-error");
                    self.lifecycle
                        .stop(RunState::InternalError, &mut *self.platform);
                }
                Request::IoError(error) => self.io_error(&error),
            }
        }
    }

    /// QEMU's `system_powerdown`: POWERDOWN, and the guest is told.
    fn power_down(&mut self) {
        self.events.publish(PowerdownEvent {});
        self.platform.press_power_button();
    }

    /// As QEMU's watchdog_perform_action: WATCHDOG, then the action at
    /// once (the event may be throttled; the action never is).
    fn watchdog_expired(&mut self) {
        let action = self.lifecycle.actions.watchdog;
        log::info!("the watchdog expired: {action}");
        self.events.publish(WatchdogEvent { action });
        let platform = &mut *self.platform;
        match action {
            WatchdogAction::Reset => self.lifecycle.reset(ShutdownCause::GuestReset, platform),
            WatchdogAction::Shutdown => self.power_down(),
            // QEMU exits at once: no SHUTDOWN event.
            WatchdogAction::Poweroff => self.lifecycle.exit(0),
            WatchdogAction::Pause => self.lifecycle.stop(RunState::Watchdog, platform),
            WatchdogAction::Debug => eprintln!("watchdog: timer fired"),
            WatchdogAction::None => {}
            WatchdogAction::InjectNmi => {
                if let Err(error) = platform.inject_nmi() {
                    log::error!("the watchdog cannot inject an NMI: {}", error.desc);
                }
            }
        }
    }

    /// As QEMU's qemu_system_guest_panicked and pvpanic's other events.
    fn guest_panic(&mut self, event: PanicEvent) {
        let actions = self.lifecycle.actions;
        let platform = &mut *self.platform;
        match event {
            PanicEvent::Panicked => {
                let action = match (actions.panic, actions.shutdown) {
                    (PanicAction::Pause, _) | (PanicAction::Shutdown, ShutdownAction::Pause) => {
                        GuestPanicAction::Pause
                    }
                    (PanicAction::Shutdown | PanicAction::ExitFailure, _) => {
                        GuestPanicAction::Poweroff
                    }
                    (PanicAction::None, _) => GuestPanicAction::Run,
                };
                log::info!("the guest panicked: {action}");
                self.events
                    .publish(GuestPanickedEvent { action, info: None });
                if action != GuestPanicAction::Run {
                    self.lifecycle.stop(RunState::GuestPanicked, platform);
                }
                if action == GuestPanicAction::Poweroff {
                    self.lifecycle.shutdown(ShutdownCause::GuestPanic, platform);
                }
            }
            PanicEvent::CrashLoaded => self.events.publish(GuestCrashloadedEvent {
                action: GuestPanicAction::Run,
                info: None,
            }),
            PanicEvent::Shutdown => {
                self.events.publish(GuestPvshutdownEvent {});
                self.lifecycle
                    .shutdown(ShutdownCause::GuestShutdown, platform);
            }
        }
    }

    /// As QEMU: BLOCK_IO_ERROR, then with the stop action the VM stops in
    /// io-error (sending STOP).
    fn io_error(&mut self, error: &IoError) {
        let action = match error.action {
            ErrorAction::Report => BlockErrorAction::Report,
            ErrorAction::Ignore => BlockErrorAction::Ignore,
            ErrorAction::Stop => BlockErrorAction::Stop,
        };
        self.events.publish(BlockIoErrorEvent {
            qom_path: error.qom_path.clone(),
            device: error.device.clone(),
            node_name: Some(error.node_name.clone()),
            operation: match error.write {
                true => IoOperationType::Write,
                false => IoOperationType::Read,
            },
            action,
            nospace: Some(error.nospace()),
            reason: error.reason(),
        });
        if error.action == ErrorAction::Stop {
            self.lifecycle.stop(RunState::IoError, &mut *self.platform);
        }
    }

    pub fn console_input(&mut self, data: &[u8]) -> usize {
        self.platform.console_input(data)
    }

    /// Stops the vCPUs for good.
    pub fn finish(&mut self) {
        self.platform.finish();
    }
}

impl MachineCommands for Vm {
    fn exit_status(&self) -> Option<i32> {
        self.lifecycle.exit_status()
    }
}

impl Handles<QueryStatus> for Vm {
    fn handle(&mut self, _: QueryStatus) -> Result<StatusInfo, QmpError> {
        let states = &self.lifecycle.states;
        Ok(StatusInfo {
            running: states.is_running(),
            status: states.current(),
        })
    }
}

impl Handles<Stop> for Vm {
    fn handle(&mut self, _: Stop) -> Result<(), QmpError> {
        self.lifecycle.stop(RunState::Paused, &mut *self.platform);
        Ok(())
    }
}

impl Handles<Cont> for Vm {
    fn handle(&mut self, _: Cont) -> Result<(), QmpError> {
        self.lifecycle.states.check_cont()?;
        for disk in self.platform.disks() {
            disk.drive.reset_io_status();
        }
        self.lifecycle.start(&mut *self.platform);
        Ok(())
    }
}

impl Handles<QueryBlock> for Vm {
    fn handle(&mut self, _: QueryBlock) -> Result<Vec<BlockInfo>, QmpError> {
        Ok(block::query_block(self.platform.disks()))
    }
}

impl Handles<QueryBlockstats> for Vm {
    fn handle(&mut self, command: QueryBlockstats) -> Result<Vec<BlockStats>, QmpError> {
        let query_nodes = command.query_nodes.unwrap_or(false);
        Ok(block::query_blockstats(self.platform.disks(), query_nodes))
    }
}

impl Handles<BlockResize> for Vm {
    fn handle(&mut self, command: BlockResize) -> Result<(), QmpError> {
        block::block_resize(
            self.platform.disks(),
            command.device.as_deref(),
            command.node_name.as_deref(),
            command.size,
        )
    }
}

impl Handles<Balloon> for Vm {
    fn handle(&mut self, command: Balloon) -> Result<(), QmpError> {
        balloon::set_target(self.platform.balloon(), command.value)
    }
}

impl Handles<SetLink> for Vm {
    fn handle(&mut self, command: SetLink) -> Result<(), QmpError> {
        net::set_link(self.platform.nics(), &command.name, command.up)
    }
}

impl Handles<QueryRxFilter> for Vm {
    fn handle(&mut self, command: QueryRxFilter) -> Result<Vec<RxFilterInfo>, QmpError> {
        net::query_rx_filter(self.platform.nics(), command.name.as_deref())
    }
}

impl Handles<QueryBalloon> for Vm {
    fn handle(&mut self, _: QueryBalloon) -> Result<BalloonInfo, QmpError> {
        balloon::query(self.platform.balloon())
    }
}

impl Vm {
    /// The objects `qom-get` and `qom-set` reach.
    fn qom_objects(&self) -> Vec<&dyn QomObject> {
        let balloon = self.platform.balloon();
        balloon.map(|b| b as &dyn QomObject).into_iter().collect()
    }
}

impl Handles<QomGet> for Vm {
    fn handle(&mut self, command: QomGet) -> Result<qmp::Value, QmpError> {
        qom::get(&self.qom_objects(), &command.path, &command.property)
    }
}

impl Handles<QomSet> for Vm {
    fn handle(&mut self, command: QomSet) -> Result<(), QmpError> {
        let objects = self.qom_objects();
        qom::set(&objects, &command.path, &command.property, &command.value)
    }
}

impl Handles<Quit> for Vm {
    fn handle(&mut self, _: Quit) -> Result<(), QmpError> {
        self.shutdown(ShutdownCause::HostQmpQuit);
        Ok(())
    }
}

impl Handles<SystemReset> for Vm {
    fn handle(&mut self, _: SystemReset) -> Result<(), QmpError> {
        self.lifecycle
            .reset(ShutdownCause::HostQmpSystemReset, &mut *self.platform);
        Ok(())
    }
}

impl Handles<SystemPowerdown> for Vm {
    fn handle(&mut self, _: SystemPowerdown) -> Result<(), QmpError> {
        self.power_down();
        Ok(())
    }
}

impl Handles<SetAction> for Vm {
    fn handle(&mut self, set: SetAction) -> Result<(), QmpError> {
        self.lifecycle.actions.apply(&set);
        Ok(())
    }
}

impl Handles<WatchdogSetAction> for Vm {
    fn handle(&mut self, set: WatchdogSetAction) -> Result<(), QmpError> {
        self.lifecycle.actions.watchdog = set.action;
        Ok(())
    }
}

impl Handles<InjectNmi> for Vm {
    fn handle(&mut self, _: InjectNmi) -> Result<(), QmpError> {
        self.platform.inject_nmi()
    }
}

impl Handles<QueryCpusFast> for Vm {
    fn handle(&mut self, _: QueryCpusFast) -> Result<Vec<CpuInfoFast>, QmpError> {
        Ok(self.platform.cpus())
    }
}

impl Handles<QueryName> for Vm {
    fn handle(&mut self, _: QueryName) -> Result<NameInfo, QmpError> {
        Ok(NameInfo {
            name: self.config.name.clone(),
        })
    }
}

impl Handles<QueryUuid> for Vm {
    fn handle(&mut self, _: QueryUuid) -> Result<UuidInfo, QmpError> {
        Ok(UuidInfo {
            uuid: self.config.uuid.unwrap_or_default().to_string(),
        })
    }
}

impl Handles<QueryKvm> for Vm {
    fn handle(&mut self, _: QueryKvm) -> Result<KvmInfo, QmpError> {
        Ok(KvmInfo {
            enabled: self.config.kvm_enabled,
            present: true,
        })
    }
}

impl Handles<QueryTarget> for Vm {
    fn handle(&mut self, _: QueryTarget) -> Result<TargetInfo, QmpError> {
        Ok(TargetInfo {
            arch: SysEmuTarget::X86_64,
        })
    }
}
