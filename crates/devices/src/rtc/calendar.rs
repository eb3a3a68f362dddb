//! Dates for the clock chip: seconds since the epoch to a civil date and
//! back (proleptic Gregorian calendar, as QEMU's mktimegm and gmtime).

/// A UTC date and time of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i64,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
    /// 0 = Sunday.
    pub weekday: u32,
}

pub const SECONDS_PER_DAY: i64 = 86_400;

impl Civil {
    /// From seconds since 1970-01-01T00:00:00Z (days: Howard Hinnant's
    /// civil_from_days).
    pub fn from_seconds(seconds: i64) -> Civil {
        let days = seconds.div_euclid(SECONDS_PER_DAY);
        let of_day = seconds.rem_euclid(SECONDS_PER_DAY) as u32;
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

    /// Seconds since the epoch.  Fields past their range carry over, as
    /// mktimegm's do.
    pub fn to_seconds(self) -> i64 {
        let months = i64::from(self.month) - 1;
        let month = months.rem_euclid(12) + 1;
        let year = self.year + months.div_euclid(12) - i64::from(month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year.rem_euclid(400);
        let day_of_year = (153 * ((month + 9) % 12) + 2) / 5 + i64::from(self.day.max(1)) - 1;
        let of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + of_era - 719_468;
        days * SECONDS_PER_DAY
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
    }
}

/// Seconds since the epoch of a UTC date and time, fields past their
/// range carrying over (QEMU's mktimegm, for `-rtc base=`).
pub fn utc_seconds(year: i64, month: u32, day: u32, hour: u32, minute: u32, second: u32) -> i64 {
    Civil {
        year,
        month,
        day,
        hour,
        minute,
        second,
        weekday: 0,
    }
    .to_seconds()
}

/// An alarm: hour, minute and second, each `None` for "any".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Alarm {
    pub hour: Option<u32>,
    pub minute: Option<u32>,
    pub second: Option<u32>,
}

impl Alarm {
    /// The first second after `after` (seconds since the epoch) at which
    /// the alarm goes off; `None` when it never does (a field out of
    /// range).
    pub fn next_after(&self, after: i64) -> Option<i64> {
        let of_day = after.rem_euclid(SECONDS_PER_DAY);
        let midnight = after - of_day;
        let matches = |field: Option<u32>, value: u32| field.is_none_or(|f| f == value);
        for day in 0..2 {
            for hour in (0..24).filter(|&h| matches(self.hour, h)) {
                for minute in (0..60).filter(|&m| matches(self.minute, m)) {
                    let start = i64::from(hour * 3600 + minute * 60);
                    if day == 0 && start + 59 <= of_day {
                        continue;
                    }
                    for second in (0..60).filter(|&s| matches(self.second, s)) {
                        let at = day * SECONDS_PER_DAY + start + i64::from(second);
                        if day > 0 || at > of_day {
                            return Some(midnight + at);
                        }
                    }
                }
            }
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use utc_seconds as at;

    #[test]
    fn dates_round_trip_across_leap_years_and_centuries() {
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
        // 2100 is not a leap year, 2000 and 2024 are, 1900 is not.
        for (year, leap) in [(2100, false), (2000, true), (2024, true), (1900, false)] {
            let next = Civil::from_seconds(at(year, 2, 28, 12, 0, 0) + SECONDS_PER_DAY);
            assert_eq!((next.month, next.day), if leap { (2, 29) } else { (3, 1) });
        }
    }

    #[test]
    fn out_of_range_fields_carry_over_as_mktimegm() {
        assert_eq!(at(2024, 2, 30, 0, 0, 0), at(2024, 3, 1, 0, 0, 0));
        assert_eq!(at(2024, 12, 31, 24, 0, 0), at(2025, 1, 1, 0, 0, 0));
        assert_eq!(at(2024, 1, 1, 0, 0, 60), at(2024, 1, 1, 0, 1, 0));
        assert_eq!(at(2006, 13, 45, 0, 0, 0), at(2007, 2, 14, 0, 0, 0));
        assert_eq!(at(2024, 0, 1, 0, 0, 0), at(2023, 12, 1, 0, 0, 0));
    }

    #[test]
    fn alarms_go_off_at_the_next_matching_second() {
        let noon = at(2024, 5, 1, 12, 0, 0);
        let every_second = Alarm {
            hour: None,
            minute: None,
            second: None,
        };
        assert_eq!(every_second.next_after(noon), Some(noon + 1));
        let at_30s = Alarm {
            second: Some(30),
            ..every_second
        };
        assert_eq!(at_30s.next_after(noon), Some(noon + 30));
        assert_eq!(at_30s.next_after(noon + 30), Some(noon + 90));
        // 11:00:00 has passed today: tomorrow's.
        let eleven = Alarm {
            hour: Some(11),
            minute: Some(0),
            second: Some(0),
        };
        assert_eq!(eleven.next_after(noon), Some(noon + SECONDS_PER_DAY - 3600));
        // Across midnight.
        let midnight = Alarm {
            hour: Some(0),
            minute: Some(0),
            second: Some(0),
        };
        assert_eq!(
            midnight.next_after(at(2024, 12, 31, 23, 59, 59)),
            Some(at(2025, 1, 1, 0, 0, 0))
        );
        let never = Alarm {
            hour: Some(24),
            ..every_second
        };
        assert_eq!(never.next_after(noon), None);
    }
}
