//! The hardware-reduced ACPI power-management registers the FADT points
//! at, on I/O ports: sleep control (S5 powers off), sleep status, and the
//! reset register.

use std::sync::Arc;

use crate::{BusDevice, DeviceRequest, MachineControl};

/// Sleep control at +0, sleep status at +1, reset at +2.
pub const ACPI_PM_PORT: u64 = 0x600;
pub const SLEEP_CONTROL: u64 = 0;
pub const SLEEP_STATUS: u64 = 1;
pub const RESET: u64 = 2;
/// The value the FADT tells the guest to write to the reset register.
pub const RESET_VALUE: u8 = 0x42;
/// SLP_TYP of S5, which the DSDT's `\_S5` names.
pub const SLEEP_TYPE_S5: u8 = 5;
const SLEEP_ENABLE: u8 = 1 << 5;

pub struct PowerManagement {
    power: Arc<dyn MachineControl>,
}

impl PowerManagement {
    pub const LEN: u64 = 3;

    pub fn new(power: Arc<dyn MachineControl>) -> PowerManagement {
        PowerManagement { power }
    }
}

impl BusDevice for PowerManagement {
    fn read(&mut self, _offset: u64, data: &mut [u8]) {
        // Sleep status: never asleep (kvmon has no S3), so nothing to report.
        data.fill(0);
    }

    fn write(&mut self, offset: u64, data: &[u8]) {
        let Some(&value) = data.first() else { return };
        match offset {
            SLEEP_CONTROL if value & SLEEP_ENABLE != 0 => {
                let sleep_type = (value >> 2) & 0x7;
                if sleep_type == SLEEP_TYPE_S5 {
                    self.power.request(DeviceRequest::PowerOff);
                } else {
                    log::info!(
                        "the guest asked for sleep type {sleep_type}, which kvmon does not offer"
                    );
                }
            }
            RESET if value == RESET_VALUE => {
                log::debug!("the guest resets the machine through the ACPI reset register");
                self.power.request(DeviceRequest::Reset);
            }
            _ => {}
        }
    }
}

impl std::fmt::Debug for PowerManagement {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PowerManagement").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::requests::Recorded;

    #[test]
    fn s5_with_sleep_enable_powers_off_and_the_reset_value_resets() {
        let requests = Arc::new(Recorded::default());
        let mut pm = PowerManagement::new(requests.clone());
        pm.write(SLEEP_CONTROL, &[SLEEP_TYPE_S5 << 2]); // no SLP_EN
        pm.write(SLEEP_CONTROL, &[(3 << 2) | SLEEP_ENABLE]); // S3
        pm.write(RESET, &[0x06]);
        pm.write(SLEEP_STATUS, &[0xff]);
        assert!(requests.0.lock().unwrap().is_empty());
        pm.write(SLEEP_CONTROL, &[(SLEEP_TYPE_S5 << 2) | SLEEP_ENABLE]);
        pm.write(RESET, &[RESET_VALUE]);
        assert_eq!(
            *requests.0.lock().unwrap(),
            [DeviceRequest::PowerOff, DeviceRequest::Reset]
        );
    }
}
