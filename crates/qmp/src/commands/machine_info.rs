//! Commands that describe the machine: name, UUID, accelerator, target.

crate::qapi_struct! {
    /// Guest name information.
    pub struct NameInfo {
        /// The name of the guest
        name: Option<String>,
    }
}

crate::qapi_command! {
    /// Return the name information of a guest.
    "query-name" => pub struct QueryName {} -> NameInfo
}

crate::qapi_struct! {
    /// Guest UUID information (Universally Unique Identifier).
    pub struct UuidInfo {
        /// the UUID of the guest
        uuid = "UUID": String,
    }
}

crate::qapi_command! {
    /// Query the guest UUID information.  If no UUID was given, the null
    /// UUID is returned.
    "query-uuid" => pub struct QueryUuid {} -> UuidInfo
}

crate::qapi_struct! {
    /// Information about support for KVM acceleration
    pub struct KvmInfo {
        /// true if KVM acceleration is active
        enabled: bool,
        /// true if KVM acceleration is built into this executable
        present: bool,
    }
}

crate::qapi_command! {
    /// Returns information about KVM acceleration
    "query-kvm" => pub struct QueryKvm {} -> KvmInfo
}

crate::qapi_enum! {
    /// The comprehensive enumeration of QEMU system emulation ("softmmu") targets.
    pub enum SysEmuTarget {
        Aarch64 = "aarch64",
        Alpha = "alpha",
        Arm = "arm",
        Avr = "avr",
        Hppa = "hppa",
        I386 = "i386",
        Loongarch64 = "loongarch64",
        M68k = "m68k",
        Microblaze = "microblaze",
        Microblazeel = "microblazeel",
        Mips = "mips",
        Mips64 = "mips64",
        Mips64el = "mips64el",
        Mipsel = "mipsel",
        Or1k = "or1k",
        Ppc = "ppc",
        Ppc64 = "ppc64",
        Riscv32 = "riscv32",
        Riscv64 = "riscv64",
        Rx = "rx",
        S390x = "s390x",
        Sh4 = "sh4",
        Sh4eb = "sh4eb",
        Sparc = "sparc",
        Sparc64 = "sparc64",
        Tricore = "tricore",
        X86_64 = "x86_64",
        Xtensa = "xtensa",
        Xtensaeb = "xtensaeb",
    }
}

crate::qapi_struct! {
    /// Information describing the QEMU target.
    pub struct TargetInfo {
        /// the target architecture
        arch: SysEmuTarget,
    }
}

crate::qapi_command! {
    /// Return information about the target for this QEMU
    "query-target" => pub struct QueryTarget {} -> TargetInfo
}
