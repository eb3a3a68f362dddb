//! A vCPU's state at boot and after a reset: the entry state the boot
//! protocol asks for on the boot CPU (PVH's 32-bit protected mode, or
//! Linux's 64-bit entry), and wait-for-SIPI on the others.  Everything else
//! returns to what KVM gave the vCPU when it was created.

use kvm_bindings::{
    kvm_debugregs, kvm_fpu, kvm_lapic_state, kvm_mp_state, kvm_msr_entry, kvm_regs, kvm_segment,
    kvm_sregs, kvm_vcpu_events, kvm_xcrs, Msrs, KVM_MP_STATE_RUNNABLE, KVM_MP_STATE_UNINITIALIZED,
};
use kvm_ioctls::VcpuFd;

use super::layout::{BOOT_GDT, BOOT_IDT, BOOT_STACK, PML4};

/// Where the boot CPU starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry {
    /// PVH: 32-bit protected mode, paging off, ebx → `hvm_start_info`.
    Pvh { entry: u32, start_info: u32 },
    /// Linux's 64-bit boot protocol: long mode on identity page tables,
    /// rsi → the zero page.
    Linux64 { entry: u64, boot_params: u64 },
}

/// The GDT the vCPUs boot with (written at BOOT_GDT): null, code, data, TSS.
pub fn gdt(entry: Entry) -> [u64; 4] {
    let code = match entry {
        Entry::Pvh { .. } => 0x00cf_9b00_0000_ffff,
        Entry::Linux64 { .. } => 0x00af_9b00_0000_ffff,
    };
    [0, code, 0x00cf_9300_0000_ffff, 0x0080_8b00_0000_0067]
}

/// What KVM gave a vCPU at creation, to return to on a reset: a pending
/// exception or NMI, XCR0 and the debug registers go back too (those a
/// host's KVM cannot read are left alone).
#[derive(Debug, Clone)]
pub struct Initial {
    sregs: kvm_sregs,
    lapic: kvm_lapic_state,
    events: Option<kvm_vcpu_events>,
    xcrs: Option<kvm_xcrs>,
    debug_regs: Option<kvm_debugregs>,
}

impl Initial {
    pub fn read(vcpu: &VcpuFd) -> vmm_sys_util::errno::Result<Initial> {
        Ok(Initial {
            sregs: vcpu.get_sregs()?,
            lapic: vcpu.get_lapic()?,
            events: vcpu.get_vcpu_events().ok(),
            xcrs: vcpu.get_xcrs().ok(),
            debug_regs: vcpu.get_debug_regs().ok(),
        })
    }

    /// The state outside the boot registers.
    fn restore(&self, vcpu: &VcpuFd) -> vmm_sys_util::errno::Result<()> {
        if let Some(events) = &self.events {
            vcpu.set_vcpu_events(events)?;
        }
        if let Some(xcrs) = &self.xcrs {
            vcpu.set_xcrs(xcrs)?;
        }
        if let Some(debug_regs) = &self.debug_regs {
            vcpu.set_debug_regs(debug_regs)?;
        }
        Ok(())
    }
}

/// MSRs set at boot: the syscall and sysenter MSRs cleared, the TSC at 0,
/// fast strings on, and write-back as the default memory type.
const BOOT_MSRS: &[(u32, u64)] = &[
    (0x174, 0),           // IA32_SYSENTER_CS
    (0x175, 0),           // IA32_SYSENTER_ESP
    (0x176, 0),           // IA32_SYSENTER_EIP
    (0xc000_0081, 0),     // STAR
    (0xc000_0082, 0),     // LSTAR
    (0xc000_0083, 0),     // CSTAR
    (0xc000_0084, 0),     // SYSCALL_MASK
    (0xc000_0102, 0),     // KERNEL_GS_BASE
    (0x10, 0),            // IA32_TSC
    (0x1a0, 1),           // IA32_MISC_ENABLE: fast strings
    (0x2ff, 1 << 11 | 6), // MTRRdefType: enabled, write-back
];

/// The boot MSRs this host's KVM can set (from KVM_GET_MSR_INDEX_LIST):
/// others are left out, so that a host that refuses one still boots.
pub fn boot_msrs(supported: &[u32]) -> Vec<(u32, u64)> {
    BOOT_MSRS
        .iter()
        .copied()
        .filter(|(index, _)| {
            let known = supported.contains(index);
            if !known {
                log::info!("this host's KVM cannot set MSR {index:#x}; leaving it alone");
            }
            known
        })
        .collect()
}

/// Puts vCPU `index` in its boot state.
pub fn reset(
    vcpu: &VcpuFd,
    index: u32,
    initial: &Initial,
    entry: Entry,
    msrs: &[(u32, u64)],
) -> vmm_sys_util::errno::Result<()> {
    initial.restore(vcpu)?;
    vcpu.set_lapic(&with_local_interrupts(&initial.lapic))?;
    if index != 0 {
        vcpu.set_sregs(&initial.sregs)?;
        vcpu.set_regs(&kvm_regs {
            rflags: 2,
            ..Default::default()
        })?;
        return vcpu.set_mp_state(kvm_mp_state {
            mp_state: KVM_MP_STATE_UNINITIALIZED,
        });
    }
    vcpu.set_sregs(&boot_sregs(&initial.sregs, entry))?;
    vcpu.set_regs(&boot_regs(entry))?;
    vcpu.set_fpu(&kvm_fpu {
        fcw: 0x37f,
        mxcsr: 0x1f80,
        ..Default::default()
    })?;
    set_msrs(vcpu, msrs);
    vcpu.set_mp_state(kvm_mp_state {
        mp_state: KVM_MP_STATE_RUNNABLE,
    })
}

fn set_msrs(vcpu: &VcpuFd, msrs: &[(u32, u64)]) {
    let entries: Vec<kvm_msr_entry> = msrs
        .iter()
        .map(|&(index, data)| kvm_msr_entry {
            index,
            data,
            ..Default::default()
        })
        .collect();
    let Ok(list) = Msrs::from_entries(&entries) else {
        return;
    };
    match vcpu.set_msrs(&list) {
        Ok(set) if set == entries.len() => {}
        // KVM stops at the first MSR it refuses; the guest sets the rest itself.
        Ok(set) => log::warn!(
            "KVM refused MSR {:#x}; the guest starts with KVM's value",
            entries[set].index
        ),
        Err(error) => log::warn!("cannot set the boot MSRs: {error}"),
    }
}

/// LINT0 takes the legacy PIC's interrupts (ExtINT), LINT1 NMIs, as a
/// PC's BIOS leaves them.
fn with_local_interrupts(lapic: &kvm_lapic_state) -> kvm_lapic_state {
    const LVT_LINT0: usize = 0x350;
    const LVT_LINT1: usize = 0x360;
    const EXT_INT: u32 = 0x7 << 8;
    const NMI: u32 = 0x4 << 8;
    let mut lapic = *lapic;
    for (register, mode) in [(LVT_LINT0, EXT_INT), (LVT_LINT1, NMI)] {
        let bytes: [u8; 4] = std::array::from_fn(|i| lapic.regs[register + i] as u8);
        let value = (u32::from_le_bytes(bytes) & !0x700) | mode;
        for (i, byte) in value.to_le_bytes().into_iter().enumerate() {
            lapic.regs[register + i] = byte as _;
        }
    }
    lapic
}

fn boot_regs(entry: Entry) -> kvm_regs {
    match entry {
        Entry::Pvh { entry, start_info } => kvm_regs {
            rip: u64::from(entry),
            rbx: u64::from(start_info),
            rflags: 2,
            ..Default::default()
        },
        Entry::Linux64 { entry, boot_params } => kvm_regs {
            rip: entry,
            rsi: boot_params,
            rsp: BOOT_STACK,
            rbp: BOOT_STACK,
            rflags: 2,
            ..Default::default()
        },
    }
}

fn segment(descriptor: u64, selector: u16) -> kvm_segment {
    kvm_segment {
        base: ((descriptor >> 16) & 0xff_ffff) | ((descriptor >> 32) & 0xff00_0000),
        limit: {
            let limit = (descriptor & 0xffff) | ((descriptor >> 32) & 0xf_0000);
            let granular = (descriptor >> 55) & 1 == 1;
            (if granular {
                (limit << 12) | 0xfff
            } else {
                limit
            }) as u32
        },
        selector,
        type_: ((descriptor >> 40) & 0xf) as u8,
        present: ((descriptor >> 47) & 1) as u8,
        dpl: ((descriptor >> 45) & 3) as u8,
        db: ((descriptor >> 54) & 1) as u8,
        s: ((descriptor >> 44) & 1) as u8,
        l: ((descriptor >> 53) & 1) as u8,
        g: ((descriptor >> 55) & 1) as u8,
        avl: ((descriptor >> 52) & 1) as u8,
        unusable: 0,
        padding: 0,
    }
}

fn boot_sregs(initial: &kvm_sregs, entry: Entry) -> kvm_sregs {
    let gdt = gdt(entry);
    let mut sregs = *initial;
    let data = segment(gdt[2], 0x10);
    sregs.cs = segment(gdt[1], 0x08);
    (sregs.ds, sregs.es, sregs.fs, sregs.gs, sregs.ss) = (data, data, data, data, data);
    sregs.tr = segment(gdt[3], 0x18);
    sregs.gdt.base = BOOT_GDT;
    sregs.gdt.limit = (gdt.len() * 8 - 1) as u16;
    sregs.idt.base = BOOT_IDT;
    sregs.idt.limit = 7;
    const PE: u64 = 1;
    const ET: u64 = 1 << 4;
    const PG: u64 = 1 << 31;
    const PAE: u64 = 1 << 5;
    const LME: u64 = 1 << 8;
    const LMA: u64 = 1 << 10;
    match entry {
        Entry::Pvh { .. } => {
            sregs.cr0 = PE | ET;
            sregs.cr3 = 0;
            sregs.cr4 = 0;
            sregs.efer = 0;
        }
        Entry::Linux64 { .. } => {
            sregs.cr0 = PE | ET | PG;
            sregs.cr3 = PML4;
            sregs.cr4 = PAE;
            sregs.efer = LME | LMA;
        }
    }
    sregs
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pvh_starts_in_flat_32_bit_protected_mode() {
        let entry = Entry::Pvh {
            entry: 0x100000,
            start_info: 0x6000,
        };
        let sregs = boot_sregs(&kvm_sregs::default(), entry);
        assert_eq!(
            (sregs.cs.base, sregs.cs.limit, sregs.cs.db, sregs.cs.l),
            (0, 0xffff_ffff, 1, 0)
        );
        assert_eq!(
            (sregs.cs.type_, sregs.cs.s, sregs.cs.present, sregs.cs.g),
            (0xb, 1, 1, 1)
        );
        assert_eq!(
            (sregs.ss.type_, sregs.ss.db, sregs.ss.selector),
            (3, 1, 0x10)
        );
        assert_eq!((sregs.cr0, sregs.cr4, sregs.efer), (0x11, 0, 0));
        let regs = boot_regs(entry);
        assert_eq!((regs.rip, regs.rbx, regs.rflags), (0x100000, 0x6000, 2));
    }

    #[test]
    fn linux_starts_in_long_mode_with_boot_params_in_rsi() {
        let entry = Entry::Linux64 {
            entry: 0x100200,
            boot_params: 0x7000,
        };
        let sregs = boot_sregs(&kvm_sregs::default(), entry);
        assert_eq!((sregs.cs.l, sregs.cs.db), (1, 0));
        assert_eq!(sregs.cr3, PML4);
        assert_eq!(sregs.efer, 0x500);
        assert_ne!(sregs.cr0 & (1 << 31), 0);
        let regs = boot_regs(entry);
        assert_eq!((regs.rip, regs.rsi), (0x100200, 0x7000));
    }

    #[test]
    fn lint0_is_extint_and_lint1_is_nmi() {
        let mut lapic = kvm_lapic_state::default();
        lapic.regs[0x350 + 2] = 1; // masked bit 16: kept
        let lapic = with_local_interrupts(&lapic);
        assert_eq!(lapic.regs[0x351] as u8, 0x7);
        assert_eq!(lapic.regs[0x352] as u8, 1);
        assert_eq!(lapic.regs[0x361] as u8, 0x4);
    }

    #[test]
    fn msrs_the_host_cannot_set_are_left_out() {
        let msrs = boot_msrs(&[0x10, 0x2ff]);
        assert_eq!(msrs, [(0x10, 0), (0x2ff, 0x806)]);
    }
}
