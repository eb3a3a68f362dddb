//! `-machine none`: a machine with no vCPUs and no devices, only a run
//! state, as QEMU's `none` machine that libvirt uses to probe an emulator.

use events::Publisher;
use qmp::commands::{
    Cont, Handles, KvmInfo, MachineCommands, NameInfo, QueryKvm, QueryName, QueryStatus,
    QueryTarget, QueryUuid, Quit, Stop, SysEmuTarget, TargetInfo, UuidInfo,
};
use qmp::types::{RunState, ShutdownCause, StatusInfo};
use qmp::QmpError;

use crate::lifecycle::Lifecycle;
use crate::{Machine, MachineConfig};

#[derive(Debug)]
pub struct NoneMachine {
    config: MachineConfig,
    lifecycle: Lifecycle,
}

impl NoneMachine {
    pub fn new(config: MachineConfig, events: Publisher) -> Self {
        let lifecycle = Lifecycle::new(config.start_paused, config.no_shutdown, events);
        NoneMachine { config, lifecycle }
    }
}

impl Machine for NoneMachine {
    fn shutdown(&mut self, cause: ShutdownCause) {
        self.lifecycle.shutdown(cause);
    }
}

impl MachineCommands for NoneMachine {
    fn exit_status(&self) -> Option<i32> {
        self.lifecycle.exit_status()
    }
}

impl Handles<QueryStatus> for NoneMachine {
    fn handle(&mut self, _: QueryStatus) -> Result<StatusInfo, QmpError> {
        let states = &self.lifecycle.states;
        Ok(StatusInfo {
            running: states.is_running(),
            status: states.current(),
        })
    }
}

impl Handles<Stop> for NoneMachine {
    fn handle(&mut self, _: Stop) -> Result<(), QmpError> {
        self.lifecycle.states.stop(RunState::Paused);
        Ok(())
    }
}

impl Handles<Cont> for NoneMachine {
    fn handle(&mut self, _: Cont) -> Result<(), QmpError> {
        self.lifecycle.states.check_cont()?;
        self.lifecycle.states.start();
        Ok(())
    }
}

impl Handles<Quit> for NoneMachine {
    fn handle(&mut self, _: Quit) -> Result<(), QmpError> {
        self.lifecycle.shutdown(ShutdownCause::HostQmpQuit);
        Ok(())
    }
}

impl Handles<QueryName> for NoneMachine {
    fn handle(&mut self, _: QueryName) -> Result<NameInfo, QmpError> {
        Ok(NameInfo {
            name: self.config.name.clone(),
        })
    }
}

impl Handles<QueryUuid> for NoneMachine {
    fn handle(&mut self, _: QueryUuid) -> Result<UuidInfo, QmpError> {
        Ok(UuidInfo {
            uuid: self.config.uuid.unwrap_or_default().to_string(),
        })
    }
}

impl Handles<QueryKvm> for NoneMachine {
    fn handle(&mut self, _: QueryKvm) -> Result<KvmInfo, QmpError> {
        Ok(KvmInfo {
            enabled: self.config.kvm_enabled,
            present: true,
        })
    }
}

impl Handles<QueryTarget> for NoneMachine {
    fn handle(&mut self, _: QueryTarget) -> Result<TargetInfo, QmpError> {
        Ok(TargetInfo {
            arch: SysEmuTarget::X86_64,
        })
    }
}
