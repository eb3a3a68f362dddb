//! The NICs as management sees them: `set_link` and `query-rx-filter`,
//! with QEMU's lookups by net client name (a NIC's, or its netdev's for
//! set_link) and errors.

use std::os::fd::RawFd;

use qmp::commands::{RxFilterInfo, RxState};
use qmp::{ErrorClass, QmpError};
use virtio::net::{inherited_fd, mac_text, Mac, NetHandle, RxFilter, Tap};
use virtio::os_text;

/// Where a NIC's tap comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TapSource {
    /// By name (empty: the kernel names it).
    Name(String),
    /// An fd kvmon inherited.
    Fd(RawFd),
}

/// A NIC as the command line asks for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NicConfig {
    pub source: TapSource,
    /// The `-netdev` option, for errors.
    pub location: String,
    pub netdev: String,
    pub mac: Mac,
    /// Its net client name.
    pub name: String,
    pub qom_path: String,
}

impl NicConfig {
    /// Opens the tap, with QEMU's errors.
    pub fn open(&self) -> Result<Tap, String> {
        match &self.source {
            TapSource::Name(name) => Tap::open(name).map_err(|error| {
                format!(
                    "could not configure /dev/net/tun ({name}): {}",
                    os_text(&error)
                )
            }),
            TapSource::Fd(fd) => {
                // SAFETY: the command line gave kvmon this fd for this
                // netdev, and nothing else in kvmon owns it.
                let owned = unsafe { inherited_fd(*fd) }.map_err(|error| {
                    format!(
                        "{}: Can't use file descriptor {fd}: {}",
                        self.netdev,
                        os_text(&error)
                    )
                })?;
                Tap::from_fd(owned).map_err(|error| match error.kind() {
                    std::io::ErrorKind::InvalidInput => format!("the tap on fd {fd}: {error}"),
                    _ => format!("Unable to query TUNGETIFF on FD {fd}: {}", os_text(&error)),
                })
            }
        }
    }
}

/// A NIC to build: what the command line asked for, and its tap.
#[derive(Debug)]
pub struct Nic {
    pub config: NicConfig,
    pub tap: Tap,
}

/// A NIC and the names QEMU's net clients give it and its backend.
#[derive(Debug, Clone)]
pub struct NetDevice {
    pub handle: NetHandle,
    /// The NIC's net client name: its id, else `virtio-net-device.N`.
    pub name: String,
    /// The `-netdev` id it is on.
    pub netdev: String,
    pub qom_path: String,
}

/// `set_link`: by the NIC's name or its netdev's, either way the guest
/// sees its link change.
pub fn set_link(nics: &[NetDevice], name: &str, up: bool) -> Result<(), QmpError> {
    let nic = nics
        .iter()
        .find(|nic| nic.name == name || nic.netdev == name)
        .ok_or_else(|| {
            QmpError::new(
                ErrorClass::DeviceNotFound,
                format!("Device '{name}' not found"),
            )
        })?;
    nic.handle.set_link(up);
    Ok(())
}

/// `query-rx-filter`: every NIC's filter, or the named one's; a netdev's
/// name is not a NIC's.
pub fn query_rx_filter(
    nics: &[NetDevice],
    name: Option<&str>,
) -> Result<Vec<RxFilterInfo>, QmpError> {
    let Some(name) = name else {
        return Ok(nics.iter().map(info).collect());
    };
    if let Some(nic) = nics.iter().find(|nic| nic.name == name) {
        return Ok(vec![info(nic)]);
    }
    Err(QmpError::generic(
        match nics.iter().any(|nic| nic.netdev == name) {
            true => format!("net client({name}) isn't a NIC"),
            false => format!("invalid net client name: {name}"),
        },
    ))
}

fn state(none: bool, all: bool) -> RxState {
    match (none, all) {
        (true, _) => RxState::None,
        (false, true) => RxState::All,
        (false, false) => RxState::Normal,
    }
}

/// As QEMU's virtio_net_query_rxfilter, which lists the tables last entry
/// first and reports `nobcast` as `broadcast-allowed`.
fn info(nic: &NetDevice) -> RxFilterInfo {
    let filter: RxFilter = nic.handle.query_filter();
    let table = |macs: &[virtio::net::Mac]| macs.iter().rev().map(mac_text).collect();
    let vlan_table: Vec<i64> = filter.vlan_table().into_iter().map(i64::from).collect();
    let vlan = match (filter.vlan_filtering, vlan_table.is_empty()) {
        (false, _) => RxState::All,
        (true, true) => RxState::None,
        (true, false) => RxState::Normal,
    };
    RxFilterInfo {
        name: nic.name.clone(),
        promiscuous: filter.promisc,
        multicast: state(filter.nomulti, filter.allmulti),
        unicast: state(filter.nouni, filter.alluni),
        vlan,
        broadcast_allowed: filter.nobcast,
        multicast_overflow: filter.multicast_overflow,
        unicast_overflow: filter.unicast_overflow,
        main_mac: mac_text(&filter.mac),
        vlan_table,
        unicast_table: table(&filter.unicast),
        multicast_table: table(&filter.multicast),
    }
}

#[cfg(test)]
mod tests {
    use virtio::net::{Net, Tap};

    use super::*;

    fn nic() -> (Net, NetDevice) {
        let name = format!("kvm{}nq", std::process::id() % 100_000);
        let net = Net::new(
            Tap::open(&name).unwrap(),
            [0x52, 0x54, 0, 0x12, 0x34, 0x56],
            Box::new(|| {}),
        );
        let device = NetDevice {
            handle: net.handle(),
            name: "nic0".into(),
            netdev: "n0".into(),
            qom_path: "/machine/peripheral/nic0".into(),
        };
        (net, device)
    }

    #[test]
    fn nics_are_found_by_their_names_and_their_netdevs_as_qemus_are() {
        let (_net, device) = nic();
        let nics = [device];
        let all = query_rx_filter(&nics, None).unwrap();
        assert_eq!(all.len(), 1);
        let info = &all[0];
        assert!(info.promiscuous && !info.broadcast_allowed);
        assert_eq!(
            (info.unicast, info.multicast, info.vlan),
            (RxState::Normal, RxState::Normal, RxState::All)
        );
        assert_eq!(info.main_mac, "52:54:00:12:34:56");
        assert_eq!(info.vlan_table.len(), 4096);
        assert_eq!(info.vlan_table[0], 4095, "highest first");
        assert_eq!(query_rx_filter(&nics, Some("nic0")).unwrap().len(), 1);
        let error = |name| query_rx_filter(&nics, Some(name)).unwrap_err().desc;
        assert_eq!(error("n0"), "net client(n0) isn't a NIC");
        assert_eq!(error("nope"), "invalid net client name: nope");
        set_link(&nics, "n0", false).unwrap();
        assert!(!nics[0].handle.link_up());
        set_link(&nics, "nic0", true).unwrap();
        assert!(nics[0].handle.link_up());
        let missing = set_link(&nics, "nope", true).unwrap_err();
        assert_eq!(
            (missing.class, missing.desc.as_str()),
            (ErrorClass::DeviceNotFound, "Device 'nope' not found")
        );
    }
}
