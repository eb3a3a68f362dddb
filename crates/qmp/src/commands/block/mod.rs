//! The block commands: query-block, query-blockstats and block_resize,
//! with QEMU 10's types (its introspection is compared member by member).

mod image;
mod stats;

pub use image::*;
pub use stats::*;

use crate::types::BlockDeviceIoStatus;

crate::qapi_enum! {
    /// Describes the operation mode for the automatic conversion of plain
    /// zero writes by the OS to driver specific optimized zero write
    /// commands.
    pub enum BlockdevDetectZeroesOptions {
        /// Disabled (default)
        Off = "off",
        /// Enabled
        On = "on",
        /// Enabled and even try to unmap blocks if possible.
        Unmap = "unmap",
    }
}

crate::qapi_struct! {
    /// Cache mode information for a block device
    pub struct BlockdevCacheInfo {
        /// true if writeback mode is enabled
        writeback: bool,
        /// true if the host page cache is bypassed (O_DIRECT)
        direct: bool,
        /// true if flush requests are ignored for the device
        no_flush = "no-flush": bool,
    }
}

crate::qapi_struct! {
    /// Block dirty bitmap information.
    pub struct BlockDirtyInfo {
        /// the name of the dirty bitmap
        name: Option<String>,
        /// number of dirty bytes according to the dirty bitmap
        count: i64,
        /// granularity of the dirty bitmap in bytes
        granularity: i64,
        /// true if the bitmap is recording new writes from the guest
        recording: bool,
        /// true if the bitmap is in-use by some operation
        busy: bool,
        /// true if the bitmap was stored on disk
        persistent: bool,
        /// true if this is a persistent bitmap that was improperly stored
        inconsistent: Option<bool>,
    }
}

crate::qapi_struct! {
    /// Information about the backing device for a block device.
    pub struct BlockDeviceInfo {
        /// the filename of the backing device
        file: String,
        /// the name of the block driver node
        node_name = "node-name": Option<String>,
        /// true if the backing device was open read-only
        ro: bool,
        /// the name of the block format used to open the backing device
        drv: String,
        /// the name of the backing file (for copy-on-write)
        backing_file: Option<String>,
        /// number of files in the backing file chain
        backing_file_depth: i64,
        /// true if the backend is active
        active: bool,
        /// true if the backing device is encrypted
        encrypted: bool,
        /// detect and optimize zero writes
        detect_zeroes: BlockdevDetectZeroesOptions,
        /// total throughput limit in bytes per second is specified
        bps: i64,
        /// read throughput limit in bytes per second is specified
        bps_rd: i64,
        /// write throughput limit in bytes per second is specified
        bps_wr: i64,
        /// total I/O operations per second is specified
        iops: i64,
        /// read I/O operations per second is specified
        iops_rd: i64,
        /// write I/O operations per second is specified
        iops_wr: i64,
        /// the info of image used
        image: ImageInfo,
        /// total throughput limit during bursts, in bytes
        bps_max: Option<i64>,
        /// read throughput limit during bursts, in bytes
        bps_rd_max: Option<i64>,
        /// write throughput limit during bursts, in bytes
        bps_wr_max: Option<i64>,
        /// total I/O operations per second during bursts, in bytes
        iops_max: Option<i64>,
        /// read I/O operations per second during bursts, in bytes
        iops_rd_max: Option<i64>,
        /// write I/O operations per second during bursts, in bytes
        iops_wr_max: Option<i64>,
        /// maximum length of the bps_max burst period, in seconds
        bps_max_length: Option<i64>,
        /// maximum length of the bps_rd_max burst period, in seconds
        bps_rd_max_length: Option<i64>,
        /// maximum length of the bps_wr_max burst period, in seconds
        bps_wr_max_length: Option<i64>,
        /// maximum length of the iops burst period, in seconds
        iops_max_length: Option<i64>,
        /// maximum length of the iops_rd_max burst period, in seconds
        iops_rd_max_length: Option<i64>,
        /// maximum length of the iops_wr_max burst period, in seconds
        iops_wr_max_length: Option<i64>,
        /// an I/O size in bytes
        iops_size: Option<i64>,
        /// throttle group name
        group: Option<String>,
        /// the cache mode used for the block device
        cache: BlockdevCacheInfo,
        /// configured write threshold for the device; 0 if disabled
        write_threshold: i64,
        /// dirty bitmaps information
        dirty_bitmaps = "dirty-bitmaps": Option<Vec<BlockDirtyInfo>>,
    }
}

crate::qapi_struct! {
    /// Block device information.  This structure describes a virtual
    /// device and the backing device associated with it.
    pub struct BlockInfo {
        /// The device name associated with the virtual device.
        device: String,
        /// The qdev ID, or if no ID is assigned, the QOM path of the block
        /// device.
        qdev: Option<String>,
        /// This field is returned only for compatibility reasons, it should
        /// not be used (always returns 'unknown')
        r#type = "type": String,
        /// True if the device supports removable media.
        removable: bool,
        /// True if the guest has locked this device from having its media
        /// removed
        locked: bool,
        /// @BlockDeviceInfo describing the device if media is present
        inserted: Option<BlockDeviceInfo>,
        /// True if the device's tray is open
        tray_open: Option<bool>,
        /// @BlockDeviceIoStatus.  Only present if the device supports it and
        /// the VM is configured to stop on errors
        io_status = "io-status": Option<BlockDeviceIoStatus>,
    }
}

crate::qapi_command! {
    /// Get a list of BlockInfo for all virtual block devices.
    "query-block" => pub struct QueryBlock {} -> Vec<BlockInfo>
}

crate::qapi_command! {
    /// Resize a block image while a guest is running.  Either @device or
    /// @node-name must be set but not both.
    "block_resize" => pub struct BlockResize {
        /// the name of the device to get the image resized
        device: Option<String>,
        /// graph node name to get the image resized
        node_name = "node-name": Option<String>,
        /// new image size in bytes
        size: i64,
    } -> ()
}
