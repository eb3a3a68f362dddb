//! Block device types shared by the block commands and events.

crate::qapi_enum! {
    /// An enumeration of the I/O operation types
    pub enum IoOperationType {
        /// read operation
        Read = "read",
        /// write operation
        Write = "write",
    }
}

crate::qapi_enum! {
    /// An enumeration of action that has been taken when a DISK I/O occurs
    pub enum BlockErrorAction {
        /// error has been ignored
        Ignore = "ignore",
        /// error has been reported to the device
        Report = "report",
        /// error caused VM to be stopped
        Stop = "stop",
    }
}

crate::qapi_enum! {
    /// An enumeration of block device I/O status.
    pub enum BlockDeviceIoStatus {
        /// The last I/O operation has succeeded
        Ok = "ok",
        /// The last I/O operation has failed
        Failed = "failed",
        /// The last I/O operation has failed due to a no-space condition
        Nospace = "nospace",
    }
}
