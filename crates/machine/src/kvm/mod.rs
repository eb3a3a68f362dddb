//! The KVM platform: guest memory, the in-kernel irqchip and PIT, vCPU
//! threads, the port and MMIO buses with the platform devices, ACPI tables
//! and the booted kernel (or the default firmware).

mod acpi;
mod boot;
mod control;
mod cpuid;
mod layout;
mod memory;
mod platform_devices;
mod registers;
mod requests;
mod timers;
mod vcpu;
mod virtio_devices;

use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use devices::{Bus, DescribeAcpi, IrqLine, VirtualClock};
use events::Publisher;
use kvm_bindings::{
    kvm_irqchip, kvm_pit_config, kvm_pit_state2, kvm_userspace_memory_region, KVM_IRQCHIP_IOAPIC,
    KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_MAX_CPUID_ENTRIES, KVM_PIT_SPEAKER_DUMMY,
};
use kvm_ioctls::{Kvm, VmFd};
use mio::Waker;
use qmp::commands::{CpuInfoFast, CpuInfoFastBase, CpuInfoFastVariant, CpuInstanceProperties};
use qmp::QmpError;
use virtio::MmioTransport;
use vm_memory::{GuestMemoryBackend, GuestMemoryMmap, GuestMemoryRegion};

pub use crate::{BalloonConfig, BalloonDevice, BlockDevice, NetDevice, Nic, NicConfig, TapSource};
pub use boot::{BootSource, Image};
pub use devices::{utc_seconds, RtcBase, RtcClock, RtcConfig, PVPANIC_EVENTS, PVPANIC_PORT};
pub use platform_devices::{PlatformConfig, PvPanicConfig};

use crate::lifecycle::Execution;
use crate::vm::{Platform, Request};
use control::Control;
use platform_devices::{PlatformDevices, Wiring};
use registers::Entry;
use requests::{Inbox, Requests};
use timers::Timers;

/// The default firmware, built from firmware/ and booted without -kernel.
pub const DEFAULT_FIRMWARE: &[u8] = include_bytes!(env!("KVMON_DEFAULT_FIRMWARE"));

/// What the command line asks of a KVM machine.
pub struct KvmConfig {
    /// `-m`, in bytes.
    pub ram_size: u64,
    /// `-smp`
    pub vcpus: u32,
    pub boot: BootSource,
    /// COM1, the clock, the watchdog, pvpanic.
    pub platform: PlatformConfig,
    /// virtio-blk devices, in the order of their transports.
    pub disks: Vec<BlockDevice>,
    /// NICs, on the transports after the disks'.
    pub nics: Vec<Nic>,
    /// The balloon, on the transport after the NICs'.
    pub balloon: Option<BalloonConfig>,
}

impl std::fmt::Debug for KvmConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvmConfig")
            .field("ram_size", &self.ram_size)
            .field("vcpus", &self.vcpus)
            .field("boot", &self.boot.kernel_name)
            .field("platform", &self.platform)
            .field("disks", &self.disks)
            .field("nics", &self.nics)
            .field("balloon", &self.balloon)
            .finish()
    }
}

/// The in-kernel interrupt controllers and PIT as first created, to
/// return to on a reset.
struct ChipState {
    pics_and_ioapic: Vec<kvm_irqchip>,
    pit: kvm_pit_state2,
}

pub struct KvmPlatform {
    vm: VmFd,
    memory: GuestMemoryMmap,
    ram_size: u64,
    boot: BootSource,
    acpi: acpi::Tables,
    chips: ChipState,
    control: Arc<Control>,
    threads: Vec<JoinHandle<()>>,
    devices: PlatformDevices,
    /// Counts only while the guest runs: the watchdog's and `-rtc clock=vm`'s.
    clock: VirtualClock,
    timers: Timers,
    virtio: Vec<Arc<Mutex<MmioTransport>>>,
    disks: Vec<BlockDevice>,
    balloon: Option<BalloonDevice>,
    nics: Vec<NetDevice>,
    requests: Inbox,
    /// Kept alive for the vCPU threads' sake: they hold the VM's fds.
    _kvm: Kvm,
}

impl std::fmt::Debug for KvmPlatform {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvmPlatform")
            .field("ram_size", &self.ram_size)
            .field("vcpus", &self.threads.len())
            .finish_non_exhaustive()
    }
}

/// Turns a KVM error into a sentence about what failed, with the C
/// library's text for the error.
fn kvm_error(what: &'static str) -> impl Fn(kvm_ioctls::Error) -> String {
    move |error| {
        let text = virtio::os_text(&std::io::Error::from_raw_os_error(error.errno()));
        format!("cannot {what}: {text}")
    }
}

impl KvmPlatform {
    /// Builds the machine with its vCPUs parked; `waker` wakes the main
    /// loop when a vCPU or device needs it, and devices publish on `events`.
    pub fn new(
        config: KvmConfig,
        waker: Arc<Waker>,
        events: Publisher,
    ) -> Result<KvmPlatform, String> {
        let kvm = Kvm::new().map_err(|e| kvm_error("open /dev/kvm")(e))?;
        let vm = kvm.create_vm().map_err(kvm_error("create a KVM VM"))?;
        vm.set_tss_address(0xfffb_d000)
            .map_err(kvm_error("set the TSS address"))?;
        vm.create_irq_chip()
            .map_err(kvm_error("create the in-kernel irqchip"))?;
        vm.create_pit2(kvm_pit_config {
            flags: KVM_PIT_SPEAKER_DUMMY,
            ..Default::default()
        })
        .map_err(kvm_error("create the in-kernel PIT"))?;

        let memory = memory::allocate(config.ram_size)?;
        for (slot, region) in memory.iter().enumerate() {
            let region = kvm_userspace_memory_region {
                slot: slot as u32,
                guest_phys_addr: region.start_addr().0,
                memory_size: region.len(),
                userspace_addr: region.as_ptr() as u64,
                flags: 0,
            };
            // SAFETY: the region is a live mapping of guest memory that the
            // platform keeps (in `memory`) as long as the VM exists.
            unsafe { vm.set_user_memory_region(region) }
                .map_err(kvm_error("register guest memory with KVM"))?;
        }

        let (requests, receiver) = Requests::new(waker);
        let mut pio = Bus::new();
        let irq = |gsi: u32| -> Result<IrqLine, String> {
            let line = IrqLine::new(gsi).map_err(|e| format!("cannot create an interrupt: {e}"))?;
            vm.register_irqfd(line.event(), gsi)
                .map_err(kvm_error("connect an interrupt"))?;
            Ok(line)
        };
        let clock = VirtualClock::new();
        let balloon_events = events.clone();
        let nic_events = events.clone();
        let devices = platform_devices::attach(
            config.platform,
            &mut pio,
            Wiring {
                irq: &irq,
                machine: Arc::new(requests.clone()),
                clock: clock.clone(),
                events,
                ram_size: config.ram_size,
                vcpus: config.vcpus,
            },
        )?;
        let mut virtio_devices = virtio_devices::block_devices(&config.disks, &requests);
        let (nic_devices, nics) = virtio_devices::nics(config.nics, &nic_events);
        virtio_devices.extend(nic_devices);
        let balloon = match &config.balloon {
            Some(balloon) => {
                let (device, handle) =
                    virtio_devices::balloon(balloon, config.ram_size, balloon_events)?;
                virtio_devices.push(device);
                Some(handle)
            }
            None => None,
        };
        let mut mmio = Bus::new();
        let virtio = virtio_devices::attach(&vm, &memory, &mut mmio, &irq, virtio_devices)?;

        let acpi = {
            let transports = virtio
                .iter()
                .map(|transport| transport.lock())
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| "a virtio device is unusable".to_string())?;
            let transports: Vec<&dyn DescribeAcpi> = transports
                .iter()
                .map(|transport| &**transport as &dyn DescribeAcpi)
                .collect();
            devices.describe(&transports, |described| {
                acpi::build(config.vcpus, described)
            })?
        };
        acpi.write(&memory)?;
        let entry =
            boot::load(&memory, config.ram_size, &config.boot, acpi.rsdp).map_err(|e| e.0)?;

        let chips = ChipState {
            pics_and_ioapic: [
                KVM_IRQCHIP_PIC_MASTER,
                KVM_IRQCHIP_PIC_SLAVE,
                KVM_IRQCHIP_IOAPIC,
            ]
            .into_iter()
            .map(|chip_id| {
                let mut chip = kvm_irqchip {
                    chip_id,
                    ..Default::default()
                };
                vm.get_irqchip(&mut chip).map(|()| chip)
            })
            .collect::<Result<_, _>>()
            .map_err(kvm_error("read the irqchip state"))?,
            pit: vm.get_pit2().map_err(kvm_error("read the PIT state"))?,
        };

        control::install_kick_handler()?;
        let supported = kvm
            .get_supported_cpuid(KVM_MAX_CPUID_ENTRIES)
            .map_err(kvm_error("read the CPUID KVM supports"))?;
        let msr_list = kvm
            .get_msr_index_list()
            .map_err(kvm_error("read the MSRs KVM supports"))?;
        let control = Arc::new(Control::new(config.vcpus as usize, entry));
        let shared = vcpu::Shared {
            control: control.clone(),
            pio: Arc::new(pio),
            mmio: Arc::new(mmio),
            requests,
            msrs: Arc::new(registers::boot_msrs(msr_list.as_slice())),
        };
        let threads = start_vcpus(&vm, &supported, config.vcpus, &control, &shared)?;
        control.wait_started();
        let timers = Timers::start(devices.timed())?;

        Ok(KvmPlatform {
            vm,
            memory,
            ram_size: config.ram_size,
            boot: config.boot,
            acpi,
            chips,
            control,
            threads,
            devices,
            clock,
            timers,
            virtio,
            disks: config.disks,
            balloon,
            nics,
            requests: receiver,
            _kvm: kvm,
        })
    }

    /// Loads the boot image and tables again and returns the chips and
    /// devices to their first state.
    fn reload(&mut self) -> Result<Entry, String> {
        for chip in &self.chips.pics_and_ioapic {
            self.vm
                .set_irqchip(chip)
                .map_err(kvm_error("reset the irqchip"))?;
        }
        self.vm
            .set_pit2(&self.chips.pit)
            .map_err(kvm_error("reset the PIT"))?;
        self.devices.reset();
        for transport in &self.virtio {
            devices::lock(transport).reset();
        }
        if let Some(balloon) = &self.balloon {
            balloon.handle.machine_reset();
        }
        self.acpi.write(&self.memory)?;
        boot::load(&self.memory, self.ram_size, &self.boot, self.acpi.rsdp).map_err(|e| e.0)
    }
}

/// Creates the vCPUs, each on its thread; on a failure the threads
/// already started are ended.
fn start_vcpus(
    vm: &VmFd,
    supported: &kvm_bindings::CpuId,
    count: u32,
    control: &Arc<Control>,
    shared: &vcpu::Shared,
) -> Result<Vec<JoinHandle<()>>, String> {
    let mut threads = Vec::new();
    let mut start = |index: u32| -> Result<(), String> {
        let fd = vm
            .create_vcpu(u64::from(index))
            .map_err(kvm_error("create a vCPU"))?;
        fd.set_cpuid2(&cpuid::for_vcpu(supported, index, count))
            .map_err(kvm_error("set a vCPU's CPUID"))?;
        let initial = registers::Initial::read(&fd).map_err(kvm_error("read a vCPU's state"))?;
        let thread = vcpu::spawn(index, fd, initial, shared.clone())
            .map_err(|e| format!("cannot start a vCPU thread: {e}"))?;
        threads.push(thread);
        Ok(())
    };
    if let Err(error) = (0..count).try_for_each(&mut start) {
        control.exit();
        for thread in threads {
            let _ = thread.join();
        }
        return Err(error);
    }
    Ok(threads)
}

impl Drop for KvmPlatform {
    /// The vCPU threads end before guest memory is unmapped.
    fn drop(&mut self) {
        self.finish();
    }
}

impl Execution for KvmPlatform {
    fn pause(&mut self) {
        self.control.pause();
        self.clock.stop();
    }

    /// The vCPUs run again with the virtual clock, and the block devices
    /// retry the requests they stopped the VM for.
    fn resume(&mut self) {
        self.clock.start();
        self.timers.clock_started();
        self.control.resume();
        for disk in &self.disks {
            disk.drive.retry_failed();
        }
    }

    fn reset(&mut self) {
        self.requests.reset();
        match self.reload() {
            Ok(entry) => self.control.reset(entry),
            Err(error) => log::error!("the reset failed: {error}"),
        }
    }
}

impl Platform for KvmPlatform {
    fn press_power_button(&mut self) {
        match self.devices.ged.lock() {
            Ok(ged) => ged.press_power_button(),
            Err(_) => log::error!("the power button is unusable"),
        }
    }

    fn inject_nmi(&mut self) -> Result<(), QmpError> {
        self.control.inject_nmi();
        Ok(())
    }

    /// As QEMU's microvm: one socket of single-threaded cores; the first
    /// CPU is the first QOM object made, the others come after the
    /// machine's next one.
    fn cpus(&self) -> Vec<CpuInfoFast> {
        self.control
            .thread_ids()
            .into_iter()
            .enumerate()
            .map(|(index, tid)| {
                let index = index as i64;
                let device = if index == 0 { 0 } else { index + 1 };
                CpuInfoFast {
                    base: CpuInfoFastBase {
                        cpu_index: index,
                        qom_path: format!("/machine/unattached/device[{device}]"),
                        thread_id: i64::from(tid),
                        props: Some(CpuInstanceProperties {
                            node_id: None,
                            drawer_id: None,
                            book_id: None,
                            socket_id: Some(0),
                            die_id: None,
                            cluster_id: None,
                            module_id: None,
                            core_id: Some(index),
                            thread_id: Some(0),
                        }),
                    },
                    target: CpuInfoFastVariant::X86_64(()),
                }
            })
            .collect()
    }

    fn disks(&self) -> &[BlockDevice] {
        &self.disks
    }

    fn balloon(&self) -> Option<&BalloonDevice> {
        self.balloon.as_ref()
    }

    fn nics(&self) -> &[NetDevice] {
        &self.nics
    }

    fn take_requests(&mut self) -> Vec<Request> {
        self.requests.take()
    }

    fn console_input(&mut self, data: &[u8]) -> usize {
        match &self.devices.serial {
            Some(serial) => serial.lock().map(|mut s| s.enqueue(data)).unwrap_or(0),
            None => data.len(),
        }
    }

    fn finish(&mut self) {
        self.timers.finish();
        self.control.exit();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}
