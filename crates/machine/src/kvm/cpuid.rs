//! Each vCPU's CPUID: what KVM supports on this host
//! (KVM_GET_SUPPORTED_CPUID), with the vCPU's APIC id, the machine's
//! topology (one socket of N single-threaded cores, as QEMU's microvm with
//! `-smp N`), the hypervisor bit and KVM's signature leaf.

use kvm_bindings::{kvm_cpuid_entry2, CpuId};

const HYPERVISOR: u32 = 1 << 31;
const HTT: u32 = 1 << 28;
const KVM_SIGNATURE_LEAF: u32 = 0x4000_0000;
/// "KVMKVMKVM\0\0\0" as EBX, ECX, EDX.
const KVM_SIGNATURE: [u32; 3] = [0x4b4d_564b, 0x564b_4d56, 0x0000_004d];
/// Leaf 0xB/0x1F level types.
const LEVEL_SMT: u32 = 1;
const LEVEL_CORE: u32 = 2;

/// The CPUID of vCPU `index` of `count`.
pub fn for_vcpu(supported: &CpuId, index: u32, count: u32) -> CpuId {
    let mut cpuid = supported.clone();
    let core_bits = bits_for(count);
    for entry in cpuid.as_mut_slice() {
        adjust(entry, index, count, core_bits);
    }
    cpuid
}

fn adjust(entry: &mut kvm_cpuid_entry2, apic_id: u32, count: u32, core_bits: u32) {
    match entry.function {
        0x1 => {
            entry.ebx = (entry.ebx & 0x0000_ffff) | (apic_id << 24) | (count.min(255) << 16);
            entry.ecx |= HYPERVISOR;
            if count > 1 {
                entry.edx |= HTT;
            } else {
                entry.edx &= !HTT;
            }
        }
        0x4 if entry.eax & 0x1f != 0 => {
            // Cores per package - 1 in bits 31:26; one thread per cache.
            entry.eax = (entry.eax & 0x03ff_c3ff) | ((count - 1).min(63) << 26);
        }
        0xb | 0x1f => {
            let (shift, logical, level) = match entry.index {
                0 => (0, 1, LEVEL_SMT),
                1 => (core_bits, count, LEVEL_CORE),
                _ => (0, 0, 0),
            };
            entry.eax = shift;
            entry.ebx = logical;
            entry.ecx = (level << 8) | (entry.index & 0xff);
            entry.edx = apic_id;
        }
        KVM_SIGNATURE_LEAF => {
            [entry.ebx, entry.ecx, entry.edx] = KVM_SIGNATURE;
        }
        0x8000_0008 => {
            // AMD: cores per package - 1, and the APIC id bits they take.
            entry.ecx = (entry.ecx & !0xf0ff) | (core_bits << 12) | (count - 1).min(255);
        }
        _ => {}
    }
}

/// The APIC-id bits `count` cores need.
fn bits_for(count: u32) -> u32 {
    u32::BITS - count.saturating_sub(1).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(function: u32, index: u32) -> kvm_cpuid_entry2 {
        kvm_cpuid_entry2 {
            function,
            index,
            eax: 0xffff_ffff,
            ebx: 0x0000_0800,
            ecx: 0,
            edx: 0,
            ..Default::default()
        }
    }

    fn find(cpuid: &CpuId, function: u32, index: u32) -> kvm_cpuid_entry2 {
        *cpuid
            .as_slice()
            .iter()
            .find(|e| e.function == function && e.index == index)
            .unwrap()
    }

    #[test]
    fn each_vcpu_gets_its_apic_id_and_the_topology() {
        let supported = CpuId::from_entries(&[
            entry(0x1, 0),
            entry(0xb, 0),
            entry(0xb, 1),
            entry(0xb, 2),
            entry(KVM_SIGNATURE_LEAF, 0),
        ])
        .unwrap();
        let cpuid = for_vcpu(&supported, 2, 3);
        let leaf1 = find(&cpuid, 0x1, 0);
        assert_eq!(leaf1.ebx >> 24, 2, "APIC id");
        assert_eq!((leaf1.ebx >> 16) & 0xff, 3, "logical processors");
        assert_eq!(leaf1.ebx & 0xffff, 0x0800, "CLFLUSH size kept");
        assert_ne!(leaf1.ecx & HYPERVISOR, 0);
        assert_ne!(leaf1.edx & HTT, 0);
        let smt = find(&cpuid, 0xb, 0);
        assert_eq!((smt.eax, smt.ebx, smt.ecx, smt.edx), (0, 1, 0x100, 2));
        let core = find(&cpuid, 0xb, 1);
        assert_eq!((core.eax, core.ebx, core.ecx, core.edx), (2, 3, 0x201, 2));
        assert_eq!(find(&cpuid, 0xb, 2).ecx, 2, "invalid level ends the list");
        let kvm = find(&cpuid, KVM_SIGNATURE_LEAF, 0);
        let signature: Vec<u8> = [kvm.ebx, kvm.ecx, kvm.edx]
            .iter()
            .flat_map(|r| r.to_le_bytes())
            .collect();
        assert_eq!(&signature, b"KVMKVMKVM\0\0\0");
    }

    #[test]
    fn a_single_vcpu_has_no_htt() {
        let mut one = entry(0x1, 0);
        one.edx = HTT;
        let cpuid = for_vcpu(&CpuId::from_entries(&[one]).unwrap(), 0, 1);
        assert_eq!(find(&cpuid, 0x1, 0).edx & HTT, 0);
        assert_eq!(bits_for(1), 0);
        assert_eq!(bits_for(2), 1);
        assert_eq!(bits_for(4), 2);
        assert_eq!(bits_for(5), 3);
    }
}
