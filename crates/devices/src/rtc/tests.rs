use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::*;

/// A clock whose RTC_CHANGE offsets the test reads.
struct Harness {
    rtc: Rtc,
    changes: Arc<Mutex<Vec<i64>>>,
    irq: IrqLine,
    virtual_clock: VirtualClock,
}

fn harness(config: RtcConfig) -> Harness {
    let changes = Arc::new(Mutex::new(Vec::new()));
    let irq = IrqLine::new(RTC_IRQ).unwrap();
    let virtual_clock = VirtualClock::new();
    virtual_clock.start();
    let recorded = changes.clone();
    let rtc = Rtc::new(
        config,
        virtual_clock.clone(),
        CmosMemorySize {
            below_4g: 512 << 20,
            above_4g: 0,
        },
        irq.clone(),
        Box::new(move |offset| recorded.lock().unwrap().push(offset)),
    )
    .unwrap();
    Harness {
        rtc,
        changes,
        irq,
        virtual_clock,
    }
}

fn utc() -> Harness {
    harness(RtcConfig::default())
}

impl Harness {
    fn read(&mut self, index: u8) -> u8 {
        self.rtc.write_byte(0, index);
        self.rtc.read_byte(1)
    }

    fn write(&mut self, index: u8, value: u8) {
        self.rtc.write_byte(0, index);
        self.rtc.write_byte(1, value);
    }

    /// Sets the clock as Linux does: SET, the fields, then SET cleared.
    fn set(&mut self, fields: &[(u8, u8)]) {
        let b = self.read(REGISTER_B);
        self.write(REGISTER_B, b | SET);
        for &(index, value) in fields {
            self.write(index, value);
        }
        self.write(REGISTER_B, b);
    }

    /// Sets a BCD date and time.
    fn set_bcd(&mut self, century: u8, year: u8, month: u8, day: u8, time: [u8; 3]) {
        self.set(&[
            (CENTURY, century),
            (YEAR, year),
            (MONTH, month),
            (DAY, day),
            (HOURS, time[0]),
            (MINUTES, time[1]),
            (SECONDS, time[2]),
        ]);
    }

    /// Sets the time it shows, which is no change on the `-rtc base`
    /// timeline: RTC_CHANGE's offset is about 0.
    fn set_back_what_it_shows(&mut self) {
        let date = self.date();
        let time = [date[4], date[5], date[6]];
        self.set_bcd(date[0], date[1], date[2], date[3], time);
        assert!(self.changes()[0].abs() <= 1, "{:?}", self.changes());
    }

    /// Century, year, month, day, hours, minutes, seconds as read.
    fn date(&mut self) -> [u8; 7] {
        [CENTURY, YEAR, MONTH, DAY, HOURS, MINUTES, SECONDS].map(|index| self.read(index))
    }

    fn changes(&self) -> Vec<i64> {
        self.changes.lock().unwrap().clone()
    }

    /// Interrupts raised since the last call.
    fn interrupts(&self) -> u64 {
        self.irq.event().read().unwrap_or(0)
    }
}

fn seconds_of(date: [u8; 7]) -> i64 {
    let bcd = |v: u8| u32::from(v >> 4) * 10 + u32::from(v & 0xf);
    Civil {
        year: i64::from(bcd(date[0]) * 100 + bcd(date[1])),
        month: bcd(date[2]),
        day: bcd(date[3]),
        hour: bcd(date[4]),
        minute: bcd(date[5]),
        second: bcd(date[6]),
        weekday: 0,
    }
    .to_seconds()
}

fn host_seconds() -> i64 {
    (wall_nanos() / NANOS_PER_SECOND) as i64
}

#[test]
fn reads_the_host_time_in_bcd_24_hour_by_default() {
    let mut h = utc();
    let read = seconds_of(h.date());
    assert!((read - host_seconds()).abs() <= 1, "{read}");
    assert_eq!(h.read(REGISTER_A), 0x26);
    assert_eq!(h.read(REGISTER_B), HOURS_24);
    assert_eq!(h.read(REGISTER_D), VALID);
    assert!(h.changes().is_empty(), "no RTC_CHANGE at start");
}

#[test]
fn the_guest_sets_the_time_in_bcd_and_in_binary_and_rtc_change_tells_the_offset() {
    let mut h = utc();
    h.set_bcd(0x20, 0x30, 0x01, 0x01, [0x00, 0x00, 0x00]);
    let expected = seconds_of([0x20, 0x30, 0x01, 0x01, 0, 0, 0]);
    let changes = h.changes();
    assert_eq!(changes.len(), 1, "one event per set: {changes:?}");
    assert!((changes[0] - (expected - host_seconds())).abs() <= 1);
    assert!((seconds_of(h.date()) - expected).abs() <= 1);
    // The same clock read in binary, then set in binary.
    h.write(REGISTER_B, HOURS_24 | BINARY);
    assert_eq!(h.read(CENTURY), 20);
    assert_eq!(h.read(YEAR), 30);
    h.set(&[(YEAR, 31)]);
    assert_eq!(h.read(YEAR), 31);
    assert_eq!(h.changes().len(), 2);
}

#[test]
fn writes_rtc_change_as_qemu_does() {
    let mut h = utc();
    // A direct write while the clock runs is a set.
    h.write(MINUTES, 0x00);
    assert_eq!(h.changes().len(), 1);
    // The weekday and the century alias too.
    h.write(WEEKDAY, 0x03);
    h.write(PS2_CENTURY, 0x20);
    assert_eq!(h.changes().len(), 3);
    assert_eq!(h.rtc.index, CENTURY, "0x37 moves the index to 0x32");
    // Alarms, memory and registers C and D are not.
    h.write(SECONDS_ALARM, 0x10);
    h.write(0x40, 0x55);
    h.write(REGISTER_C, 0);
    h.write(REGISTER_D, 0);
    assert_eq!(h.changes().len(), 3);
    assert_eq!(h.read(REGISTER_D), VALID, "D is read-only");
    // Setting SET and writing fields sends nothing until SET is cleared.
    h.write(REGISTER_B, HOURS_24 | SET);
    h.write(HOURS, 0x05);
    assert_eq!(h.changes().len(), 3);
    h.write(REGISTER_B, HOURS_24);
    assert_eq!(h.changes().len(), 4);
    // Clearing SET when it was not set sends nothing.
    h.write(REGISTER_B, HOURS_24);
    assert_eq!(h.changes().len(), 4);
    // Intel's way: divider reset while setting, then running again.
    h.write(REGISTER_A, 0x70);
    h.write(HOURS, 0x06);
    assert_eq!(h.changes().len(), 4);
    assert_eq!(h.read(HOURS), 0x06, "held while the divider is reset");
    h.write(REGISTER_A, 0x26);
    assert_eq!(h.changes().len(), 5);
    assert_eq!(h.read(HOURS), 0x06);
}

#[test]
fn twelve_hour_mode_shows_pm_in_bit_7() {
    let mut h = utc();
    h.write(REGISTER_B, BINARY); // 12-hour, binary
    h.set(&[(HOURS, PM | 3), (MINUTES, 0), (SECONDS, 0)]); // 3 PM
    assert_eq!(h.read(HOURS), PM | 3);
    h.write(REGISTER_B, BINARY | HOURS_24);
    assert_eq!(h.read(HOURS), 15);
    h.write(REGISTER_B, 0); // 12-hour, BCD
    h.set(&[(HOURS, 0x12)]); // 12 AM is midnight
    assert_eq!(h.read(HOURS), 0x12);
    h.write(REGISTER_B, HOURS_24);
    assert_eq!(h.read(HOURS), 0x00);
    h.write(REGISTER_B, 0);
    h.set(&[(HOURS, PM | 0x12)]); // 12 PM is noon
    h.write(REGISTER_B, HOURS_24);
    assert_eq!(h.read(HOURS), 0x12);
}

#[test]
fn bcd_rolls_over_the_century_and_leap_days() {
    let mut h = utc();
    h.set_bcd(0x20, 0x99, 0x12, 0x31, [0x23, 0x59, 0x59]);
    // The sub-second phase carries over the set, so 1.1 s later the
    // seconds read 00 or 01.
    std::thread::sleep(Duration::from_millis(1100));
    let date = h.date();
    assert_eq!(date[..6], [0x21, 0x00, 0x01, 0x01, 0x00, 0x00]);
    assert!(date[6] <= 0x01, "seconds {:#x}", date[6]);
    // 2100 is not a leap year; 2024 is.
    h.set_bcd(0x21, 0x00, 0x02, 0x28, [0x23, 0x59, 0x59]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.date()[2..4], [0x03, 0x01]);
    h.set_bcd(0x20, 0x24, 0x02, 0x28, [0x23, 0x59, 0x59]);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.date()[2..4], [0x02, 0x29]);
    assert_eq!(h.read(WEEKDAY), 0x05, "2024-02-29 was a Thursday");
}

#[test]
fn set_holds_the_clock_and_drops_uie() {
    let mut h = utc();
    h.write(REGISTER_B, HOURS_24 | SET | UIE);
    assert_eq!(h.read(REGISTER_B), HOURS_24 | SET);
    let held = h.read(SECONDS);
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.read(SECONDS), held);
    assert_eq!(h.read(REGISTER_A) & UIP, 0);
    // The index port's bit 7 (NMI mask) selects the same register.
    h.rtc.write_byte(0, 0x80 | REGISTER_D);
    assert_eq!(h.rtc.read_byte(1), VALID);
}

#[test]
fn update_ended_is_flagged_every_second_and_interrupts_only_when_enabled() {
    let mut h = utc();
    h.read(REGISTER_C);
    std::thread::sleep(Duration::from_millis(1100));
    h.rtc.expired();
    assert_eq!(h.read(REGISTER_C), UF, "flag without interrupt");
    assert_eq!(h.interrupts(), 0);
    h.write(REGISTER_B, HOURS_24 | UIE);
    std::thread::sleep(Duration::from_millis(1100));
    h.rtc.expired();
    assert_eq!(h.interrupts(), 1);
    assert_eq!(h.read(REGISTER_C), IRQF | UF);
    assert_eq!(h.read(REGISTER_C), 0, "reading C clears it");
}

#[test]
fn periodic_ticks_only_while_pie_is_set() {
    let mut h = utc();
    h.write(REGISTER_A, DIVIDER_RUNNING | 15); // 2 Hz
    std::thread::sleep(Duration::from_millis(600));
    h.rtc.expired();
    assert_eq!(h.read(REGISTER_C) & PF, 0);
    h.write(REGISTER_B, HOURS_24 | PIE);
    std::thread::sleep(Duration::from_millis(600));
    h.rtc.expired();
    assert_eq!(h.interrupts(), 1);
    // A second tick while IRQF is up makes no second edge.
    std::thread::sleep(Duration::from_millis(600));
    h.rtc.expired();
    assert_eq!(h.interrupts(), 0);
    assert_eq!(h.read(REGISTER_C) & (IRQF | PF), IRQF | PF);
    std::thread::sleep(Duration::from_millis(600));
    h.rtc.expired();
    assert_eq!(h.interrupts(), 1, "after C was read");
    assert_eq!(h.rtc.period(), Some(NANOS_PER_SECOND / 2));
    h.write(REGISTER_A, DIVIDER_RUNNING | 3);
    assert_eq!(h.rtc.period(), Some(122_070), "8192 Hz");
    h.write(REGISTER_A, DIVIDER_RUNNING | 1);
    assert_eq!(h.rtc.period(), Some(3_906_250), "256 Hz");
}

#[test]
fn the_alarm_goes_off_when_its_fields_match() {
    let mut h = utc();
    // Every second: all three fields "don't care".
    for index in [SECONDS_ALARM, MINUTES_ALARM, HOURS_ALARM] {
        h.write(index, DONT_CARE);
    }
    h.write(REGISTER_B, HOURS_24 | AIE);
    h.read(REGISTER_C);
    std::thread::sleep(Duration::from_millis(1100));
    h.rtc.expired();
    assert_eq!(h.interrupts(), 1);
    assert_eq!(h.read(REGISTER_C), IRQF | AF | UF);
    // An alarm hours away does not go off (twelve, so that no hour
    // boundary crossed during the test can reach it).
    let hours = h.read(HOURS);
    let later = ((hours >> 4) * 10 + (hours & 0xf) + 12) % 24;
    h.write(HOURS_ALARM, ((later / 10) << 4) | (later % 10));
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(h.read(REGISTER_C), UF);
}

#[test]
fn a_reset_clears_interrupt_enables_and_flags_but_not_uie_or_the_time() {
    let mut h = utc();
    h.write(SHUTDOWN_STATUS, 0x05);
    h.write(REGISTER_B, HOURS_24 | PIE | AIE | UIE | SQWE);
    h.set_bcd(0x20, 0x30, 0x06, 0x15, [0x12, 0x00, 0x00]);
    h.rtc.reset();
    assert_eq!(h.read(REGISTER_B), HOURS_24 | UIE);
    assert_eq!(h.read(SHUTDOWN_STATUS), 0);
    assert_eq!(h.read(YEAR), 0x30);
    h.write(SHUTDOWN_STATUS, S3_RESUME);
    h.rtc.reset();
    assert_eq!(h.read(SHUTDOWN_STATUS), S3_RESUME);
}

#[test]
fn rtc_base_sets_the_start_and_the_timeline_offsets_count_from() {
    let base = seconds_of([0x20, 0x06, 0x06, 0x17, 0x16, 0x01, 0x21]);
    let mut h = harness(RtcConfig {
        base: RtcBase::At(base),
        clock: RtcClock::Host,
    });
    assert!((seconds_of(h.date()) - base).abs() <= 1);
    h.set_back_what_it_shows();

    let mut h = harness(RtcConfig {
        base: RtcBase::LocalTime { utc_offset: 3600 },
        clock: RtcClock::Host,
    });
    assert!((seconds_of(h.date()) - host_seconds() - 3600).abs() <= 1);
    h.set_back_what_it_shows();
}

#[test]
fn clock_vm_stands_still_while_the_vm_is_stopped() {
    let mut h = harness(RtcConfig {
        base: RtcBase::Utc,
        clock: RtcClock::Vm,
    });
    h.virtual_clock.stop();
    let before = seconds_of(h.date());
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(seconds_of(h.date()), before);
    h.virtual_clock.start();
    h.rtc.clock_started();
    std::thread::sleep(Duration::from_millis(1100));
    assert!(seconds_of(h.date()) > before);
}

#[test]
fn cmos_memory_holds_the_memory_size_and_guest_bytes() {
    let cmos = cmos_memory(CmosMemorySize {
        below_4g: 3 << 30,
        above_4g: 1 << 30,
    });
    let word = |at: usize| u16::from_le_bytes([cmos[at], cmos[at + 1]]);
    assert_eq!(word(0x15), 640);
    assert_eq!(word(0x17), 0xffff);
    assert_eq!(word(0x30), 0xffff);
    assert_eq!(u64::from(word(0x34)), ((3u64 << 30) - (16 << 20)) >> 16);
    assert_eq!(cmos[0x5b..0x5e], [0, 0x40, 0]);
    let small = cmos_memory(CmosMemorySize {
        below_4g: 512 << 10,
        above_4g: 0,
    });
    assert_eq!(u16::from_le_bytes([small[0x15], small[0x16]]), 512);
    let mut h = utc();
    h.write(0x40, 0xa5);
    assert_eq!(h.read(0x40), 0xa5);
}
