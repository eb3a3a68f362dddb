//! The block commands over the machine's disks: query-block,
//! query-blockstats and block_resize, shaped as QEMU answers them for a
//! raw image under a virtio-blk device (a raw format node over a file node).

use std::os::unix::fs::MetadataExt;
use std::sync::Arc;

use qmp::commands::{
    BlockDeviceInfo, BlockDeviceStats, BlockInfo, BlockStats, BlockStatsSpecific,
    BlockStatsSpecificBase, BlockStatsSpecificFile, BlockStatsSpecificVariant, BlockdevCacheInfo,
    BlockdevDetectZeroesOptions, ImageInfo,
};
use qmp::types::BlockDeviceIoStatus;
use qmp::QmpError;
use virtio::block::{Counters, Drive, IoStatus, Stats};

/// A disk: its drive and the device the guest sees.
#[derive(Debug, Clone)]
pub struct BlockDevice {
    pub drive: Arc<Drive>,
    /// The device's `id=`, if it has one.
    pub id: Option<String>,
    pub qom_path: String,
}

impl BlockDevice {
    /// QEMU's `qdev`: the id, else the QOM path.
    fn qdev(&self) -> String {
        self.id.clone().unwrap_or_else(|| self.qom_path.clone())
    }
}

pub fn query_block(disks: &[BlockDevice]) -> Vec<BlockInfo> {
    disks.iter().map(block_info).collect()
}

fn block_info(disk: &BlockDevice) -> BlockInfo {
    let drive = &disk.drive;
    let options = drive.options();
    let path = options.path.display().to_string();
    let actual_size = std::fs::metadata(&options.path)
        .ok()
        .map(|metadata| (metadata.blocks() * 512) as i64);
    BlockInfo {
        device: options.id.clone(),
        qdev: Some(disk.qdev()),
        r#type: "unknown".into(),
        removable: false,
        locked: false,
        inserted: Some(BlockDeviceInfo {
            file: path.clone(),
            node_name: Some(options.node_name.clone()),
            ro: options.read_only,
            drv: "raw".into(),
            backing_file: None,
            backing_file_depth: 0,
            active: true,
            encrypted: false,
            detect_zeroes: BlockdevDetectZeroesOptions::Off,
            bps: 0,
            bps_rd: 0,
            bps_wr: 0,
            iops: 0,
            iops_rd: 0,
            iops_wr: 0,
            image: ImageInfo {
                filename: path,
                format: "raw".into(),
                dirty_flag: Some(false),
                actual_size,
                virtual_size: drive.size() as i64,
                cluster_size: None,
                encrypted: None,
                compressed: None,
                backing_filename: None,
                full_backing_filename: None,
                backing_filename_format: None,
                snapshots: None,
                format_specific: None,
                backing_image: None,
            },
            bps_max: None,
            bps_rd_max: None,
            bps_wr_max: None,
            iops_max: None,
            iops_rd_max: None,
            iops_wr_max: None,
            bps_max_length: None,
            bps_rd_max_length: None,
            bps_wr_max_length: None,
            iops_max_length: None,
            iops_rd_max_length: None,
            iops_wr_max_length: None,
            iops_size: None,
            group: None,
            cache: BlockdevCacheInfo {
                writeback: options.cache.writeback,
                direct: options.cache.direct,
                no_flush: options.cache.no_flush,
            },
            write_threshold: 0,
            dirty_bitmaps: None,
        }),
        tray_open: None,
        io_status: Some(match drive.io_status() {
            IoStatus::Ok => BlockDeviceIoStatus::Ok,
            IoStatus::Failed => BlockDeviceIoStatus::Failed,
            IoStatus::Nospace => BlockDeviceIoStatus::Nospace,
        }),
    }
}

/// Per device: the device's accounting on its node, with the file node
/// beneath as its parent; with `query_nodes`, every node once, file nodes
/// first, each with only what a node accounts itself.
pub fn query_blockstats(disks: &[BlockDevice], query_nodes: bool) -> Vec<BlockStats> {
    let mut all = Vec::new();
    for disk in disks {
        let stats = disk.drive.stats().clone();
        let file = file_node(&disk.drive, &stats);
        let top = match query_nodes {
            true => device_stats(&node_level(&stats), false),
            false => device_stats(&stats, true),
        };
        let mut format = BlockStats {
            device: None,
            qdev: None,
            node_name: Some(disk.drive.options().node_name.clone()),
            stats: top,
            driver_specific: None,
            parent: None,
            backing: None,
        };
        match file {
            Some(file) => {
                if query_nodes {
                    all.push(file.clone());
                }
                format.parent = Some(Box::new(file));
            }
            // The device sits on the file node itself.
            None => format.driver_specific = Some(file_specific(&disk.drive, &stats)),
        }
        if !query_nodes {
            format.device = Some(disk.drive.options().id.clone());
            format.qdev = Some(disk.qdev());
        }
        all.push(format);
    }
    all
}

/// The file node under a raw node, if there is one.
fn file_node(drive: &Drive, stats: &Stats) -> Option<BlockStats> {
    let name = drive.options().file_node_name.clone()?;
    Some(BlockStats {
        device: None,
        qdev: None,
        node_name: Some(name),
        stats: device_stats(&node_level(stats), false),
        driver_specific: Some(file_specific(drive, stats)),
        parent: None,
        backing: None,
    })
}

/// QEMU accounts requests where the device makes them; a node keeps only
/// the highest offset written through it.
fn node_level(stats: &Stats) -> Stats {
    Stats {
        wr_highest_offset: stats.wr_highest_offset,
        ..Stats::default()
    }
}

/// file-posix's discard counters: the discards that reached the file.
fn file_specific(drive: &Drive, stats: &Stats) -> BlockStatsSpecific {
    let unmap = if drive.options().discard {
        stats.unmap
    } else {
        Counters::default()
    };
    BlockStatsSpecific {
        base: BlockStatsSpecificBase {},
        driver: BlockStatsSpecificVariant::File(BlockStatsSpecificFile {
            discard_nb_ok: unmap.operations as i64,
            discard_nb_failed: unmap.failed as i64,
            discard_bytes_ok: unmap.bytes as i64,
        }),
    }
}

fn device_stats(stats: &Stats, accounted: bool) -> BlockDeviceStats {
    let n = |value: u64| value as i64;
    BlockDeviceStats {
        rd_bytes: n(stats.read.bytes),
        wr_bytes: n(stats.write.bytes),
        zone_append_bytes: 0,
        unmap_bytes: n(stats.unmap.bytes),
        rd_operations: n(stats.read.operations),
        wr_operations: n(stats.write.operations),
        zone_append_operations: 0,
        flush_operations: n(stats.flush.operations),
        unmap_operations: n(stats.unmap.operations),
        rd_total_time_ns: n(stats.read.total_time_ns),
        wr_total_time_ns: n(stats.write.total_time_ns),
        zone_append_total_time_ns: 0,
        flush_total_time_ns: n(stats.flush.total_time_ns),
        unmap_total_time_ns: n(stats.unmap.total_time_ns),
        wr_highest_offset: n(stats.wr_highest_offset),
        rd_merged: 0,
        wr_merged: 0,
        zone_append_merged: 0,
        unmap_merged: 0,
        idle_time_ns: stats.last_access.map(|at| at.elapsed().as_nanos() as i64),
        failed_rd_operations: n(stats.read.failed),
        failed_wr_operations: n(stats.write.failed),
        failed_zone_append_operations: 0,
        failed_flush_operations: n(stats.flush.failed),
        failed_unmap_operations: n(stats.unmap.failed),
        invalid_rd_operations: n(stats.read.invalid),
        invalid_wr_operations: n(stats.write.invalid),
        invalid_zone_append_operations: 0,
        invalid_flush_operations: n(stats.flush.invalid),
        invalid_unmap_operations: n(stats.unmap.invalid),
        account_invalid: accounted,
        account_failed: accounted,
        timed_stats: Vec::new(),
        rd_latency_histogram: None,
        wr_latency_histogram: None,
        zone_append_latency_histogram: None,
        flush_latency_histogram: None,
    }
}

/// `block_resize`: by drive name first, else by node name, as QEMU looks.
pub fn block_resize(
    disks: &[BlockDevice],
    device: Option<&str>,
    node_name: Option<&str>,
    size: i64,
) -> Result<(), QmpError> {
    let by_device = device
        .filter(|name| !name.is_empty())
        .and_then(|name| disks.iter().find(|d| d.drive.options().id == name));
    let by_node = || {
        let name = node_name?;
        disks.iter().find(|disk| {
            let options = disk.drive.options();
            options.node_name == name || options.file_node_name.as_deref() == Some(name)
        })
    };
    let Some(disk) = by_device.or_else(by_node) else {
        return Err(QmpError::generic(format!(
            "Cannot find device='{}' nor node-name='{}'",
            device.unwrap_or_default(),
            node_name.unwrap_or_default()
        )));
    };
    let size =
        u64::try_from(size).map_err(|_| QmpError::generic("Parameter 'size' expects a >0 size"))?;
    if disk.drive.options().read_only {
        return Err(QmpError::generic("Image is read-only"));
    }
    disk.drive
        .resize(size)
        .map_err(|error| QmpError::generic(format!("Could not resize image: {error}")))?;
    Ok(())
}
