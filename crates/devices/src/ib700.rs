//! The iBASE IB700 watchdog, as QEMU's `ib700`: a write to port 0x443
//! arms it (or feeds it) with a timeout its low nibble picks, from 30 s
//! down to 0 s in steps of 2; any write to port 0x441 disarms it.  The
//! timer counts on the virtual clock, so a stopped VM is never bitten, and
//! it fires once, asking the machine to act.

use std::os::fd::RawFd;
use std::sync::Arc;
use std::time::Duration;

use crate::timer::{DeviceTimer, Timed};
use crate::{ByteRegisters, DeviceRequest, MachineControl, VirtualClock};

/// The disable port (0x441, two bytes) and the enable port (0x443, two).
pub const IB700_PORT: u64 = 0x441;
pub const IB700_LEN: u64 = 4;
const ENABLE: u8 = 2;

pub struct Ib700 {
    clock: VirtualClock,
    /// When it bites, on the virtual clock, while armed.
    deadline: Option<Duration>,
    timer: DeviceTimer,
    machine: Arc<dyn MachineControl>,
}

impl Ib700 {
    pub fn new(clock: VirtualClock, machine: Arc<dyn MachineControl>) -> std::io::Result<Ib700> {
        Ok(Ib700 {
            clock,
            deadline: None,
            timer: DeviceTimer::new()?,
            machine,
        })
    }

    /// The timeout a value written to the enable port selects.
    pub fn timeout(value: u8) -> Duration {
        Duration::from_secs(u64::from(30 - 2 * (value & 0x0f)))
    }

    /// A system reset disarms it.
    pub fn reset(&mut self) {
        self.deadline = None;
        self.timer.disarm();
    }

    /// Arms the host timer for what is left, while the virtual clock runs.
    fn arm(&mut self) {
        match self.deadline {
            Some(deadline) if self.clock.is_running() => {
                self.timer.arm(deadline.saturating_sub(self.clock.now()));
            }
            _ => self.timer.disarm(),
        }
    }
}

impl ByteRegisters for Ib700 {
    fn read_byte(&mut self, _offset: u8) -> u8 {
        0xff // write-only ports
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        if offset < ENABLE {
            log::debug!("the guest disarms the ib700 watchdog");
            self.deadline = None;
        } else {
            let timeout = Ib700::timeout(value);
            log::debug!("the guest arms the ib700 watchdog for {timeout:?}");
            self.deadline = Some(self.clock.now() + timeout);
        }
        self.arm();
    }
}

impl Timed for Ib700 {
    fn timer_fd(&self) -> RawFd {
        self.timer.fd()
    }

    fn expired(&mut self) {
        self.timer.acknowledge();
        match self.deadline {
            Some(deadline) if self.clock.is_running() && self.clock.now() >= deadline => {
                log::info!("the ib700 watchdog expired");
                self.deadline = None;
                self.machine.request(DeviceRequest::WatchdogExpired);
            }
            // Re-armed since, or stopped meanwhile (re-armed on start).
            _ => self.arm(),
        }
    }

    fn clock_started(&mut self) {
        self.arm();
    }
}

impl std::fmt::Debug for Ib700 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ib700")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::Recorded;

    fn watchdog() -> (Ib700, Arc<Recorded>, VirtualClock) {
        let recorded = Arc::new(Recorded::default());
        let clock = VirtualClock::new();
        clock.start();
        let ib700 = Ib700::new(clock.clone(), recorded.clone()).unwrap();
        (ib700, recorded, clock)
    }

    fn fired(recorded: &Recorded) -> usize {
        recorded.0.lock().unwrap().len()
    }

    #[test]
    fn the_enable_port_picks_30_to_0_seconds() {
        assert_eq!(Ib700::timeout(0), Duration::from_secs(30));
        assert_eq!(Ib700::timeout(14), Duration::from_secs(2));
        assert_eq!(Ib700::timeout(0xff), Duration::ZERO);
        let (mut ib700, _, _) = watchdog();
        assert_eq!(ib700.read_byte(0), 0xff);
    }

    #[test]
    fn it_bites_once_unless_fed_or_disarmed() {
        let (mut ib700, recorded, _) = watchdog();
        ib700.write_byte(2, 15); // 0 s: at once
        ib700.expired();
        ib700.expired();
        assert_eq!(
            *recorded.0.lock().unwrap(),
            [DeviceRequest::WatchdogExpired],
            "fires once"
        );
        ib700.write_byte(2, 14); // 2 s
        ib700.expired();
        ib700.write_byte(0, 0); // disarmed
        ib700.expired();
        assert_eq!(fired(&recorded), 1, "neither early nor after disarming");
        ib700.write_byte(3, 15);
        ib700.reset();
        ib700.expired();
        assert_eq!(fired(&recorded), 1, "a reset disarms it");
    }

    #[test]
    fn a_stopped_vm_is_not_bitten_and_the_time_left_is_kept() {
        let (mut ib700, recorded, clock) = watchdog();
        ib700.write_byte(2, 15);
        clock.stop();
        ib700.expired();
        assert_eq!(fired(&recorded), 0);
        clock.start();
        ib700.clock_started();
        ib700.expired();
        assert_eq!(fired(&recorded), 1);
    }
}
