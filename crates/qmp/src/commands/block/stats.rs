//! query-blockstats and the accounting it returns, as QEMU 10 declares
//! them.

crate::qapi_struct! {
    /// Statistics of a virtual block device or a block backing device.
    pub struct BlockDeviceTimedStats {
        /// Interval used for calculating the statistics, in seconds.
        interval_length: i64,
        /// Minimum latency of read operations in the defined interval, in
        /// nanoseconds.
        min_rd_latency_ns: i64,
        /// Maximum latency of read operations in the defined interval, in
        /// nanoseconds.
        max_rd_latency_ns: i64,
        /// Average latency of read operations in the defined interval, in
        /// nanoseconds.
        avg_rd_latency_ns: i64,
        /// Minimum latency of write operations in the defined interval, in
        /// nanoseconds.
        min_wr_latency_ns: i64,
        /// Maximum latency of write operations in the defined interval, in
        /// nanoseconds.
        max_wr_latency_ns: i64,
        /// Average latency of write operations in the defined interval, in
        /// nanoseconds.
        avg_wr_latency_ns: i64,
        /// Minimum latency of zone append operations in the defined
        /// interval, in nanoseconds.
        min_zone_append_latency_ns: i64,
        /// Maximum latency of zone append operations in the defined
        /// interval, in nanoseconds.
        max_zone_append_latency_ns: i64,
        /// Average latency of zone append operations in the defined
        /// interval, in nanoseconds.
        avg_zone_append_latency_ns: i64,
        /// Minimum latency of flush operations in the defined interval, in
        /// nanoseconds.
        min_flush_latency_ns: i64,
        /// Maximum latency of flush operations in the defined interval, in
        /// nanoseconds.
        max_flush_latency_ns: i64,
        /// Average latency of flush operations in the defined interval, in
        /// nanoseconds.
        avg_flush_latency_ns: i64,
        /// Average number of pending read operations in the defined
        /// interval.
        avg_rd_queue_depth: f64,
        /// Average number of pending write operations in the defined
        /// interval.
        avg_wr_queue_depth: f64,
        /// Average number of pending zone append operations in the defined
        /// interval.
        avg_zone_append_queue_depth: f64,
    }
}

crate::qapi_struct! {
    /// Block latency histogram.
    pub struct BlockLatencyHistogramInfo {
        /// list of interval boundary values in nanoseconds
        boundaries: Vec<i64>,
        /// list of io request counts corresponding to histogram intervals
        bins: Vec<i64>,
    }
}

crate::qapi_struct! {
    /// Statistics of a virtual block device or a block backing device.
    pub struct BlockDeviceStats {
        /// The number of bytes read by the device.
        rd_bytes: i64,
        /// The number of bytes written by the device.
        wr_bytes: i64,
        /// The number of bytes appended by the zoned devices.
        zone_append_bytes: i64,
        /// The number of bytes unmapped by the device.
        unmap_bytes: i64,
        /// The number of read operations performed by the device.
        rd_operations: i64,
        /// The number of write operations performed by the device.
        wr_operations: i64,
        /// The number of zone append operations performed by the zoned
        /// devices.
        zone_append_operations: i64,
        /// The number of cache flush operations performed by the device
        flush_operations: i64,
        /// The number of unmap operations performed by the device.
        unmap_operations: i64,
        /// Total time spent on reads in nanoseconds.
        rd_total_time_ns: i64,
        /// Total time spent on writes in nanoseconds.
        wr_total_time_ns: i64,
        /// Total time spent on zone append writes in nanoseconds.
        zone_append_total_time_ns: i64,
        /// Total time spent on cache flushes in nanoseconds.
        flush_total_time_ns: i64,
        /// Total time spent on unmap operations in nanoseconds.
        unmap_total_time_ns: i64,
        /// The offset after the greatest byte written to the device.
        wr_highest_offset: i64,
        /// Number of read requests that have been merged into another
        /// request.
        rd_merged: i64,
        /// Number of write requests that have been merged into another
        /// request.
        wr_merged: i64,
        /// Number of zone append requests that have been merged into
        /// another request.
        zone_append_merged: i64,
        /// Number of unmap requests that have been merged into another
        /// request.
        unmap_merged: i64,
        /// Time since the last I/O operation, in nanoseconds.
        idle_time_ns: Option<i64>,
        /// The number of failed read operations performed by the device.
        failed_rd_operations: i64,
        /// The number of failed write operations performed by the device.
        failed_wr_operations: i64,
        /// The number of failed zone append write operations performed by
        /// the zoned devices
        failed_zone_append_operations: i64,
        /// The number of failed flush operations performed by the device.
        failed_flush_operations: i64,
        /// The number of failed unmap operations performed by the device.
        failed_unmap_operations: i64,
        /// The number of invalid read operations performed by the device.
        invalid_rd_operations: i64,
        /// The number of invalid write operations performed by the device.
        invalid_wr_operations: i64,
        /// The number of invalid zone append operations performed by the
        /// zoned device.
        invalid_zone_append_operations: i64,
        /// The number of invalid flush operations performed by the device.
        invalid_flush_operations: i64,
        /// The number of invalid unmap operations performed by the device.
        invalid_unmap_operations: i64,
        /// Whether invalid operations are included in the last access
        /// statistics.
        account_invalid: bool,
        /// Whether failed operations are included in the latency and last
        /// access statistics.
        account_failed: bool,
        /// Statistics specific to the set of previously defined intervals of
        /// time.
        timed_stats: Vec<BlockDeviceTimedStats>,
        /// @BlockLatencyHistogramInfo.
        rd_latency_histogram: Option<BlockLatencyHistogramInfo>,
        /// @BlockLatencyHistogramInfo.
        wr_latency_histogram: Option<BlockLatencyHistogramInfo>,
        /// @BlockLatencyHistogramInfo.
        zone_append_latency_histogram: Option<BlockLatencyHistogramInfo>,
        /// @BlockLatencyHistogramInfo.
        flush_latency_histogram: Option<BlockLatencyHistogramInfo>,
    }
}

crate::qapi_enum! {
    /// Drivers that are supported in block device operations.
    pub enum BlockdevDriver {
        Blkdebug = "blkdebug",
        Blklogwrites = "blklogwrites",
        Blkreplay = "blkreplay",
        Blkverify = "blkverify",
        Bochs = "bochs",
        Cloop = "cloop",
        Compress = "compress",
        CopyBeforeWrite = "copy-before-write",
        CopyOnRead = "copy-on-read",
        Dmg = "dmg",
        File = "file",
        SnapshotAccess = "snapshot-access",
        Ftp = "ftp",
        Ftps = "ftps",
        Gluster = "gluster",
        HostCdrom = "host_cdrom",
        HostDevice = "host_device",
        Http = "http",
        Https = "https",
        Iscsi = "iscsi",
        Luks = "luks",
        Nbd = "nbd",
        Nfs = "nfs",
        NullAio = "null-aio",
        NullCo = "null-co",
        Nvme = "nvme",
        Parallels = "parallels",
        Preallocate = "preallocate",
        Qcow = "qcow",
        Qcow2 = "qcow2",
        Qed = "qed",
        Quorum = "quorum",
        Raw = "raw",
        Rbd = "rbd",
        Replication = "replication",
        Ssh = "ssh",
        Throttle = "throttle",
        Vdi = "vdi",
        Vhdx = "vhdx",
        Vmdk = "vmdk",
        Vpc = "vpc",
        Vvfat = "vvfat",
    }
}

crate::qapi_struct! {
    /// File driver statistics
    pub struct BlockStatsSpecificFile {
        /// The number of successful discard operations performed by the
        /// driver.
        discard_nb_ok = "discard-nb-ok": i64,
        /// The number of failed discard operations performed by the driver.
        discard_nb_failed = "discard-nb-failed": i64,
        /// The number of bytes discarded by the driver.
        discard_bytes_ok = "discard-bytes-ok": i64,
    }
}

crate::qapi_struct! {
    /// NVMe driver statistics
    pub struct BlockStatsSpecificNvme {
        /// The number of completion errors.
        completion_errors = "completion-errors": i64,
        /// The number of aligned accesses performed by the driver.
        aligned_accesses = "aligned-accesses": i64,
        /// The number of unaligned accesses performed by the driver.
        unaligned_accesses = "unaligned-accesses": i64,
    }
}

crate::qapi_struct! {
    /// The members every driver's statistics have besides the driver.
    pub struct BlockStatsSpecificBase {}
}

crate::qapi_union! {
    /// Block driver specific statistics
    pub union BlockStatsSpecific: BlockStatsSpecificBase,
    tag driver = "driver": BlockdevDriver => BlockStatsSpecificVariant {
        // The branches with members first, then the rest in enum order, as
        // QEMU's introspection lists them.
        File(BlockStatsSpecificFile),
        HostDevice(BlockStatsSpecificFile),
        Nvme(BlockStatsSpecificNvme),
        Blkdebug(()),
        Blklogwrites(()),
        Blkreplay(()),
        Blkverify(()),
        Bochs(()),
        Cloop(()),
        Compress(()),
        CopyBeforeWrite(()),
        CopyOnRead(()),
        Dmg(()),
        SnapshotAccess(()),
        Ftp(()),
        Ftps(()),
        Gluster(()),
        HostCdrom(()),
        Http(()),
        Https(()),
        Iscsi(()),
        Luks(()),
        Nbd(()),
        Nfs(()),
        NullAio(()),
        NullCo(()),
        Parallels(()),
        Preallocate(()),
        Qcow(()),
        Qcow2(()),
        Qed(()),
        Quorum(()),
        Raw(()),
        Rbd(()),
        Replication(()),
        Ssh(()),
        Throttle(()),
        Vdi(()),
        Vhdx(()),
        Vmdk(()),
        Vpc(()),
        Vvfat(()),
    }
}

crate::qapi_struct! {
    /// Statistics of a virtual block device or a block backing device.
    pub struct BlockStats {
        /// If the stats are for a virtual block device, the name
        /// corresponding to the virtual block device.
        device: Option<String>,
        /// The qdev ID, or if no ID is assigned, the QOM path of the block
        /// device.
        qdev: Option<String>,
        /// The node name of the device.
        node_name = "node-name": Option<String>,
        /// A @BlockDeviceStats for the device.
        stats: BlockDeviceStats,
        /// Optional driver-specific stats.
        driver_specific = "driver-specific": Option<BlockStatsSpecific>,
        /// This describes the file block device if it has one.
        parent: Option<Box<BlockStats>>,
        /// This describes the backing block device if it has one.
        backing: Option<Box<BlockStats>>,
    }
}

crate::qapi_command! {
    /// Query the @BlockStats for all virtual block devices.
    "query-blockstats" => pub struct QueryBlockstats {
        /// If true, the command will query all the block nodes that have a
        /// node name, in a list which will include "parent" information, but
        /// not "backing".  If false or omitted, the behavior is as before -
        /// query all the device backends, recursively including their
        /// "parent" and "backing".
        query_nodes = "query-nodes": Option<bool>,
    } -> Vec<BlockStats>
}
