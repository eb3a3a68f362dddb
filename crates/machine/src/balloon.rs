//! The balloon as management sees it: `balloon` and `query-balloon`, and
//! the device's QOM properties — the guest's statistics and how often the
//! device asks for them — with QEMU's checks and errors.

use qmp::commands::BalloonInfo;
use qmp::json::{Map, Value};
use qmp::{ErrorClass, QmpError};
use virtio::balloon::{polling_interval, BalloonHandle, BalloonOptions, GuestStats};

use crate::qom::{not_writable, QomObject};

/// `-device virtio-balloon-device`: its properties and its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BalloonConfig {
    pub options: BalloonOptions,
    pub qom_path: String,
}

/// A machine's balloon.
#[derive(Debug, Clone)]
pub struct BalloonDevice {
    pub handle: BalloonHandle,
    pub qom_path: String,
}

const TYPE: &str = "virtio-balloon-device";

fn not_active() -> QmpError {
    QmpError::new(
        ErrorClass::DeviceNotActive,
        "No balloon device has been activated",
    )
}

/// `balloon {value}`: for the balloon there is, a target of at least a
/// byte (checked in QEMU's order).
pub fn set_target(balloon: Option<&BalloonDevice>, value: i64) -> Result<(), QmpError> {
    let balloon = balloon.ok_or_else(not_active)?;
    let Ok(bytes @ 1..) = u64::try_from(value) else {
        return Err(QmpError::generic("Parameter 'value' expects a size"));
    };
    balloon.handle.set_target(bytes);
    Ok(())
}

pub fn query(balloon: Option<&BalloonDevice>) -> Result<BalloonInfo, QmpError> {
    let balloon = balloon.ok_or_else(not_active)?;
    Ok(BalloonInfo {
        actual: balloon.handle.actual(),
    })
}

/// QEMU's `guest-stats`: the time of the last report, then each stat.
fn stats_value(stats: &GuestStats) -> Value {
    let named: Map<String, Value> = stats
        .named()
        .map(|(name, value)| (name.to_string(), Value::from(value)))
        .collect();
    let mut object = Map::new();
    object.insert("stats".into(), Value::Object(named));
    object.insert("last-update".into(), Value::from(stats.last_update));
    Value::Object(object)
}

impl QomObject for BalloonDevice {
    fn path(&self) -> &str {
        &self.qom_path
    }

    fn type_name(&self) -> &str {
        TYPE
    }

    fn get(&self, property: &str) -> Option<Result<Value, QmpError>> {
        match property {
            "guest-stats" => Some(Ok(stats_value(&self.handle.stats()))),
            "guest-stats-polling-interval" => Some(Ok(Value::from(self.handle.polling_interval()))),
            _ => None,
        }
    }

    fn set(&self, property: &str, value: &Value) -> Option<Result<(), QmpError>> {
        match property {
            "guest-stats-polling-interval" => Some(self.set_polling_interval(value)),
            "guest-stats" => Some(Err(not_writable(self, property))),
            _ => None,
        }
    }
}

impl BalloonDevice {
    /// As QEMU's balloon_stats_set_poll_interval.
    fn set_polling_interval(&self, value: &Value) -> Result<(), QmpError> {
        let Some(seconds) = value.as_i64() else {
            return Err(QmpError::generic(
                "Invalid parameter type for 'guest-stats-polling-interval', expected: integer",
            ));
        };
        let seconds = polling_interval(seconds).map_err(QmpError::generic)?;
        self.handle.set_polling_interval(seconds);
        Ok(())
    }
}
