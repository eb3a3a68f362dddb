//! The version a QMP server reports in its greeting and `query-version`.

crate::qapi_struct! {
    /// A three-part version number.
    pub struct VersionTriple {
        /// The major version number.
        major: i64,
        /// The minor version number.
        minor: i64,
        /// The micro version number.
        micro: i64,
    }
}

crate::qapi_struct! {
    /// A description of QEMU's version.
    pub struct VersionInfo {
        /// The version of QEMU whose QMP interface this server implements.
        qemu: VersionTriple,
        /// The server's own name and version.
        package: String,
    }
}
