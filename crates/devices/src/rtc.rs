//! The MC146818 CMOS real-time clock and its 128 bytes of CMOS memory, at
//! ports 0x70 (index, and the NMI-mask bit) and 0x71 (data).  The clock is
//! the host's wall clock plus the offset the guest sets; time and date read
//! in BCD or binary, 12- or 24-hour form as register B says, and
//! update-in-progress shows in the last 244 µs of each second.  The CMOS
//! memory carries the memory-size fields firmware reads, as QEMU fills them.

use std::time::{SystemTime, UNIX_EPOCH};

use acpi_tables::{aml, Aml, AmlSink};

use crate::{ByteRegisters, DescribeAcpi};

pub const RTC_PORT: u64 = 0x70;
pub const RTC_PORT_LEN: u64 = 2;

const SECONDS: u8 = 0x00;
const MINUTES: u8 = 0x02;
const HOURS: u8 = 0x04;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REGISTER_A: u8 = 0x0a;
const REGISTER_B: u8 = 0x0b;
const REGISTER_C: u8 = 0x0c;
const REGISTER_D: u8 = 0x0d;
const CENTURY: u8 = 0x32;

/// Register A: update in progress; the divider bits of a running clock.
const UIP: u8 = 0x80;
const DIVIDER_RUNNING: u8 = 0x20;
/// Register B: updates halted while the guest sets the clock; binary (not
/// BCD); 24-hour (not 12-hour).
const SET: u8 = 0x80;
const BINARY: u8 = 0x04;
const HOURS_24: u8 = 0x02;
/// Register D: the battery is good, memory and time valid.
const VALID: u8 = 0x80;
/// The hours register's PM bit in 12-hour mode.
const PM: u8 = 0x80;
/// How long before each second's end UIP shows (the chip's update cycle).
const UPDATE_NANOS: u32 = 244_000;

/// Guest RAM for the CMOS memory-size fields.
#[derive(Debug, Clone, Copy)]
pub struct CmosMemorySize {
    pub below_4g: u64,
    pub above_4g: u64,
}

pub struct Rtc {
    index: u8,
    nmi_masked: bool,
    cmos: [u8; 128],
    /// Guest time − host time, in seconds.
    offset: i64,
    /// The time held while register B's SET bit stops the clock.
    held: Option<i64>,
}

impl Rtc {
    pub fn new(memory: CmosMemorySize) -> Rtc {
        let mut cmos = [0u8; 128];
        cmos[REGISTER_A as usize] = DIVIDER_RUNNING | 0x06; // 32.768 kHz, 1024 Hz
        cmos[REGISTER_B as usize] = HOURS_24;
        cmos[REGISTER_D as usize] = VALID;
        // Base memory: 640 KiB.
        cmos[0x15..0x17].copy_from_slice(&640u16.to_le_bytes());
        // Extended memory above 1 MiB in KiB, and above 16 MiB in 64 KiB
        // units, each at most 0xffff; above 4 GiB in 64 KiB units.
        let extended = (memory.below_4g / 1024).saturating_sub(1024).min(0xffff) as u16;
        cmos[0x17..0x19].copy_from_slice(&extended.to_le_bytes());
        cmos[0x30..0x32].copy_from_slice(&extended.to_le_bytes());
        let above_16m = (memory.below_4g.saturating_sub(16 << 20) >> 16).min(0xffff) as u16;
        cmos[0x34..0x36].copy_from_slice(&above_16m.to_le_bytes());
        let above_4g = (memory.above_4g >> 16).min(0xff_ffff) as u32;
        cmos[0x5b..0x5e].copy_from_slice(&above_4g.to_le_bytes()[..3]);
        Rtc {
            index: 0,
            nmi_masked: false,
            cmos,
            offset: 0,
            held: None,
        }
    }

    /// Whether the guest has masked NMIs (bit 7 of its last index write).
    pub fn nmi_masked(&self) -> bool {
        self.nmi_masked
    }

    /// The guest's time now, in seconds since the epoch, and the
    /// nanoseconds into the current second.
    fn now(&self) -> (i64, u32) {
        let (host, nanos) = host_time();
        match self.held {
            Some(held) => (held, 0),
            None => (host + self.offset, nanos),
        }
    }

    fn register_b(&self) -> u8 {
        self.cmos[REGISTER_B as usize]
    }

    /// A clock value as the guest reads it: BCD unless binary mode.
    fn encode(&self, value: u32) -> u8 {
        let value = value as u8;
        if self.register_b() & BINARY != 0 {
            value
        } else {
            (value / 10) << 4 | (value % 10)
        }
    }

    fn decode(&self, value: u8) -> u32 {
        if self.register_b() & BINARY != 0 {
            u32::from(value)
        } else {
            u32::from(value >> 4) * 10 + u32::from(value & 0x0f)
        }
    }

    fn encode_hours(&self, hours: u32) -> u8 {
        if self.register_b() & HOURS_24 != 0 {
            return self.encode(hours);
        }
        let twelve = match hours % 12 {
            0 => 12,
            h => h,
        };
        self.encode(twelve) | if hours >= 12 { PM } else { 0 }
    }

    fn decode_hours(&self, value: u8) -> u32 {
        if self.register_b() & HOURS_24 != 0 {
            return self.decode(value);
        }
        let twelve = self.decode(value & !PM) % 12;
        twelve + if value & PM != 0 { 12 } else { 0 }
    }

    fn read_register(&self, index: u8) -> u8 {
        let (seconds, nanos) = self.now();
        let time = Civil::from_seconds(seconds);
        match index {
            SECONDS => self.encode(time.second),
            MINUTES => self.encode(time.minute),
            HOURS => self.encode_hours(time.hour),
            WEEKDAY => self.encode(time.weekday + 1),
            DAY => self.encode(time.day),
            MONTH => self.encode(time.month),
            YEAR => self.encode((time.year % 100) as u32),
            CENTURY => self.encode((time.year / 100) as u32),
            REGISTER_A => {
                let a = self.cmos[REGISTER_A as usize] & !UIP;
                let running = self.held.is_none() && a & 0x70 == DIVIDER_RUNNING;
                if running && nanos >= 1_000_000_000 - UPDATE_NANOS {
                    a | UIP
                } else {
                    a
                }
            }
            // No interrupt sources yet: no flags to report.
            REGISTER_C => 0,
            REGISTER_D => VALID,
            _ => self.cmos[usize::from(index)],
        }
    }

    fn write_register(&mut self, index: u8, value: u8) {
        match index {
            SECONDS | MINUTES | HOURS | DAY | MONTH | YEAR | CENTURY => {
                let (seconds, _) = self.now();
                let mut time = Civil::from_seconds(seconds);
                match index {
                    SECONDS => time.second = self.decode(value),
                    MINUTES => time.minute = self.decode(value),
                    HOURS => time.hour = self.decode_hours(value),
                    DAY => time.day = self.decode(value),
                    MONTH => time.month = self.decode(value),
                    YEAR => time.year = time.year / 100 * 100 + self.decode(value) as i64,
                    _ => time.year = self.decode(value) as i64 * 100 + time.year % 100,
                }
                let set = time.to_seconds();
                match &mut self.held {
                    Some(held) => *held = set,
                    None => self.offset += set - seconds,
                }
            }
            // Derived from the date.
            WEEKDAY => {}
            REGISTER_A => self.cmos[REGISTER_A as usize] = value & !UIP,
            REGISTER_B => {
                let was_set = self.register_b() & SET != 0;
                self.cmos[REGISTER_B as usize] = value;
                match (was_set, value & SET != 0) {
                    (false, true) => self.held = Some(self.now().0),
                    (true, false) => {
                        if let Some(held) = self.held.take() {
                            self.offset = held - host_time().0;
                        }
                    }
                    _ => {}
                }
            }
            REGISTER_C | REGISTER_D => {}
            _ => self.cmos[usize::from(index)] = value,
        }
    }
}

impl ByteRegisters for Rtc {
    fn read_byte(&mut self, offset: u8) -> u8 {
        match offset {
            0 => 0xff, // the index port is write-only
            _ => self.read_register(self.index),
        }
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        match offset {
            0 => {
                self.index = value & 0x7f;
                self.nmi_masked = value & 0x80 != 0;
            }
            _ => self.write_register(self.index, value),
        }
    }
}

impl DescribeAcpi for Rtc {
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        let port = RTC_PORT as u16;
        aml::Device::new(
            "_SB_.RTC_".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0B00")),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![&aml::IO::new(port, port, 1, 2)]),
                ),
            ],
        )
        .to_aml_bytes(sink);
    }
}

impl std::fmt::Debug for Rtc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rtc")
            .field("offset", &self.offset)
            .finish_non_exhaustive()
    }
}

/// The host's wall clock: seconds since the epoch, and nanoseconds into
/// the second.
fn host_time() -> (i64, u32) {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    (now.as_secs() as i64, now.subsec_nanos())
}

/// A UTC date and time of day (proleptic Gregorian calendar).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Civil {
    year: i64,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    /// 0 = Sunday.
    weekday: u32,
}

impl Civil {
    /// From seconds since 1970-01-01T00:00:00Z (days: Howard Hinnant's
    /// civil_from_days).
    fn from_seconds(seconds: i64) -> Civil {
        let days = seconds.div_euclid(86_400);
        let of_day = seconds.rem_euclid(86_400) as u32;
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let of_era = z.rem_euclid(146_097);
        let year_of_era = (of_era - of_era / 1460 + of_era / 36_524 - of_era / 146_096) / 365;
        let day_of_year = of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
        let shifted_month = (5 * day_of_year + 2) / 153;
        let day = (day_of_year - (153 * shifted_month + 2) / 5 + 1) as u32;
        let month = if shifted_month < 10 {
            shifted_month + 3
        } else {
            shifted_month - 9
        } as u32;
        let year = year_of_era + era * 400 + i64::from(month <= 2);
        Civil {
            year,
            month,
            day,
            hour: of_day / 3600,
            minute: of_day / 60 % 60,
            second: of_day % 60,
            weekday: (days + 4).rem_euclid(7) as u32, // 1970-01-01 was a Thursday
        }
    }

    /// Seconds since the epoch; out-of-range fields carry over as a clock
    /// chip's would not, but never panic.
    fn to_seconds(self) -> i64 {
        let month = i64::from(self.month.clamp(1, 12));
        let year = self.year - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + i64::from(self.day.max(1)) - 1;
        let of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + of_era - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rtc() -> Rtc {
        Rtc::new(CmosMemorySize {
            below_4g: 512 << 20,
            above_4g: 0,
        })
    }

    fn read(rtc: &mut Rtc, index: u8) -> u8 {
        rtc.write_byte(0, index);
        rtc.read_byte(1)
    }

    fn write(rtc: &mut Rtc, index: u8, value: u8) {
        rtc.write_byte(0, index);
        rtc.write_byte(1, value);
    }

    /// Sets the clock as Linux does: SET, the fields, then SET cleared.
    fn set(rtc: &mut Rtc, fields: &[(u8, u8)]) {
        let b = read(rtc, REGISTER_B);
        write(rtc, REGISTER_B, b | SET);
        for &(index, value) in fields {
            write(rtc, index, value);
        }
        write(rtc, REGISTER_B, b);
    }

    #[test]
    fn civil_dates_round_trip_across_leap_years_and_centuries() {
        let leap_day = Civil::from_seconds(951_782_400); // 2000-02-29
        assert_eq!((leap_day.year, leap_day.month, leap_day.day), (2000, 2, 29));
        assert_eq!(leap_day.weekday, 2); // a Tuesday
        let epoch = Civil::from_seconds(0);
        assert_eq!(
            (epoch.year, epoch.month, epoch.day, epoch.weekday),
            (1970, 1, 1, 4)
        );
        for seconds in [0, 951_782_400, 4_107_542_399, 1_709_164_800, 2_000_000_000] {
            assert_eq!(Civil::from_seconds(seconds).to_seconds(), seconds);
        }
        // 2100 is not a leap year: 2100-02-28 is followed by 03-01.
        let next = Civil::from_seconds(
            Civil {
                year: 2100,
                month: 2,
                day: 28,
                hour: 0,
                minute: 0,
                second: 0,
                weekday: 0,
            }
            .to_seconds()
                + 86_400,
        );
        assert_eq!((next.month, next.day), (3, 1));
    }

    #[test]
    fn reads_the_host_time_in_bcd_by_default() {
        let mut rtc = rtc();
        let host = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        let year = Civil::from_seconds(host).year;
        let bcd = read(&mut rtc, YEAR);
        assert_eq!(i64::from(bcd >> 4) * 10 + i64::from(bcd & 0xf), year % 100);
        assert_eq!(read(&mut rtc, CENTURY), 0x20);
        assert_eq!(read(&mut rtc, REGISTER_D), VALID);
    }

    #[test]
    fn the_guest_sets_the_time_in_bcd_and_in_binary() {
        let mut rtc = rtc();
        // 2024-12-31 23:59:58, in BCD.
        set(
            &mut rtc,
            &[
                (CENTURY, 0x20),
                (YEAR, 0x24),
                (MONTH, 0x12),
                (DAY, 0x31),
                (HOURS, 0x23),
                (MINUTES, 0x59),
                (SECONDS, 0x58),
            ],
        );
        let (now, _) = rtc.now();
        let expected = Civil {
            year: 2024,
            month: 12,
            day: 31,
            hour: 23,
            minute: 59,
            second: 58,
            weekday: 0,
        }
        .to_seconds();
        assert!((now - expected).abs() <= 1, "{now} vs {expected}");
        // The same clock read in binary.
        write(&mut rtc, REGISTER_B, HOURS_24 | BINARY);
        assert!(matches!(read(&mut rtc, YEAR), 24 | 25));
        assert_eq!(read(&mut rtc, CENTURY), 20);
    }

    #[test]
    fn twelve_hour_mode_shows_pm_in_bit_7() {
        let mut rtc = rtc();
        write(&mut rtc, REGISTER_B, BINARY); // 12-hour, binary
        set(&mut rtc, &[(HOURS, PM | 3), (MINUTES, 0), (SECONDS, 0)]); // 3 PM
        assert_eq!(rtc.now().0.rem_euclid(86_400) / 3600, 15);
        assert_eq!(read(&mut rtc, HOURS), PM | 3);
        set(&mut rtc, &[(HOURS, 12)]); // 12 AM is midnight
        assert_eq!(read(&mut rtc, HOURS), 12);
        assert_eq!(rtc.now().0.rem_euclid(86_400) / 3600, 0);
        write(&mut rtc, REGISTER_B, BINARY | HOURS_24);
        assert_eq!(read(&mut rtc, HOURS), 0);
    }

    #[test]
    fn bcd_seconds_roll_over_into_minutes() {
        let mut rtc = rtc();
        set(&mut rtc, &[(HOURS, 0x10), (MINUTES, 0x59), (SECONDS, 0x59)]);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(read(&mut rtc, MINUTES), 0x00);
        assert_eq!(read(&mut rtc, HOURS), 0x11);
    }

    #[test]
    fn the_clock_holds_while_set_and_the_index_port_masks_nmi() {
        let mut rtc = rtc();
        write(&mut rtc, REGISTER_B, HOURS_24 | SET);
        let held = read(&mut rtc, SECONDS);
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(read(&mut rtc, SECONDS), held);
        assert_eq!(read(&mut rtc, REGISTER_A) & UIP, 0);
        rtc.write_byte(0, 0x80 | REGISTER_D);
        assert!(rtc.nmi_masked());
        assert_eq!(rtc.read_byte(1), VALID);
    }

    #[test]
    fn cmos_memory_holds_the_memory_size_and_guest_bytes() {
        let mut rtc = Rtc::new(CmosMemorySize {
            below_4g: 3 << 30,
            above_4g: 1 << 30,
        });
        assert_eq!(
            u16::from_le_bytes([read(&mut rtc, 0x15), read(&mut rtc, 0x16)]),
            640
        );
        assert_eq!(
            u16::from_le_bytes([read(&mut rtc, 0x30), read(&mut rtc, 0x31)]),
            0xffff
        );
        let above_16m = u16::from_le_bytes([read(&mut rtc, 0x34), read(&mut rtc, 0x35)]);
        assert_eq!(u64::from(above_16m), ((3u64 << 30) - (16 << 20)) >> 16);
        assert_eq!(
            [
                read(&mut rtc, 0x5b),
                read(&mut rtc, 0x5c),
                read(&mut rtc, 0x5d)
            ],
            [0, 0x40, 0]
        );
        write(&mut rtc, 0x40, 0xa5);
        assert_eq!(read(&mut rtc, 0x40), 0xa5);
        // Register C reads 0 (no interrupt flags), D is read-only.
        write(&mut rtc, REGISTER_D, 0);
        assert_eq!(read(&mut rtc, REGISTER_D), VALID);
    }
}
