//! The receive filter the driver sets through the control queue, as QEMU
//! keeps it: the rx modes, the MAC table (unicast entries first, then
//! multicast, with overflow flags past 64), and the VLAN bitmap; which
//! frames it lets through; and what `query-rx-filter` reports of it.

/// Entries the MAC table holds before it overflows.
pub const MAC_TABLE_ENTRIES: usize = 64;
pub const VLANS: usize = 4096;

pub type Mac = [u8; 6];

const BROADCAST: Mac = [0xff; 6];
const VLAN_TAG: [u8; 2] = [0x81, 0x00];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RxFilter {
    pub mac: Mac,
    pub promisc: bool,
    pub allmulti: bool,
    pub alluni: bool,
    pub nomulti: bool,
    pub nouni: bool,
    pub nobcast: bool,
    pub unicast: Vec<Mac>,
    pub multicast: Vec<Mac>,
    pub unicast_overflow: bool,
    pub multicast_overflow: bool,
    /// One bit per VLAN id.
    pub vlans: Vec<u32>,
    /// Whether the driver filters VLANs (CTRL_VLAN).
    pub vlan_filtering: bool,
}

impl RxFilter {
    /// A reset device's filter: promiscuous (QEMU's default, for old
    /// drivers), no tables, every VLAN.
    pub fn new(mac: Mac) -> RxFilter {
        RxFilter {
            mac,
            promisc: true,
            allmulti: false,
            alluni: false,
            nomulti: false,
            nouni: false,
            nobcast: false,
            unicast: Vec::new(),
            multicast: Vec::new(),
            unicast_overflow: false,
            multicast_overflow: false,
            vlans: vec![u32::MAX; VLANS / 32],
            vlan_filtering: false,
        }
    }

    /// The driver's features are set.  As in QEMU, a driver that filters
    /// VLANs starts with every one allowed, and removes those it does not
    /// want.
    pub fn set_vlan_filtering(&mut self, filtering: bool) {
        self.vlan_filtering = filtering;
    }

    pub fn set_vlan(&mut self, vid: u16, allowed: bool) {
        let (word, bit) = (usize::from(vid) >> 5, 1u32 << (vid & 31));
        if let Some(word) = self.vlans.get_mut(word) {
            match allowed {
                true => *word |= bit,
                false => *word &= !bit,
            }
        }
    }

    fn vlan_allowed(&self, vid: u16) -> bool {
        let (word, bit) = (usize::from(vid) >> 5, 1u32 << (vid & 31));
        self.vlans.get(word).is_some_and(|word| word & bit != 0)
    }

    /// The VLAN ids allowed, in QEMU's order (highest first).
    pub fn vlan_table(&self) -> Vec<u16> {
        (0..VLANS as u16)
            .rev()
            .filter(|&vid| self.vlan_allowed(vid))
            .collect()
    }

    /// Sets one of the tables from the driver's list.
    pub fn set_table(table: &mut Vec<Mac>, overflow: &mut bool, entries: Vec<Mac>) {
        *overflow = entries.len() > MAC_TABLE_ENTRIES;
        *table = match *overflow {
            true => Vec::new(),
            false => entries,
        };
    }

    /// Whether the guest gets `frame` (an Ethernet frame, no header).
    pub fn accepts(&self, frame: &[u8]) -> bool {
        if self.promisc {
            return true;
        }
        let Some(destination) = frame.get(..6) else {
            return false;
        };
        if frame.get(12..14) == Some(&VLAN_TAG[..]) {
            let vid = frame
                .get(14..16)
                .map_or(0, |tci| u16::from_be_bytes([tci[0], tci[1]]) & 0xfff);
            if !self.vlan_allowed(vid) {
                return false;
            }
        }
        if destination[0] & 1 != 0 {
            if destination == BROADCAST {
                return !self.nobcast;
            }
            if self.nomulti {
                return false;
            }
            self.allmulti
                || self.multicast_overflow
                || self.multicast.iter().any(|m| m == destination)
        } else {
            if self.nouni {
                return false;
            }
            self.alluni
                || self.unicast_overflow
                || destination == self.mac
                || self.unicast.iter().any(|m| m == destination)
        }
    }
}

/// A MAC address as QEMU prints it.
pub fn mac_text(mac: &Mac) -> String {
    mac.iter()
        .map(|byte| format!("{byte:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    const OWN: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];
    const OTHER: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x57];
    const MULTI: Mac = [0x01, 0, 0x5e, 0, 0, 1];

    fn frame(destination: Mac, vlan: Option<u16>) -> Vec<u8> {
        let mut frame = destination.to_vec();
        frame.extend_from_slice(&OTHER);
        if let Some(vid) = vlan {
            frame.extend_from_slice(&VLAN_TAG);
            frame.extend_from_slice(&vid.to_be_bytes());
        }
        frame.extend_from_slice(&[0x08, 0x00]);
        frame.resize(64, 0);
        frame
    }

    #[test]
    fn a_reset_filter_takes_everything_until_promiscuity_ends() {
        let mut filter = RxFilter::new(OWN);
        assert!(filter.accepts(&frame(OTHER, None)));
        filter.promisc = false;
        assert!(filter.accepts(&frame(OWN, None)));
        assert!(!filter.accepts(&frame(OTHER, None)));
        assert!(filter.accepts(&frame(BROADCAST, None)));
        assert!(!filter.accepts(&frame(MULTI, None)));
        assert!(!filter.accepts(&[0xff; 4]), "too short");
    }

    #[test]
    fn modes_and_tables_decide_as_qemus() {
        let mut filter = RxFilter::new(OWN);
        filter.promisc = false;
        RxFilter::set_table(
            &mut filter.unicast,
            &mut filter.unicast_overflow,
            vec![OTHER],
        );
        RxFilter::set_table(
            &mut filter.multicast,
            &mut filter.multicast_overflow,
            vec![MULTI],
        );
        assert!(filter.accepts(&frame(OTHER, None)));
        assert!(filter.accepts(&frame(MULTI, None)));
        filter.nobcast = true;
        assert!(!filter.accepts(&frame(BROADCAST, None)));
        filter.nomulti = true;
        assert!(!filter.accepts(&frame(MULTI, None)));
        filter.nouni = true;
        assert!(!filter.accepts(&frame(OWN, None)));
        filter.nouni = false;
        filter.alluni = true;
        assert!(filter.accepts(&frame([0x02, 0, 0, 0, 0, 9], None)));
        let many = (0..65u8).map(|i| [0x02, 0, 0, 0, 1, i]).collect();
        RxFilter::set_table(&mut filter.unicast, &mut filter.unicast_overflow, many);
        assert!(filter.unicast_overflow && filter.unicast.is_empty());
    }

    #[test]
    fn vlans_pass_all_until_the_driver_filters_them() {
        let mut filter = RxFilter::new(OWN);
        filter.promisc = false;
        assert!(filter.accepts(&frame(OWN, Some(5))));
        assert_eq!(filter.vlan_table().len(), VLANS);
        filter.set_vlan_filtering(true);
        assert!(filter.accepts(&frame(OWN, Some(5))), "all allowed at first");
        for vid in 0..VLANS as u16 {
            filter.set_vlan(vid, false);
        }
        assert!(!filter.accepts(&frame(OWN, Some(5))));
        filter.set_vlan(5, true);
        filter.set_vlan(4095, true);
        assert!(filter.accepts(&frame(OWN, Some(5))));
        assert_eq!(filter.vlan_table(), [4095, 5]);
        filter.set_vlan(5, false);
        assert!(!filter.accepts(&frame(OWN, Some(5))));
        assert_eq!(mac_text(&OWN), "52:54:00:12:34:56");
    }
}
