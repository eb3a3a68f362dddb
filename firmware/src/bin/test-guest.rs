//! kvmon's test guest.  The first word of the command line (`-append`)
//! picks a scenario, which exercises the machine from inside and reports on
//! COM1 in lines the tests parse:
//!
//! ```text
//! kvmon-test: <what> [key=value ...]
//! ```
//!
//! Scenarios: `idle` (the default: waits, powers off on the power button),
//! `poweroff`, `acpi-reset`, `i8042-reset`, `triple-fault`, `reset-twice`
//! (each resets once, the last asking twice, then reports `rebooted` and
//! idles), `rep-outsb` (a line written with one string instruction), `count` (reports `tick n=N` while it
//! runs), `nmi` (reports each NMI), `echo` (reports each byte COM1
//! receives), `mmio-exec` (executes from a hole in guest memory, which KVM
//! cannot emulate), `blk` (reads the pattern the tests put in the disk
//! image, reads the ID, writes, flushes and reads back, then powers off),
//! `blk-fill` (writes 256 KiB in 64 KiB requests, flushes, reads it back,
//! then powers off), `blk-bench MODE COUNT` (timed requests for `cargo
//! xtask bench blk`, then powers off), `net-bench tx|rx FRAMES BYTES`
//! (frames streamed out or counted in for `cargo xtask bench net`, then
//! powers off), `rtc-read` (reports the CMOS clock's time), `rtc-set TIME` and `rtc-set-many TIME` (set the clock to
//! `YYYY-MM-DDTHH:MM:SS`, once or ten times in a row), `rtc-irq` (counts
//! periodic, alarm and update-ended interrupts), `watchdog INDEX` (arms the
//! ib700 with a timeout index, feeds it twice a second apart, then starves
//! it; after a reset reports `rebooted`), `pvpanic VALUE` (reads the
//! pvpanic port, then writes VALUE to it), `balloon` (touches its RAM
//! from 16 MiB up, then inflates and deflates the balloon as its target
//! asks, reporting `held=PAGES` each time it gets there, and sends
//! statistics when asked).  The first line gives the
//! scenario, the CPU, and the RAM the memory map shows.

#![no_std]
#![no_main]

use core::sync::atomic::{AtomicU64, Ordering};

use fw::acpi::Acpi;
use fw::cmos::{self, DateTime};
use fw::io::{inb, outb};
use fw::interrupts::{self, IRQ_BASE, NMI};
use fw::virtio_balloon::Balloon;
use fw::virtio_blk::{self, Block};
use fw::virtio_net::{Net, Seen};
use fw::{power, println};

fw::entry!(main);

/// Survives a reset (RAM is kept; the image is reloaded; a BIOS may clear
/// the first MiB): set before a scenario resets, so the next boot knows it
/// is the second.
const REBOOT_MARK: u64 = 0x20_0000;
const REBOOT_MAGIC: u64 = 0x6b76_6d6f_6e21_0001;
/// An address in the 32-bit MMIO hole with no device behind it.
const MMIO_HOLE: u64 = 0xd000_0000;

static mut ACPI: Option<Acpi> = None;
static NMIS: AtomicU64 = AtomicU64::new(0);
/// The RTC's interrupts by the flag register C showed.
static PERIODIC: AtomicU64 = AtomicU64::new(0);
static ALARMS: AtomicU64 = AtomicU64::new(0);
static UPDATES: AtomicU64 = AtomicU64::new(0);
/// The ib700's enable port and pvpanic's port.
const IB700_ENABLE: u16 = 0x443;
const PVPANIC: u16 = 0x505;

fn main(boot: &fw::Boot) -> ! {
    let scenario = boot
        .cmdline
        .split(' ')
        .next()
        .filter(|s| !s.is_empty())
        .unwrap_or("idle");
    let acpi = Acpi::find(boot.rsdp);
    // SAFETY: written once before interrupts are enabled, read by the handler.
    unsafe { ACPI = acpi };
    interrupts::init(on_interrupt);
    let power_button = acpi
        .and_then(|acpi| Some((acpi, acpi.ged_interrupt()?)))
        .is_some_and(|(acpi, gsi)| interrupts::route(&acpi, gsi, 0));
    println!(
        "kvmon-test: start scenario={scenario} cpu={} ram={} acpi={} power-button={}",
        interrupts::apic_id(),
        boot.ram,
        acpi.is_some(),
        power_button
    );
    match scenario {
        "idle" | "nmi" => idle(),
        "poweroff" => {
            // The VMM acts on the write when it gets to it; wait meanwhile.
            if !acpi.is_some_and(|acpi| power::acpi_poweroff(&acpi)) {
                println!("kvmon-test: error what=no-sleep-register");
            }
            idle()
        }
        "acpi-reset" | "i8042-reset" | "triple-fault" | "reset-twice" => reset_once(scenario, acpi),
        "rep-outsb" => {
            rep_outsb(b"kvmon-test: written by rep outsb\r\n");
            idle()
        }
        "count" => count(),
        "blk" | "blk-fill" | "blk-bench" => {
            if let Some(block) = find_block() {
                match scenario {
                    "blk" => blk(block),
                    "blk-fill" => blk_fill(block),
                    _ => blk_bench(block, boot.cmdline),
                }
            }
            if !acpi.is_some_and(|acpi| power::acpi_poweroff(&acpi)) {
                println!("kvmon-test: error what=no-sleep-register");
            }
            idle()
        }
        "echo" => echo(),
        "rtc-read" => {
            let time = cmos::now();
            println!("kvmon-test: rtc time={time} epoch={}", time.epoch());
            idle()
        }
        "rtc-set" | "rtc-set-many" => {
            let Some(time) = argument(boot.cmdline).and_then(DateTime::parse) else {
                println!("kvmon-test: error what=bad-time");
                idle()
            };
            let times = if scenario == "rtc-set" { 1 } else { 10 };
            for _ in 0..times {
                cmos::set(&time);
            }
            let now = cmos::now();
            println!("kvmon-test: rtc set n={times} time={now} epoch={}", now.epoch());
            idle()
        }
        "rtc-irq" => rtc_interrupts(acpi),
        "balloon" => balloon(boot.ram),
        "net-bench" => {
            net_bench(boot.cmdline);
            if !acpi.is_some_and(|acpi| power::acpi_poweroff(&acpi)) {
                println!("kvmon-test: error what=no-sleep-register");
            }
            idle()
        }
        "net" | "net-rxmode" => net(
            argument(boot.cmdline).and_then(parse_ip),
            scenario == "net-rxmode",
        ),
        "watchdog" => watchdog(argument(boot.cmdline).and_then(|a| a.parse().ok())),
        "pvpanic" => {
            let value = argument(boot.cmdline).and_then(|a| a.parse().ok()).unwrap_or(1);
            println!("kvmon-test: pvpanic events={:#x}", inb(PVPANIC));
            outb(PVPANIC, value);
            println!("kvmon-test: pvpanic written value={value}");
            idle()
        }
        "mmio-exec" => {
            println!("kvmon-test: jumping to {MMIO_HOLE:#x}");
            // SAFETY: deliberately jumps into the MMIO hole; the VMM stops
            // the VM there, so this never returns.
            unsafe { core::arch::asm!("jmp {}", in(reg) MMIO_HOLE, options(noreturn)) }
        }
        other => {
            println!("kvmon-test: error what=unknown-scenario name={other}");
            idle()
        }
    }
}

/// Where the balloon's region of RAM starts: past everything else the
/// test guest uses.
const BALLOON_REGION: u64 = 0x100_0000;

/// Touches every page from BALLOON_REGION to the end of RAM (below 4 GiB),
/// then follows the balloon's target, reporting each size it settles at,
/// and sends statistics whenever the device asks.
fn balloon(ram: u64) -> ! {
    let end = (ram & !0xf_ffff).min(0xc000_0000);
    let pages = end.saturating_sub(BALLOON_REGION) / 4096;
    for page in 0..pages {
        let address = BALLOON_REGION + page * 4096;
        // SAFETY: the page is RAM (the memory map says so) that nothing
        // else in the test guest uses.
        unsafe { (address as *mut u64).write_volatile(address / 4096) };
    }
    let Some(mut balloon) = Balloon::find(BALLOON_REGION / 4096, pages) else {
        println!("kvmon-test: error what=no-balloon");
        idle()
    };
    println!("kvmon-test: balloon ready pages={pages}");
    let mut settled = 0;
    loop {
        if balloon.stats_wanted() {
            balloon.send_stats(ram);
        }
        if !balloon.step() && balloon.held() != settled {
            settled = balloon.held();
            println!("kvmon-test: balloon held={settled}");
        }
    }
}

/// An IPv4 address in dotted form.
fn parse_ip(text: &str) -> Option<[u8; 4]> {
    let mut ip = [0u8; 4];
    let mut parts = text.split('.');
    for byte in &mut ip {
        *byte = parts.next()?.parse().ok()?;
    }
    parts.next().is_none().then_some(ip)
}

/// Answers ARP and ping at `ip` on the first NIC, reporting each reply
/// and each change of the link.  With `rx_modes` it turns promiscuous mode
/// off and all-multicast on at start, and toggles all-multicast each time
/// the link comes up.
fn net(ip: Option<[u8; 4]>, rx_modes: bool) -> ! {
    let Some(mut net) = ip.and_then(|ip| Net::find(ip, rx_modes)) else {
        println!("kvmon-test: error what=no-net-device");
        idle()
    };
    let mac = net.mac;
    let mut link = net.link_up();
    println!(
        "kvmon-test: net ready mac={:02x}:{:02x}:{:02x}:{:02x}:{:02x}:{:02x} link={}",
        mac[0], mac[1], mac[2], mac[3], mac[4], mac[5],
        if link { "up" } else { "down" }
    );
    let mut allmulti = true;
    if rx_modes {
        let promisc = net.rx_mode(0, false);
        let all = net.rx_mode(1, allmulti);
        println!("kvmon-test: net rx-mode acks={promisc:?},{all:?}");
    }
    let (mut arps, mut echoes) = (0u64, 0u64);
    loop {
        match net.poll() {
            Some(Seen::ArpReply) => {
                arps += 1;
                println!("kvmon-test: net arp-reply n={arps}");
            }
            Some(Seen::EchoReply) => {
                echoes += 1;
                println!("kvmon-test: net echo-reply n={echoes}");
            }
            Some(Seen::Other) | None => {}
        }
        if net.link_up() != link {
            link = !link;
            println!("kvmon-test: net link={}", if link { "up" } else { "down" });
            if rx_modes && link {
                allmulti = !allmulti;
                println!("kvmon-test: net rx-mode ack={:?}", net.rx_mode(1, allmulti));
            }
        }
    }
}

/// `net-bench tx|rx FRAMES BYTES`: once the host's go frame (marked 'G')
/// comes, streams FRAMES frames of BYTES out, or counts FRAMES frames
/// (marked 'D') in.
fn net_bench(cmdline: &str) {
    let mut words = cmdline.split(' ').skip(1);
    let mode = words.next().unwrap_or("tx");
    let count: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
    let len: u32 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1514);
    let Some(mut net) = Net::find([169, 254, 10, 2], false) else {
        println!("kvmon-test: error what=no-net-device");
        return;
    };
    println!("kvmon-test: net-bench ready mode={mode}");
    net.count_marked(b'G', 1);
    println!("kvmon-test: net-bench begin mode={mode} frames={count} bytes={len}");
    match mode {
        "tx" => net.stream(count, len),
        _ => net.count_marked(b'D', count),
    }
    println!("kvmon-test: net-bench end mode={mode} frames={count}");
}

/// The word after the scenario's name.
fn argument(cmdline: &str) -> Option<&str> {
    cmdline.split(' ').nth(1)
}

/// Periodic interrupts at 64 Hz (128 of them, timed by the clock), an
/// alarm 2 s ahead, then three update-ended interrupts.
fn rtc_interrupts(acpi: Option<Acpi>) -> ! {
    if !acpi.is_some_and(|acpi| interrupts::route(&acpi, cmos::GSI, 1)) {
        println!("kvmon-test: error what=no-rtc-route");
        idle()
    }
    let b = cmos::read(cmos::REGISTER_B) & !(cmos::PIE | cmos::AIE | cmos::UIE);
    let wait_for = |count: &AtomicU64, n: u64, enable: u8| {
        count.store(0, Ordering::SeqCst);
        cmos::read(cmos::REGISTER_C);
        cmos::write(cmos::REGISTER_B, b | enable);
        while count.load(Ordering::SeqCst) < n {
            fw::wait_for_interrupt();
        }
        cmos::write(cmos::REGISTER_B, b);
    };
    cmos::write(cmos::REGISTER_A, 0x20 | 10); // 64 Hz
    let start = cmos::now().epoch();
    wait_for(&PERIODIC, 128, cmos::PIE);
    let seconds = cmos::now().epoch() - start;
    println!("kvmon-test: rtc periodic n=128 seconds={seconds}");
    cmos::alarm_in(2);
    let start = cmos::now().epoch();
    wait_for(&ALARMS, 1, cmos::AIE);
    let seconds = cmos::now().epoch() - start;
    println!("kvmon-test: rtc alarm seconds={seconds}");
    wait_for(&UPDATES, 3, cmos::UIE);
    println!("kvmon-test: rtc update n=3");
    idle()
}

/// Arms the ib700, feeds it twice a second apart, then lets it starve.
fn watchdog(index: Option<u8>) -> ! {
    idle_if_rebooted("watchdog");
    let index = index.unwrap_or(14);
    outb(IB700_ENABLE, index);
    println!("kvmon-test: watchdog armed index={index}");
    for n in 1..=2 {
        let second = cmos::now().second;
        while cmos::now().second == second {}
        outb(IB700_ENABLE, index);
        println!("kvmon-test: watchdog fed n={n}");
    }
    println!("kvmon-test: watchdog starving");
    idle()
}

fn idle() -> ! {
    loop {
        fw::wait_for_interrupt();
    }
}

/// On the boot after a reset the scenario caused, reports
/// `rebooted via=VIA` and idles; on the first, marks RAM so that the next
/// boot knows.
fn idle_if_rebooted(via: &str) {
    let mark = REBOOT_MARK as *mut u64;
    // SAFETY: REBOOT_MARK is RAM that neither the VMM nor the image uses.
    if unsafe { mark.read_volatile() } == REBOOT_MAGIC {
        // SAFETY: as above.
        unsafe { mark.write_volatile(0) };
        println!("kvmon-test: rebooted via={via}");
        idle()
    }
    // SAFETY: as above.
    unsafe { mark.write_volatile(REBOOT_MAGIC) };
}

fn reset_once(scenario: &str, acpi: Option<Acpi>) -> ! {
    idle_if_rebooted(scenario);
    println!("kvmon-test: resetting via={scenario}");
    match (scenario, acpi) {
        ("acpi-reset", Some(acpi)) if power::acpi_reset(&acpi) => {}
        ("i8042-reset", _) => power::i8042_reset(),
        ("triple-fault", _) => power::triple_fault(),
        // Asks twice, as Linux does when the first way is slow: one reset.
        ("reset-twice", Some(acpi)) if power::acpi_reset(&acpi) => power::i8042_reset(),
        _ => println!("kvmon-test: error what=no-reset-register"),
    }
    // The VMM resets the machine when it gets to it; wait meanwhile.
    idle()
}

/// The byte at `offset` of the image the block tests give the guest.
fn image_pattern(offset: usize) -> u8 {
    (offset as u8).wrapping_mul(7) ^ (offset / 512) as u8
}

/// What the guest writes at `offset` of the disk.
fn written_pattern(offset: usize) -> u8 {
    0xa5 ^ (offset as u8) ^ (offset >> 16) as u8
}

fn find_block() -> Option<Block> {
    let Some(block) = Block::find() else {
        println!("kvmon-test: error what=no-block-device");
        return None;
    };
    println!(
        "kvmon-test: blk base={:#x} capacity={} ro={}",
        block.base(),
        block.capacity(),
        block.features >> virtio_blk::F_RO & 1
    );
    Some(block)
}

/// Whether `len` bytes of the buffer from `offset` are `pattern` from disk
/// offset `at`.
fn holds(offset: usize, len: usize, at: usize, pattern: fn(usize) -> u8) -> bool {
    let buffer = virtio_blk::buffer();
    (0..len).all(|i| buffer[offset + i] == pattern(at + i))
}

fn verdict(good: bool) -> &'static str {
    if good {
        "ok"
    } else {
        "bad"
    }
}

/// Reads the image's first 4 KiB, the serial number, then writes 4 KiB at
/// sector 16, flushes and reads them back.
fn blk(mut block: Block) {
    let status = block.request(virtio_blk::T_IN, 0, 0, 4096);
    println!(
        "kvmon-test: blk read status={status} pattern={}",
        verdict(holds(0, 4096, 0, image_pattern))
    );
    let buffer = virtio_blk::buffer();
    buffer[..20].fill(0);
    let status = block.request(virtio_blk::T_GET_ID, 0, 0, 20);
    let id = buffer[..20].split(|&b| b == 0).next().unwrap_or_default();
    println!(
        "kvmon-test: blk id status={status} serial={}",
        core::str::from_utf8(id).unwrap_or("?")
    );
    let at = 16 * 512;
    for (i, byte) in buffer[..4096].iter_mut().enumerate() {
        *byte = written_pattern(at + i);
    }
    let write = block.request(virtio_blk::T_OUT, 16, 0, 4096);
    let flush = block.request(virtio_blk::T_FLUSH, 0, 0, 0);
    buffer[..4096].fill(0);
    let read = block.request(virtio_blk::T_IN, 16, 0, 4096);
    let pattern = if write == 0 {
        written_pattern
    } else {
        image_pattern
    };
    println!(
        "kvmon-test: blk write status={write} flush={flush} read={read} readback={}",
        verdict(holds(0, 4096, at, pattern))
    );
}

/// Writes 256 KiB from sector 2048 in 64 KiB requests, flushes, and reads
/// them back in one request.
fn blk_fill(mut block: Block) {
    const CHUNK: usize = 64 * 1024;
    const LEN: usize = 4 * CHUNK;
    const SECTOR: u64 = 2048;
    let start = SECTOR as usize * 512;
    let buffer = &mut virtio_blk::buffer()[..LEN];
    for (i, byte) in buffer.iter_mut().enumerate() {
        *byte = written_pattern(start + i);
    }
    let mut failed = 0;
    for chunk in 0..LEN / CHUNK {
        let sector = SECTOR + (chunk * CHUNK / 512) as u64;
        let status = block.request(virtio_blk::T_OUT, sector, chunk * CHUNK, CHUNK as u32);
        if status != 0 {
            failed += 1;
            println!("kvmon-test: blk chunk n={chunk} status={status}");
        }
    }
    let flush = block.request(virtio_blk::T_FLUSH, 0, 0, 0);
    buffer.fill(0);
    let read = block.request(virtio_blk::T_IN, SECTOR, 0, LEN as u32);
    println!(
        "kvmon-test: blk filled failed={failed} flush={flush} read={read} readback={}",
        verdict(holds(0, LEN, start, written_pattern))
    );
}

/// `blk-bench MODE COUNT`: COUNT requests of 64 KiB in order (`seq-read`,
/// `seq-write`) or of 4 KiB at random (`rand-read`, `rand-write`), one at a
/// time, between a `begin` and an `end` line.
fn blk_bench(mut block: Block, cmdline: &str) {
    let mut words = cmdline.split(' ').skip(1);
    let mode = words.next().unwrap_or("seq-read");
    let count: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(1000);
    let (len, random, kind) = match mode {
        "seq-read" => (64 * 1024, false, virtio_blk::T_IN),
        "seq-write" => (64 * 1024, false, virtio_blk::T_OUT),
        "rand-read" => (4096, true, virtio_blk::T_IN),
        "rand-write" => (4096, true, virtio_blk::T_OUT),
        _ => {
            println!("kvmon-test: error what=unknown-mode name={mode}");
            return;
        }
    };
    let sectors = len / 512;
    let slots = block.capacity() / sectors;
    if slots == 0 {
        println!("kvmon-test: error what=disk-too-small");
        return;
    }
    // xorshift64: the same offsets under every VMM.
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut failed = 0;
    println!("kvmon-test: blk-bench begin mode={mode} requests={count}");
    for i in 0..count {
        let slot = if random {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % slots
        } else {
            i % slots
        };
        if block.request(kind, slot * sectors, 0, len as u32) != 0 {
            failed += 1;
        }
    }
    println!("kvmon-test: blk-bench end mode={mode} requests={count} failed={failed}");
}

/// Writes `text` to COM1 with one string instruction.
fn rep_outsb(text: &[u8]) {
    // SAFETY: reads `text.len()` bytes from `text` and writes them to the
    // COM1 data port.
    unsafe {
        core::arch::asm!("rep outsb", in("dx") 0x3f8u16, inout("rsi") text.as_ptr() => _,
            inout("rcx") text.len() => _, options(nostack, preserves_flags));
    }
}

/// Counts busy-loop rounds with interrupts on, reporting every round.
fn count() -> ! {
    // SAFETY: interrupts may arrive from here on; the handlers are installed.
    unsafe { core::arch::asm!("sti", options(nomem, nostack)) };
    let mut n: u64 = 0;
    loop {
        for i in 0..20_000u64 {
            core::hint::black_box(i);
        }
        n += 1;
        println!("kvmon-test: tick n={n}");
    }
}

/// Reports each byte COM1 receives, polling its line status.
fn echo() -> ! {
    loop {
        if fw::io::inb(0x3fd) & 1 != 0 {
            println!("kvmon-test: got {:#04x}", fw::io::inb(0x3f8));
        }
    }
}

fn on_interrupt(vector: u8) {
    match vector {
        NMI => {
            let n = NMIS.fetch_add(1, Ordering::SeqCst) + 1;
            println!("kvmon-test: nmi n={n} cpu={}", interrupts::apic_id());
        }
        vector if vector == IRQ_BASE + 1 => {
            let flags = cmos::read(cmos::REGISTER_C);
            for (flag, count) in [
                (cmos::PF, &PERIODIC),
                (cmos::AF, &ALARMS),
                (cmos::UF, &UPDATES),
            ] {
                if flags & flag != 0 {
                    count.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        IRQ_BASE => {
            println!("kvmon-test: power-button");
            // SAFETY: set before interrupts were enabled.
            if let Some(acpi) = unsafe { ACPI } {
                power::acpi_poweroff(&acpi);
            }
        }
        _ => {}
    }
}
