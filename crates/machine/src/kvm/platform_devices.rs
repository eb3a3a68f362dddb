//! The platform devices on the port I/O bus: COM1, the keyboard
//! controller's reset line, the ACPI PM registers, the CMOS clock, the
//! power button's GED, and the ib700 watchdog and pvpanic when asked for.

use std::io::Write;
use std::sync::{Arc, Mutex};

use devices::{
    acpi_pm::ACPI_PM_PORT, lock, Bus, CmosMemorySize, DescribeAcpi, GenericEventDevice, Ib700,
    IrqLine, MachineControl, PowerManagement, PvPanic, Rtc, RtcConfig, Serial, Timed, VirtualClock,
    COM1_IRQ, COM1_PORT, GED_PORT, I8042, IB700_LEN, IB700_PORT, RTC_IRQ, RTC_PORT, RTC_PORT_LEN,
};
use events::{Publisher, RtcChangeEvent};

use super::layout;

/// `-device pvpanic`: its port and the events it announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PvPanicConfig {
    pub port: u16,
    pub events: u8,
}

/// What the command line asks of the platform devices.
pub struct PlatformConfig {
    /// Where COM1's output goes; `None` for no serial port at all.
    pub serial: Option<Box<dyn Write + Send>>,
    /// The CMOS clock (`-rtc`), unless `-M microvm,rtc=off`.
    pub rtc: Option<RtcConfig>,
    /// `-device ib700`
    pub ib700: bool,
    pub pvpanic: Option<PvPanicConfig>,
}

impl std::fmt::Debug for PlatformConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PlatformConfig")
            .field("serial", &self.serial.is_some())
            .field("rtc", &self.rtc)
            .field("ib700", &self.ib700)
            .field("pvpanic", &self.pvpanic)
            .finish()
    }
}

/// What the devices need from the machine.
pub struct Wiring<'a> {
    pub irq: &'a dyn Fn(u32) -> Result<IrqLine, String>,
    pub machine: Arc<dyn MachineControl>,
    pub clock: VirtualClock,
    pub events: Publisher,
    pub ram_size: u64,
    pub vcpus: u32,
}

pub struct PlatformDevices {
    pub serial: Option<Arc<Mutex<Serial>>>,
    pub ged: Arc<Mutex<GenericEventDevice>>,
    rtc: Option<Arc<Mutex<Rtc>>>,
    ib700: Option<Arc<Mutex<Ib700>>>,
    pvpanic: Option<Arc<Mutex<PvPanic>>>,
}

/// QEMU's QOM path for microvm's RTC under KVM (`rtc=on`): the objects
/// made before it are the vCPUs, the kvmvapic, the ISA bridge, the I/O
/// APIC, kvmclock, 24 virtio-mmio transports, the GED, two i8259s and the
/// PIT.
fn rtc_qom_path(vcpus: u32) -> String {
    format!("/machine/unattached/device[{}]", 32 + vcpus)
}

/// Puts the devices on the port bus.
pub fn attach(
    config: PlatformConfig,
    pio: &mut Bus,
    wiring: Wiring,
) -> Result<PlatformDevices, String> {
    let bus_error = |e: devices::BusError| format!("cannot place a device: {e}");
    let io_error = |what: &str, e: std::io::Error| format!("cannot create {what}: {e}");
    let serial = match config.serial {
        Some(out) => {
            let serial = Arc::new(Mutex::new(Serial::new((wiring.irq)(COM1_IRQ)?, out)));
            pio.insert(COM1_PORT, 8, serial.clone())
                .map_err(bus_error)?;
            Some(serial)
        }
        None => None,
    };
    let i8042 = I8042::new(wiring.machine.clone());
    pio.insert(I8042::PORT, I8042::LEN, Arc::new(Mutex::new(i8042)))
        .map_err(bus_error)?;
    let pm = PowerManagement::new(wiring.machine.clone());
    pio.insert(ACPI_PM_PORT, PowerManagement::LEN, Arc::new(Mutex::new(pm)))
        .map_err(bus_error)?;
    let rtc = match config.rtc {
        Some(rtc_config) => {
            let below_4g = wiring.ram_size.min(layout::MMIO_HOLE_START);
            let memory = CmosMemorySize {
                below_4g,
                above_4g: wiring.ram_size - below_4g,
            };
            let events = wiring.events.clone();
            let qom_path = rtc_qom_path(wiring.vcpus);
            let on_time_set = Box::new(move |offset| {
                events.publish(RtcChangeEvent {
                    offset,
                    qom_path: qom_path.clone(),
                })
            });
            let rtc = Rtc::new(
                rtc_config,
                wiring.clock.clone(),
                memory,
                (wiring.irq)(RTC_IRQ)?,
                on_time_set,
            )
            .map_err(|e| io_error("the clock's timer", e))?;
            let rtc = Arc::new(Mutex::new(rtc));
            pio.insert(RTC_PORT, RTC_PORT_LEN, rtc.clone())
                .map_err(bus_error)?;
            Some(rtc)
        }
        None => None,
    };
    let ged = Arc::new(Mutex::new(GenericEventDevice::new((wiring.irq)(
        layout::GED_GSI,
    )?)));
    pio.insert(GED_PORT, GenericEventDevice::LEN, ged.clone())
        .map_err(bus_error)?;
    let ib700 = match config.ib700 {
        true => {
            let ib700 = Ib700::new(wiring.clock.clone(), wiring.machine.clone())
                .map_err(|e| io_error("the watchdog's timer", e))?;
            let ib700 = Arc::new(Mutex::new(ib700));
            pio.insert(IB700_PORT, IB700_LEN, ib700.clone())
                .map_err(bus_error)?;
            Some(ib700)
        }
        false => None,
    };
    let pvpanic = match config.pvpanic {
        Some(PvPanicConfig { port, events }) => {
            let pvpanic = Arc::new(Mutex::new(PvPanic::new(port, events, wiring.machine)));
            pio.insert(u64::from(port), 1, pvpanic.clone())
                .map_err(|_| format!("pvpanic's port {port:#x} is taken by another device"))?;
            Some(pvpanic)
        }
        None => None,
    };
    Ok(PlatformDevices {
        serial,
        ged,
        rtc,
        ib700,
        pvpanic,
    })
}

impl PlatformDevices {
    /// The devices that keep time, for the timer thread.
    pub fn timed(&self) -> Vec<Arc<Mutex<dyn Timed>>> {
        let mut timed: Vec<Arc<Mutex<dyn Timed>>> = Vec::new();
        if let Some(rtc) = &self.rtc {
            timed.push(rtc.clone());
        }
        if let Some(ib700) = &self.ib700 {
            timed.push(ib700.clone());
        }
        timed
    }

    /// A system reset.
    pub fn reset(&self) {
        if let Some(serial) = &self.serial {
            lock(serial).reset();
        }
        lock(&self.ged).reset();
        if let Some(rtc) = &self.rtc {
            lock(rtc).reset();
        }
        if let Some(ib700) = &self.ib700 {
            lock(ib700).reset();
        }
    }

    /// Calls `build` with every device's ACPI description, in QEMU's
    /// DSDT order, followed by `more`.
    pub fn describe<R>(
        &self,
        more: &[&dyn DescribeAcpi],
        build: impl FnOnce(&[&dyn DescribeAcpi]) -> R,
    ) -> R {
        let pvpanic = self.pvpanic.as_deref().map(lock);
        let serial = self.serial.as_deref().map(lock);
        let rtc = self.rtc.as_deref().map(lock);
        let ged = lock(&self.ged);
        let mut described: Vec<&dyn DescribeAcpi> = Vec::new();
        if let Some(pvpanic) = &pvpanic {
            described.push(&**pvpanic);
        }
        if let Some(serial) = &serial {
            described.push(&**serial);
        }
        if let Some(rtc) = &rtc {
            described.push(&**rtc);
        }
        described.push(&*ged);
        described.extend_from_slice(more);
        build(&described)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rtc_has_qemu_microvms_qom_path() {
        assert_eq!(rtc_qom_path(1), "/machine/unattached/device[33]");
        assert_eq!(rtc_qom_path(2), "/machine/unattached/device[34]");
    }
}
