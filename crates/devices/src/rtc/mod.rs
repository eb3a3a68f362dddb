//! The MC146818 CMOS real-time clock and its 128 bytes of CMOS memory, at
//! ports 0x70 (index) and 0x71 (data), interrupting on IRQ 8, as QEMU's
//! mc146818rtc behaves.
//!
//! The guest's time is a time source (`-rtc clock=`) plus an offset (from
//! `-rtc base=` and the times the guest sets).  The time and date
//! registers are latched from it when read while the clock runs; while
//! register B's SET bit or a stopped divider holds the clock, they are
//! plain memory, and the time written there becomes the clock's when the
//! clock runs again — which is when RTC_CHANGE is reported.  The
//! update-ended and alarm flags are worked out when register C is read or
//! the device's timer fires; the timer is armed only for the interrupts
//! the guest enabled.

mod calendar;
mod source;

use std::os::fd::RawFd;

use acpi_tables::{aml, Aml, AmlSink};

use crate::timer::{DeviceTimer, Timed};
use crate::{ByteRegisters, DescribeAcpi, IrqLine, VirtualClock};
pub use calendar::utc_seconds;
use calendar::{Alarm, Civil};
use source::{wall_nanos, TimeSource, NANOS_PER_SECOND};
pub use source::{RtcBase, RtcClock, RtcConfig};

pub const RTC_PORT: u64 = 0x70;
pub const RTC_PORT_LEN: u64 = 2;
/// The RTC's ISA interrupt, which is GSI 8.
pub const RTC_IRQ: u32 = 8;

const SECONDS: u8 = 0x00;
const SECONDS_ALARM: u8 = 0x01;
const MINUTES: u8 = 0x02;
const MINUTES_ALARM: u8 = 0x03;
const HOURS: u8 = 0x04;
const HOURS_ALARM: u8 = 0x05;
const WEEKDAY: u8 = 0x06;
const DAY: u8 = 0x07;
const MONTH: u8 = 0x08;
const YEAR: u8 = 0x09;
const REGISTER_A: u8 = 0x0a;
const REGISTER_B: u8 = 0x0b;
const REGISTER_C: u8 = 0x0c;
const REGISTER_D: u8 = 0x0d;
/// The shutdown-status byte, which a reset clears unless it marks an S3
/// resume.
const SHUTDOWN_STATUS: u8 = 0x0f;
const S3_RESUME: u8 = 0xfe;
const CENTURY: u8 = 0x32;
/// IBM PS/2's place for the century: an alias that moves the index to 0x32.
const PS2_CENTURY: u8 = 0x37;

/// Register A: update in progress (read-only); the divider bits, and the
/// values that run the clock or hold it in reset; the periodic rate.
const UIP: u8 = 0x80;
const DIVIDER: u8 = 0x70;
const DIVIDER_RUNNING: u8 = 0x20;
const DIVIDER_RESET: u8 = 0x60;
const RATE: u8 = 0x0f;
/// Register B: updates halted while the guest sets the clock; the
/// periodic, alarm and update-ended interrupt enables; square wave;
/// binary (not BCD); 24-hour (not 12-hour).
const SET: u8 = 0x80;
const PIE: u8 = 0x40;
const AIE: u8 = 0x20;
const UIE: u8 = 0x10;
const SQWE: u8 = 0x08;
const BINARY: u8 = 0x04;
const HOURS_24: u8 = 0x02;
/// Register C: an enabled interrupt is pending; periodic, alarm and
/// update-ended flags.
const IRQF: u8 = 0x80;
const PF: u8 = 0x40;
const AF: u8 = 0x20;
const UF: u8 = 0x10;
const FLAGS: u8 = PF | AF | UF;
/// Register D: the battery is good, memory and time valid.
const VALID: u8 = 0x80;
/// The hours register's PM bit in 12-hour mode.
const PM: u8 = 0x80;
/// An alarm field matching every value.
const DONT_CARE: u8 = 0xc0;
/// How long before each second's end UIP shows: 8 cycles of 32.768 kHz.
const UIP_NANOS: i128 = 8 * NANOS_PER_SECOND / 32_768;

/// Guest RAM for the CMOS memory-size fields.
#[derive(Debug, Clone, Copy)]
pub struct CmosMemorySize {
    pub below_4g: u64,
    pub above_4g: u64,
}

/// Told the guest's new time: its offset in seconds from the host's time
/// on the `-rtc base` timeline (RTC_CHANGE's `offset`).
pub type OnTimeSet = Box<dyn Fn(i64) + Send>;

pub struct Rtc {
    index: u8,
    cmos: [u8; 128],
    source: TimeSource,
    /// Guest time − source time, in nanoseconds.
    offset: i128,
    /// Guest time − host time at start, in seconds (`-rtc base`).
    base_shift: i64,
    /// The guest time up to which UF and AF have been worked out.
    checked: i128,
    /// The next periodic tick, on the source's time, while PIE is set.
    next_tick: Option<i128>,
    irq: IrqLine,
    timer: DeviceTimer,
    on_time_set: OnTimeSet,
}

impl Rtc {
    pub fn new(
        config: RtcConfig,
        virtual_clock: VirtualClock,
        memory: CmosMemorySize,
        irq: IrqLine,
        on_time_set: OnTimeSet,
    ) -> std::io::Result<Rtc> {
        let source = TimeSource::new(config.clock, virtual_clock);
        let now = source.now();
        let (offset, base_shift) = match config.base {
            RtcBase::Utc => (0, 0),
            RtcBase::LocalTime { utc_offset } => {
                (i128::from(utc_offset) * NANOS_PER_SECOND, utc_offset)
            }
            RtcBase::At(seconds) => {
                let offset = i128::from(seconds) * NANOS_PER_SECOND - now;
                (offset, (offset / NANOS_PER_SECOND) as i64)
            }
        };
        let mut rtc = Rtc {
            index: 0,
            cmos: cmos_memory(memory),
            source,
            offset,
            base_shift,
            checked: now + offset,
            next_tick: None,
            irq,
            timer: DeviceTimer::new()?,
            on_time_set,
        };
        rtc.cmos[usize::from(REGISTER_A)] = DIVIDER_RUNNING | 0x06; // 32.768 kHz, 1024 Hz
        rtc.cmos[usize::from(REGISTER_B)] = HOURS_24;
        rtc.cmos[usize::from(REGISTER_D)] = VALID;
        rtc.latch();
        Ok(rtc)
    }

    /// A system reset: interrupts off and flags clear; the time is kept.
    pub fn reset(&mut self) {
        self.cmos[usize::from(REGISTER_B)] &= !(PIE | AIE | SQWE);
        self.cmos[usize::from(REGISTER_C)] = 0;
        if self.cmos[usize::from(SHUTDOWN_STATUS)] != S3_RESUME {
            self.cmos[usize::from(SHUTDOWN_STATUS)] = 0;
        }
        self.next_tick = None;
        self.checked = self.guest_now();
        self.arm();
    }

    fn register(&self, index: u8) -> u8 {
        self.cmos[usize::from(index)]
    }

    fn guest_now(&self) -> i128 {
        self.source.now() + self.offset
    }

    /// The clock counts: neither SET nor a stopped divider holds it.
    fn running(&self) -> bool {
        self.register(REGISTER_B) & SET == 0
            && self.register(REGISTER_A) & DIVIDER <= DIVIDER_RUNNING
    }

    /// Writes the current time into the time and date registers.
    fn latch(&mut self) {
        let seconds = self.guest_now().div_euclid(NANOS_PER_SECOND) as i64;
        let time = Civil::from_seconds(seconds);
        let fields = [
            (SECONDS, self.encode(time.second)),
            (MINUTES, self.encode(time.minute)),
            (HOURS, self.encode_hours(time.hour)),
            (WEEKDAY, self.encode(time.weekday + 1)),
            (DAY, self.encode(time.day)),
            (MONTH, self.encode(time.month)),
            (YEAR, self.encode(time.year.rem_euclid(100) as u32)),
            (CENTURY, self.encode(time.year.div_euclid(100) as u32)),
        ];
        for (index, value) in fields {
            self.cmos[usize::from(index)] = value;
        }
    }

    /// The time the registers hold, in seconds since the epoch (the
    /// weekday is ignored, as by QEMU).
    fn registers_time(&self) -> i64 {
        Civil {
            year: i64::from(self.decode(self.register(CENTURY))) * 100
                + i64::from(self.decode(self.register(YEAR))),
            month: self.decode(self.register(MONTH)),
            day: self.decode(self.register(DAY)),
            hour: self.decode_hours(self.register(HOURS)),
            minute: self.decode(self.register(MINUTES)),
            second: self.decode(self.register(SECONDS)),
            weekday: 0,
        }
        .to_seconds()
    }

    /// The clock takes the time the registers hold, `phase` nanoseconds
    /// into its second, and RTC_CHANGE reports it.
    fn set_from_registers(&mut self, phase: i128) {
        let seconds = self.registers_time();
        self.offset = i128::from(seconds) * NANOS_PER_SECOND + phase - self.source.now();
        self.checked = self.guest_now();
        let host = wall_nanos().div_euclid(NANOS_PER_SECOND) as i64;
        let offset = seconds.saturating_sub(host.saturating_add(self.base_shift));
        log::debug!("the guest set its clock: {offset} s from the host's");
        (self.on_time_set)(offset);
    }

    fn phase(&self) -> i128 {
        self.guest_now().rem_euclid(NANOS_PER_SECOND)
    }

    /// A clock value as the guest reads it: BCD unless binary mode.
    fn encode(&self, value: u32) -> u8 {
        let value = value as u8;
        if self.register(REGISTER_B) & BINARY != 0 {
            value
        } else {
            (value / 10) << 4 | (value % 10)
        }
    }

    fn decode(&self, value: u8) -> u32 {
        if self.register(REGISTER_B) & BINARY != 0 {
            u32::from(value)
        } else {
            u32::from(value >> 4) * 10 + u32::from(value & 0x0f)
        }
    }

    fn encode_hours(&self, hours: u32) -> u8 {
        if self.register(REGISTER_B) & HOURS_24 != 0 {
            return self.encode(hours);
        }
        let twelve = match hours % 12 {
            0 => 12,
            h => h,
        };
        self.encode(twelve) | if hours >= 12 { PM } else { 0 }
    }

    fn decode_hours(&self, value: u8) -> u32 {
        if self.register(REGISTER_B) & HOURS_24 != 0 {
            return self.decode(value);
        }
        let twelve = self.decode(value & !PM) % 12;
        twelve + if value & PM != 0 { 12 } else { 0 }
    }

    fn alarm(&self) -> Alarm {
        let field = |index: u8, decode: &dyn Fn(u8) -> u32| {
            let value = self.register(index);
            (value & DONT_CARE != DONT_CARE).then(|| decode(value))
        };
        Alarm {
            hour: field(HOURS_ALARM, &|v| self.decode_hours(v)),
            minute: field(MINUTES_ALARM, &|v| self.decode(v)),
            second: field(SECONDS_ALARM, &|v| self.decode(v)),
        }
    }

    /// Sets the flags of what happened since the last look: each second
    /// that ended (UF), an alarm that went off (AF) while the clock ran, a
    /// periodic tick (PF) while PIE is set.  A newly set flag whose
    /// interrupt is enabled raises IRQ 8 unless one is already pending.
    fn account(&mut self) {
        let now = self.guest_now();
        let mut flags = 0;
        if self.running() {
            let from = self.checked.div_euclid(NANOS_PER_SECOND) as i64;
            let to = now.div_euclid(NANOS_PER_SECOND) as i64;
            if to > from {
                flags |= UF;
                if self.alarm().next_after(from).is_some_and(|at| at <= to) {
                    flags |= AF;
                }
            }
        }
        self.checked = self.checked.max(now);
        if let Some(tick) = self.next_tick {
            let source_now = self.source.now();
            if source_now >= tick {
                flags |= PF;
                let period = self.period().unwrap_or(NANOS_PER_SECOND);
                // Ticks the guest missed are dropped (QEMU's lost-tick
                // policy "discard").
                self.next_tick = Some(tick + ((source_now - tick) / period + 1) * period);
            }
        }
        let c = self.register(REGISTER_C);
        let newly = flags & !c;
        self.cmos[usize::from(REGISTER_C)] = c | flags;
        if newly & self.register(REGISTER_B) & FLAGS != 0 {
            self.raise();
        }
    }

    /// Sets IRQF; interrupts on its rise (the line stays up until C is read).
    fn raise(&mut self) {
        let c = self.register(REGISTER_C);
        self.cmos[usize::from(REGISTER_C)] = c | IRQF;
        if c & IRQF == 0 {
            if let Err(error) = self.irq.trigger() {
                log::error!("cannot raise the clock's interrupt: {error}");
            }
        }
    }

    /// The periodic interrupt's period, when the rate selects one.
    fn period(&self) -> Option<i128> {
        let rate = match self.register(REGISTER_A) & RATE {
            0 => return None,
            // Rates 1 and 2 are 7 and 8 on the 32.768 kHz time base.
            rate @ 1..=2 => rate + 7,
            rate => rate,
        };
        Some((1i128 << (rate - 1)) * NANOS_PER_SECOND / 32_768)
    }

    /// Starts, moves or stops the periodic ticks as PIE and the rate say.
    fn arm_periodic(&mut self) {
        self.next_tick = match self.period() {
            Some(period) if self.register(REGISTER_B) & PIE != 0 => {
                Some(self.source.now() + period)
            }
            _ => None,
        };
    }

    /// Arms the timer for the next enabled interrupt.
    fn arm(&mut self) {
        let b = self.register(REGISTER_B);
        let mut next = self.next_tick;
        let mut consider = |guest_seconds: i64| {
            let at = i128::from(guest_seconds) * NANOS_PER_SECOND - self.offset;
            next = Some(next.map_or(at, |next| next.min(at)));
        };
        if self.running() {
            let second = self.guest_now().div_euclid(NANOS_PER_SECOND) as i64;
            if b & UIE != 0 {
                consider(second + 1);
            }
            if b & AIE != 0 {
                if let Some(alarm) = self.alarm().next_after(second) {
                    consider(alarm);
                }
            }
        }
        match next.and_then(|at| self.source.until(at)) {
            Some(after) => self.timer.arm(after),
            None => self.timer.disarm(),
        }
    }

    fn read_register(&mut self, index: u8) -> u8 {
        match index {
            SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY => {
                if self.running() {
                    self.latch();
                }
                self.register(index)
            }
            REGISTER_A => {
                let a = self.register(REGISTER_A);
                if self.running() && self.phase() >= NANOS_PER_SECOND - UIP_NANOS {
                    a | UIP
                } else {
                    a
                }
            }
            REGISTER_C => {
                self.account();
                let c = self.register(REGISTER_C);
                self.cmos[usize::from(REGISTER_C)] = 0;
                self.arm();
                c
            }
            _ => self.register(index),
        }
    }

    fn write_register(&mut self, index: u8, value: u8) {
        self.account();
        match index {
            SECONDS | MINUTES | HOURS | WEEKDAY | DAY | MONTH | YEAR | CENTURY => {
                if self.running() {
                    // The other fields hold the time now, not a stale one.
                    self.latch();
                    self.cmos[usize::from(index)] = value;
                    let phase = self.phase();
                    self.set_from_registers(phase);
                } else {
                    self.cmos[usize::from(index)] = value;
                }
            }
            REGISTER_A => self.write_register_a(value),
            REGISTER_B => self.write_register_b(value),
            REGISTER_C | REGISTER_D => {}
            _ => self.cmos[usize::from(index)] = value,
        }
        self.arm();
    }

    fn write_register_a(&mut self, value: u8) {
        let old = self.register(REGISTER_A);
        if self.running() {
            self.latch();
        }
        self.cmos[usize::from(REGISTER_A)] = value & !UIP;
        // Leaving divider reset: the first update comes half a second on.
        let leaves_reset = old & DIVIDER_RESET == DIVIDER_RESET
            && value & DIVIDER <= DIVIDER_RUNNING
            && self.register(REGISTER_B) & SET == 0;
        if leaves_reset {
            self.set_from_registers(NANOS_PER_SECOND / 2);
        } else if old & RATE != value & RATE {
            self.arm_periodic();
        }
    }

    fn write_register_b(&mut self, mut value: u8) {
        let old = self.register(REGISTER_B);
        if value & SET != 0 {
            if self.running() {
                self.latch();
            }
            // Setting SET drops UIE, as QEMU does.
            value &= !UIE;
        }
        self.cmos[usize::from(REGISTER_B)] = value;
        let set_cleared = old & SET != 0 && value & SET == 0;
        if set_cleared && self.register(REGISTER_A) & DIVIDER <= DIVIDER_RUNNING {
            let phase = self.phase();
            self.set_from_registers(phase);
        }
        if (old ^ value) & PIE != 0 {
            self.arm_periodic();
        }
        let c = self.register(REGISTER_C);
        if value & c & FLAGS != 0 {
            self.raise();
        } else {
            self.cmos[usize::from(REGISTER_C)] = c & !IRQF;
        }
    }
}

/// CMOS memory with the memory-size fields QEMU's microvm fills in.
fn cmos_memory(memory: CmosMemorySize) -> [u8; 128] {
    let mut cmos = [0u8; 128];
    // Base memory in KiB, up to 640.
    let base = (memory.below_4g / 1024).min(640) as u16;
    cmos[0x15..0x17].copy_from_slice(&base.to_le_bytes());
    // Extended memory above 1 MiB in KiB, and above 16 MiB in 64 KiB
    // units, each at most 0xffff; above 4 GiB in 64 KiB units.
    let extended = (memory.below_4g / 1024).saturating_sub(1024).min(0xffff) as u16;
    cmos[0x17..0x19].copy_from_slice(&extended.to_le_bytes());
    cmos[0x30..0x32].copy_from_slice(&extended.to_le_bytes());
    let above_16m = (memory.below_4g.saturating_sub(16 << 20) >> 16).min(0xffff) as u16;
    cmos[0x34..0x36].copy_from_slice(&above_16m.to_le_bytes());
    let above_4g = (memory.above_4g >> 16).min(0xff_ffff) as u32;
    cmos[0x5b..0x5e].copy_from_slice(&above_4g.to_le_bytes()[..3]);
    cmos
}

impl ByteRegisters for Rtc {
    fn read_byte(&mut self, offset: u8) -> u8 {
        match offset {
            0 => 0xff, // the index port is write-only
            _ => {
                if self.index == PS2_CENTURY {
                    self.index = CENTURY;
                }
                self.read_register(self.index)
            }
        }
    }

    fn write_byte(&mut self, offset: u8, value: u8) {
        match offset {
            // Bit 7 masks NMIs on a PC; QEMU ignores it, and so does kvmon:
            // inject-nmi and the watchdog's NMI reach the guest regardless.
            0 => self.index = value & 0x7f,
            _ => {
                if self.index == PS2_CENTURY {
                    self.index = CENTURY;
                }
                self.write_register(self.index, value)
            }
        }
    }
}

impl Timed for Rtc {
    fn timer_fd(&self) -> RawFd {
        self.timer.fd()
    }

    fn expired(&mut self) {
        self.timer.acknowledge();
        self.account();
        self.arm();
    }

    fn clock_started(&mut self) {
        self.account();
        self.arm();
    }
}

impl DescribeAcpi for Rtc {
    /// As QEMU's: eight ports and IRQ 8 (without the IRQ, Linux's rtc_cmos
    /// gets no interrupt on a hardware-reduced ACPI machine).
    fn append_aml(&self, sink: &mut dyn AmlSink) {
        let port = RTC_PORT as u16;
        aml::Device::new(
            "_SB_.RTC_".into(),
            vec![
                &aml::Name::new("_HID".into(), &aml::EISAName::new("PNP0B00")),
                &aml::Name::new(
                    "_CRS".into(),
                    &aml::ResourceTemplate::new(vec![
                        &aml::IO::new(port, port, 1, 8),
                        &aml::Interrupt::new(true, true, false, false, RTC_IRQ),
                    ]),
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
            .field("registers", &&self.cmos[..0x0e])
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests;
