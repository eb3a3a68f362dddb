//! The control queue's commands, as QEMU's virtio_net_handle_ctrl carries
//! them out: rx modes, the MAC table and address, VLAN filtering, the
//! announce acknowledgement and the guest's offloads.  Each takes the
//! command's bytes after its class and command and answers OK or ERR.

use virtio_bindings::virtio_net::*;

use super::filter::{Mac, RxFilter, VLANS};

/// What a command did, beside its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    None,
    /// The receive filter was set (QEMU announces it even when unchanged).
    FilterChanged,
    /// The guest acknowledged an announcement.
    Announced,
    /// The offloads the tap may hand the guest (VIRTIO_NET_F_GUEST_* bits).
    Offloads(u64),
}

/// Carries out command `command` of `class` with `data`.
pub fn execute(filter: &mut RxFilter, class: u8, command: u8, data: &[u8]) -> Result<Effect, ()> {
    match u32::from(class) {
        VIRTIO_NET_CTRL_RX => rx_mode(filter, command, data),
        VIRTIO_NET_CTRL_MAC => mac(filter, command, data),
        VIRTIO_NET_CTRL_VLAN if filter.vlan_filtering => vlan(filter, command, data),
        VIRTIO_NET_CTRL_ANNOUNCE if u32::from(command) == VIRTIO_NET_CTRL_ANNOUNCE_ACK => {
            Ok(Effect::Announced)
        }
        VIRTIO_NET_CTRL_GUEST_OFFLOADS
            if u32::from(command) == VIRTIO_NET_CTRL_GUEST_OFFLOADS_SET =>
        {
            let bytes: [u8; 8] = data.try_into().map_err(|_| ())?;
            Ok(Effect::Offloads(u64::from_le_bytes(bytes)))
        }
        _ => Err(()),
    }
}

fn rx_mode(filter: &mut RxFilter, command: u8, data: &[u8]) -> Result<Effect, ()> {
    let [on] = data else {
        return Err(());
    };
    let on = *on != 0;
    let mode = match u32::from(command) {
        VIRTIO_NET_CTRL_RX_PROMISC => &mut filter.promisc,
        VIRTIO_NET_CTRL_RX_ALLMULTI => &mut filter.allmulti,
        VIRTIO_NET_CTRL_RX_ALLUNI => &mut filter.alluni,
        VIRTIO_NET_CTRL_RX_NOMULTI => &mut filter.nomulti,
        VIRTIO_NET_CTRL_RX_NOUNI => &mut filter.nouni,
        VIRTIO_NET_CTRL_RX_NOBCAST => &mut filter.nobcast,
        _ => return Err(()),
    };
    *mode = on;
    Ok(Effect::FilterChanged)
}

/// A table as the driver sends it: a 32-bit count, then the addresses;
/// returns the table and the bytes after it.
fn table(data: &[u8]) -> Result<(Vec<Mac>, &[u8]), ()> {
    let (count, rest) = data.split_first_chunk::<4>().ok_or(())?;
    let count = usize::try_from(u32::from_le_bytes(*count)).map_err(|_| ())?;
    let len = count
        .checked_mul(6)
        .filter(|&len| len <= rest.len())
        .ok_or(())?;
    let (entries, rest) = rest.split_at(len);
    let entries = entries
        .chunks_exact(6)
        .map(|mac| <Mac>::try_from(mac).unwrap_or_default())
        .collect();
    Ok((entries, rest))
}

fn mac(filter: &mut RxFilter, command: u8, data: &[u8]) -> Result<Effect, ()> {
    match u32::from(command) {
        VIRTIO_NET_CTRL_MAC_ADDR_SET => {
            filter.mac = data.try_into().map_err(|_| ())?;
        }
        VIRTIO_NET_CTRL_MAC_TABLE_SET => {
            let (unicast, rest) = table(data)?;
            let (multicast, rest) = table(rest)?;
            if !rest.is_empty() {
                return Err(());
            }
            RxFilter::set_table(&mut filter.unicast, &mut filter.unicast_overflow, unicast);
            RxFilter::set_table(
                &mut filter.multicast,
                &mut filter.multicast_overflow,
                multicast,
            );
        }
        _ => return Err(()),
    }
    Ok(Effect::FilterChanged)
}

fn vlan(filter: &mut RxFilter, command: u8, data: &[u8]) -> Result<Effect, ()> {
    let bytes: [u8; 2] = data.try_into().map_err(|_| ())?;
    let vid = u16::from_le_bytes(bytes);
    if usize::from(vid) >= VLANS {
        return Err(());
    }
    match u32::from(command) {
        VIRTIO_NET_CTRL_VLAN_ADD => filter.set_vlan(vid, true),
        VIRTIO_NET_CTRL_VLAN_DEL => filter.set_vlan(vid, false),
        _ => return Err(()),
    }
    Ok(Effect::FilterChanged)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: Mac = [0x52, 0x54, 0, 0x12, 0x34, 0x56];

    fn class(value: u32) -> u8 {
        value as u8
    }

    #[test]
    fn rx_modes_take_one_byte() {
        let mut filter = RxFilter::new(MAC);
        let rx = class(VIRTIO_NET_CTRL_RX);
        assert_eq!(execute(&mut filter, rx, 0, &[0]), Ok(Effect::FilterChanged));
        assert!(!filter.promisc);
        assert_eq!(execute(&mut filter, rx, 5, &[1]), Ok(Effect::FilterChanged));
        assert!(filter.nobcast);
        assert_eq!(execute(&mut filter, rx, 0, &[]), Err(()));
        assert_eq!(execute(&mut filter, rx, 0, &[1, 1]), Err(()));
        assert_eq!(execute(&mut filter, rx, 6, &[1]), Err(()));
        assert_eq!(execute(&mut filter, 99, 0, &[1]), Err(()));
    }

    #[test]
    fn mac_tables_must_be_exact() {
        let mut filter = RxFilter::new(MAC);
        let mac = class(VIRTIO_NET_CTRL_MAC);
        let mut data = 1u32.to_le_bytes().to_vec();
        data.extend_from_slice(&[2, 0, 0, 0, 0, 1]);
        data.extend_from_slice(&1u32.to_le_bytes());
        data.extend_from_slice(&[1, 0, 0x5e, 0, 0, 1]);
        assert_eq!(
            execute(&mut filter, mac, 0, &data),
            Ok(Effect::FilterChanged)
        );
        assert_eq!(filter.unicast, [[2, 0, 0, 0, 0, 1]]);
        assert_eq!(filter.multicast, [[1, 0, 0x5e, 0, 0, 1]]);
        // A count past the data, trailing bytes, a count that overflows.
        assert_eq!(
            execute(&mut filter, mac, 0, &data[..data.len() - 1]),
            Err(())
        );
        let mut trailing = data.clone();
        trailing.push(0);
        assert_eq!(execute(&mut filter, mac, 0, &trailing), Err(()));
        assert_eq!(
            execute(&mut filter, mac, 0, &u32::MAX.to_le_bytes()),
            Err(())
        );
        assert_eq!(
            execute(&mut filter, mac, 1, &[2, 0, 0, 0, 0, 9]),
            Ok(Effect::FilterChanged)
        );
        assert_eq!(filter.mac, [2, 0, 0, 0, 0, 9]);
        assert_eq!(execute(&mut filter, mac, 1, &[2, 0, 0]), Err(()));
    }

    #[test]
    fn vlans_only_with_vlan_filtering_and_in_range() {
        let mut filter = RxFilter::new(MAC);
        let vlan = class(VIRTIO_NET_CTRL_VLAN);
        assert_eq!(execute(&mut filter, vlan, 0, &5u16.to_le_bytes()), Err(()));
        filter.set_vlan_filtering(true);
        let (add, del) = (0, 1);
        assert_eq!(
            execute(&mut filter, vlan, del, &5u16.to_le_bytes()),
            Ok(Effect::FilterChanged)
        );
        assert!(!filter.vlan_table().contains(&5));
        assert_eq!(
            execute(&mut filter, vlan, add, &4096u16.to_le_bytes()),
            Err(())
        );
        assert_eq!(
            execute(&mut filter, vlan, add, &5u16.to_le_bytes()),
            Ok(Effect::FilterChanged)
        );
        assert_eq!(filter.vlan_table().len(), 4096);
        let offloads = class(VIRTIO_NET_CTRL_GUEST_OFFLOADS);
        assert_eq!(
            execute(&mut filter, offloads, 0, &3u64.to_le_bytes()),
            Ok(Effect::Offloads(3))
        );
        assert_eq!(
            execute(&mut filter, class(VIRTIO_NET_CTRL_ANNOUNCE), 0, &[]),
            Ok(Effect::Announced)
        );
    }
}
