//! The CMOS clock from the guest's side: registers through ports 0x70 and
//! 0x71, the date and time in BCD as the chip keeps them by default.

use crate::io::{inb, outb};

pub const SECONDS: u8 = 0x00;
pub const SECONDS_ALARM: u8 = 0x01;
pub const MINUTES: u8 = 0x02;
pub const MINUTES_ALARM: u8 = 0x03;
pub const HOURS: u8 = 0x04;
pub const HOURS_ALARM: u8 = 0x05;
pub const DAY: u8 = 0x07;
pub const MONTH: u8 = 0x08;
pub const YEAR: u8 = 0x09;
pub const REGISTER_A: u8 = 0x0a;
pub const REGISTER_B: u8 = 0x0b;
pub const REGISTER_C: u8 = 0x0c;
pub const CENTURY: u8 = 0x32;
/// Register A: update in progress.
pub const UIP: u8 = 0x80;
/// Register B: SET, the periodic, alarm and update-ended interrupts.
pub const SET: u8 = 0x80;
pub const PIE: u8 = 0x40;
pub const AIE: u8 = 0x20;
pub const UIE: u8 = 0x10;
/// Register C: periodic, alarm, update-ended flags.
pub const PF: u8 = 0x40;
pub const AF: u8 = 0x20;
pub const UF: u8 = 0x10;
/// The RTC's interrupt: ISA IRQ 8, GSI 8.
pub const GSI: u32 = 8;

pub fn read(index: u8) -> u8 {
    outb(0x70, index);
    inb(0x71)
}

pub fn write(index: u8, value: u8) {
    outb(0x70, index);
    outb(0x71, value);
}

fn from_bcd(value: u8) -> u32 {
    u32::from(value >> 4) * 10 + u32::from(value & 0x0f)
}

fn to_bcd(value: u32) -> u8 {
    ((value / 10 % 10) << 4 | value % 10) as u8
}

/// A date and time of day (UTC).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct DateTime {
    pub year: u32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

impl DateTime {
    /// Seconds since the epoch (days: Howard Hinnant's days_from_civil).
    pub fn epoch(&self) -> i64 {
        let (year, month) = (i64::from(self.year), i64::from(self.month));
        let year = year - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + i64::from(self.day) - 1;
        let days = era * 146_097 + year_of_era * 365 + year_of_era / 4 - year_of_era / 100
            + day_of_year
            - 719_468;
        days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }

    /// `YYYY-MM-DDTHH:MM:SS`.
    pub fn parse(text: &str) -> Option<DateTime> {
        let bytes = text.as_bytes();
        if bytes.len() != 19 {
            return None;
        }
        let number = |from: usize, len: usize| -> Option<u32> {
            core::str::from_utf8(&bytes[from..from + len])
                .ok()?
                .parse()
                .ok()
        };
        Some(DateTime {
            year: number(0, 4)?,
            month: number(5, 2)?,
            day: number(8, 2)?,
            hour: number(11, 2)?,
            minute: number(14, 2)?,
            second: number(17, 2)?,
        })
    }
}

impl core::fmt::Display for DateTime {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )
    }
}

/// Reads the clock as Linux does: after any update in progress, and again
/// until two reads agree.
pub fn now() -> DateTime {
    loop {
        while read(REGISTER_A) & UIP != 0 {}
        let first = read_fields();
        if read_fields() == first {
            return first;
        }
    }
}

fn read_fields() -> DateTime {
    DateTime {
        year: from_bcd(read(CENTURY)) * 100 + from_bcd(read(YEAR)),
        month: from_bcd(read(MONTH)),
        day: from_bcd(read(DAY)),
        hour: from_bcd(read(HOURS)),
        minute: from_bcd(read(MINUTES)),
        second: from_bcd(read(SECONDS)),
    }
}

/// Sets the clock as Linux does on AMD: SET, the fields, SET cleared.
pub fn set(time: &DateTime) {
    let b = read(REGISTER_B);
    write(REGISTER_B, b | SET);
    write(CENTURY, to_bcd(time.year / 100));
    write(YEAR, to_bcd(time.year % 100));
    write(MONTH, to_bcd(time.month));
    write(DAY, to_bcd(time.day));
    write(HOURS, to_bcd(time.hour));
    write(MINUTES, to_bcd(time.minute));
    write(SECONDS, to_bcd(time.second));
    write(REGISTER_B, b);
}

/// Sets the alarm to `seconds` after now (within the hour's wrap).
pub fn alarm_in(seconds: u32) {
    let now = now();
    let of_day = (now.hour * 3600 + now.minute * 60 + now.second + seconds) % 86_400;
    write(HOURS_ALARM, to_bcd(of_day / 3600));
    write(MINUTES_ALARM, to_bcd(of_day / 60 % 60));
    write(SECONDS_ALARM, to_bcd(of_day % 60));
}
