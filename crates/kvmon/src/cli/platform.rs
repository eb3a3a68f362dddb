//! The platform devices' options, with QEMU's syntax and error texts:
//! `-rtc`, the microvm machine's `rtc=` property, `-device ib700` and
//! `-device pvpanic`.

use machine::kvm::{
    utc_seconds, PvPanicConfig, RtcBase, RtcClock, RtcConfig, PVPANIC_EVENTS, PVPANIC_PORT,
};

use super::opts::{self, Opts, Schema};
use super::CliError;

/// The platform devices the command line asked for.
#[derive(Debug, Default)]
pub struct Platform {
    rtc: RtcConfig,
    /// `-M microvm,rtc=off` removes the clock.
    rtc_off: bool,
    ib700: bool,
    pvpanic: Option<PvPanicConfig>,
}

impl Platform {
    /// `-rtc [base=utc|localtime|DATETIME][,clock=host|rt|vm][,driftfix=none|slew]`.
    pub fn rtc(&mut self, value: &str, location: &str) -> Result<(), CliError> {
        const RTC: Schema<'static> = Schema {
            implied: None,
            strings: &["base", "clock", "driftfix"],
            booleans: &[],
        };
        let opts = opts::parse(value, &RTC, location)?;
        let invalid = |value: &str| CliError::bare(format!("invalid option value '{value}'"));
        if let Some(base) = opts.get("base") {
            self.rtc.base = match base {
                "utc" => RtcBase::Utc,
                "localtime" => RtcBase::LocalTime {
                    utc_offset: local_utc_offset(),
                },
                datetime => RtcBase::At(parse_datetime(datetime).ok_or_else(|| {
                    CliError::bare("invalid datetime format")
                        .hint("valid formats: '2006-06-17T16:01:21' or '2006-06-17'")
                })?),
            };
        }
        if let Some(clock) = opts.get("clock") {
            self.rtc.clock = match clock {
                "host" => RtcClock::Host,
                "rt" => RtcClock::Realtime,
                "vm" => RtcClock::Vm,
                other => return Err(invalid(other)),
            };
        }
        // Lost ticks are always dropped (QEMU's default, "none"); "slew"
        // is accepted, as it means nothing for a guest that reads the
        // time from the registers.
        match opts.get("driftfix") {
            None | Some("none" | "slew") => Ok(()),
            Some(other) => Err(invalid(other)),
        }
    }

    /// `-M microvm,rtc=on|off|auto`: kvmon's microvm has the clock unless
    /// it is `off` (QEMU's `auto` leaves it out under KVM; kvmon keeps it,
    /// so guests keep time without kvmclock).
    pub fn machine_rtc(&mut self, value: &str) -> Result<(), CliError> {
        self.rtc_off = match value {
            "on" | "auto" => false,
            "off" => true,
            other => {
                return Err(CliError::bare(format!(
                    "Parameter 'rtc' does not accept value '{other}'"
                )))
            }
        };
        Ok(())
    }

    /// `-device ib700`: no properties.
    pub fn ib700(&mut self, opts: &Opts, location: &str) -> Result<(), CliError> {
        opts.check_properties("ib700", &[], location)?;
        if self.ib700 {
            return Err(CliError::at(location, "kvmon has one ib700 watchdog"));
        }
        self.ib700 = true;
        Ok(())
    }

    /// `-device pvpanic[,ioport=PORT][,events=BITS]`.
    pub fn pvpanic(&mut self, opts: &Opts, location: &str) -> Result<(), CliError> {
        let fail = |message: String| CliError::at(location, message);
        opts.check_properties("pvpanic", &["ioport", "events"], location)?;
        let number = |key: &str, max: u64, kind: &str| -> Result<Option<u64>, CliError> {
            let Some(text) = opts.get(key) else {
                return Ok(None);
            };
            let value = parse_integer(text)
                .ok_or_else(|| fail(format!("Parameter '{key}' expects integer")))?;
            if value > max {
                return Err(fail(format!("Parameter '{key}' expects {kind}")));
            }
            Ok(Some(value))
        };
        let port = number("ioport", 0xffff, "uint16_t")?.map_or(PVPANIC_PORT, |p| p as u16);
        let events = number("events", 0xff, "uint8_t")?.map_or(PVPANIC_EVENTS, |e| e as u8);
        if self.pvpanic.is_some() {
            // QEMU's words: each pvpanic names its port in fw_cfg.
            return Err(fail(
                "duplicate fw_cfg file name: etc/pvpanic-port".to_string(),
            ));
        }
        self.pvpanic = Some(PvPanicConfig { port, events });
        Ok(())
    }

    pub fn rtc_config(&self) -> Option<RtcConfig> {
        (!self.rtc_off).then_some(self.rtc)
    }

    pub fn ib700_config(&self) -> bool {
        self.ib700
    }

    pub fn pvpanic_config(&self) -> Option<PvPanicConfig> {
        self.pvpanic
    }
}

/// A decimal, 0x hexadecimal or 0 octal number, as QEMU's qdev integers.
fn parse_integer(text: &str) -> Option<u64> {
    if let Some(hex) = text.strip_prefix("0x").or_else(|| text.strip_prefix("0X")) {
        u64::from_str_radix(hex, 16).ok()
    } else if text.len() > 1 && text.starts_with('0') {
        u64::from_str_radix(&text[1..], 8).ok()
    } else {
        text.parse().ok()
    }
}

/// QEMU's `-rtc base=` date: `%d-%d-%dT%d:%d:%d`, else `%d-%d-%d` (a
/// partial time is dropped); out-of-range fields carry over; a time
/// before the epoch is refused.
fn parse_datetime(text: &str) -> Option<i64> {
    let mut fields = Vec::new();
    let mut rest = text;
    for separator in ["-", "-", "T", ":", ":", ""] {
        let digits = rest
            .char_indices()
            .find(|&(i, c)| !(c.is_ascii_digit() || (i == 0 && matches!(c, '-' | '+'))))
            .map_or(rest.len(), |(i, _)| i);
        let Ok(value) = rest[..digits].parse::<i64>() else {
            break;
        };
        fields.push(value);
        rest = &rest[digits..];
        match rest.strip_prefix(separator) {
            Some(after) if !separator.is_empty() => rest = after,
            _ => break,
        }
    }
    let fields = match fields.len() {
        6 => fields,
        3..=5 => fields[..3].iter().copied().chain([0, 0, 0]).collect(),
        _ => return None,
    };
    let field = |i: usize| u32::try_from(fields[i]).ok();
    let seconds = utc_seconds(
        fields[0],
        field(1)?,
        field(2)?,
        field(3)?,
        field(4)?,
        field(5)?,
    );
    (seconds >= 0).then_some(seconds)
}

/// The host's local time zone: seconds east of UTC now.
fn local_utc_offset() -> i64 {
    // SAFETY: time(NULL) and localtime_r write only into the local `tm`.
    unsafe {
        let now = libc::time(std::ptr::null_mut());
        let mut tm: libc::tm = std::mem::zeroed();
        if libc::localtime_r(&now, &mut tm).is_null() {
            return 0;
        }
        tm.tm_gmtoff
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datetimes_parse_as_qemus_sscanf() {
        assert_eq!(parse_datetime("1970-01-01T00:00:01"), Some(1));
        assert_eq!(parse_datetime("2006-06-17"), Some(1_150_502_400));
        // A partial time is dropped, fields carry over.
        assert_eq!(parse_datetime("2006-06-17T16:01"), Some(1_150_502_400));
        assert_eq!(
            parse_datetime("2006-13-45"),
            Some(utc_seconds(2007, 2, 14, 0, 0, 0))
        );
        assert_eq!(parse_datetime("1969-12-31T23:59:59"), None);
        assert_eq!(parse_datetime("now"), None);
        assert_eq!(parse_datetime("2006-06"), None);
    }

    #[test]
    fn integers_take_qemus_bases() {
        assert_eq!(parse_integer("0x505"), Some(0x505));
        assert_eq!(parse_integer("1285"), Some(1285));
        assert_eq!(parse_integer("010"), Some(8));
        assert_eq!(parse_integer("0"), Some(0));
        assert_eq!(parse_integer("abc"), None);
    }
}
