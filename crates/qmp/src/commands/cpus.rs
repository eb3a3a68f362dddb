//! The vCPUs: their list and NMIs.

use super::machine_info::SysEmuTarget;

crate::qapi_struct! {
    /// List of properties to be used for hotplugging a CPU instance, it
    /// should be passed by management with device_add command when a CPU is
    /// being hotplugged.
    pub struct CpuInstanceProperties {
        /// NUMA node ID the CPU belongs to
        node_id = "node-id": Option<i64>,
        /// drawer number within CPU topology the CPU belongs to
        drawer_id = "drawer-id": Option<i64>,
        /// book number within parent container the CPU belongs to
        book_id = "book-id": Option<i64>,
        /// socket number within parent container the CPU belongs to
        socket_id = "socket-id": Option<i64>,
        /// die number within the parent container the CPU belongs to
        die_id = "die-id": Option<i64>,
        /// cluster number within the parent container the CPU belongs to
        cluster_id = "cluster-id": Option<i64>,
        /// module number within the parent container the CPU belongs to
        module_id = "module-id": Option<i64>,
        /// core number within the parent container the CPU belongs to
        core_id = "core-id": Option<i64>,
        /// thread number within the core the CPU belongs to
        thread_id = "thread-id": Option<i64>,
    }
}

crate::qapi_struct! {
    /// Information about a virtual CPU, common to every target.
    pub struct CpuInfoFastBase {
        /// index of the virtual CPU
        cpu_index = "cpu-index": i64,
        /// path to the CPU object in the QOM tree
        qom_path = "qom-path": String,
        /// ID of the underlying host thread
        thread_id = "thread-id": i64,
        /// properties associated with a virtual CPU, e.g. the socket id
        props: Option<CpuInstanceProperties>,
    }
}

crate::qapi_enum! {
    /// An enumeration of CPU states that a S390 CPU can be in.
    pub enum CpuS390State {
        Uninitialized = "uninitialized",
        Stopped = "stopped",
        CheckStop = "check-stop",
        Operating = "operating",
        Load = "load",
    }
}

crate::qapi_enum! {
    /// An enumeration of CPU entitlements that can be assumed by a virtual
    /// S390 CPU
    pub enum CpuS390Entitlement {
        Auto = "auto",
        Low = "low",
        Medium = "medium",
        High = "high",
    }
}

crate::qapi_struct! {
    /// Additional information about a virtual S390 CPU
    pub struct CpuInfoS390 {
        /// the virtual CPU's state
        cpu_state = "cpu-state": CpuS390State,
        /// the virtual CPU's dedication
        dedicated: Option<bool>,
        /// the virtual CPU's entitlement
        entitlement: Option<CpuS390Entitlement>,
    }
}

crate::qapi_union! {
    /// Information about a virtual CPU
    pub union CpuInfoFast: CpuInfoFastBase,
    tag target = "target": SysEmuTarget at 4 => CpuInfoFastVariant {
        // The branch with members first, then the rest in enum order, as
        // QEMU's introspection lists them.
        S390x(CpuInfoS390),
        Aarch64(()),
        Alpha(()),
        Arm(()),
        Avr(()),
        Hppa(()),
        I386(()),
        Loongarch64(()),
        M68k(()),
        Microblaze(()),
        Microblazeel(()),
        Mips(()),
        Mips64(()),
        Mips64el(()),
        Mipsel(()),
        Or1k(()),
        Ppc(()),
        Ppc64(()),
        Riscv32(()),
        Riscv64(()),
        Rx(()),
        Sh4(()),
        Sh4eb(()),
        Sparc(()),
        Sparc64(()),
        Tricore(()),
        X86_64(()),
        Xtensa(()),
        Xtensaeb(()),
    }
}

crate::qapi_command! {
    /// Returns information about all virtual CPUs, without interrupting
    /// them.
    "query-cpus-fast" => pub struct QueryCpusFast {} -> Vec<CpuInfoFast>
}

crate::qapi_command! {
    /// Injects a Non-Maskable Interrupt into the default CPU (x86: all
    /// CPUs).
    "inject-nmi" => pub struct InjectNmi {} -> ()
}
