//! `-netdev tap,id=ID[,ifname=NAME][,script=no,downscript=no]`,
//! `-netdev tap,id=ID,fd=N` and `-device
//! virtio-net-device,netdev=ID[,mac=MAC][,id=NAME]`, with QEMU's errors;
//! NICs without `mac=` get QEMU's generated addresses.

use machine::kvm::{NicConfig, TapSource};
use virtio::net::Mac;

use super::opts::{self, Opts};
use super::CliError;

#[derive(Debug)]
struct Netdev {
    id: String,
    source: TapSource,
    location: String,
    taken: bool,
}

#[derive(Debug, Default)]
pub struct Netdevs {
    netdevs: Vec<Netdev>,
    nics: Vec<(NicConfig, Option<Mac>)>,
}

const FD_EXCLUDES: &str = "ifname=, script=, downscript=, vnet_hdr=, helper=, queues=, fds=, and vhostfds= are invalid with fd=";

/// A MAC in QEMU's spellings (`:` or `-` between six hex pairs).
fn parse_mac(text: &str) -> Option<Mac> {
    let parts: Vec<&str> = text.split([':', '-']).collect();
    let mut mac = [0u8; 6];
    if parts.len() != 6 {
        return None;
    }
    for (byte, part) in mac.iter_mut().zip(parts) {
        if part.len() != 2 {
            return None;
        }
        *byte = u8::from_str_radix(part, 16).ok()?;
    }
    Some(mac)
}

impl Netdevs {
    /// `-netdev`.
    pub fn netdev(&mut self, value: &str, location: &str) -> Result<(), CliError> {
        let fail = |message: String| CliError::at(location, message);
        let opts = opts::parse_keyval(value, "type", location)?;
        match opts.get("type") {
            Some("tap") => {}
            Some(
                other @ ("user" | "bridge" | "socket" | "stream" | "dgram" | "vde" | "l2tpv3"
                | "vhost-user" | "vhost-vdpa" | "hubport" | "netmap" | "af-xdp"),
            ) => {
                return Err(fail(format!(
                    "kvmon's netdevs are taps; '{other}' is not supported"
                )))
            }
            Some(other) => {
                return Err(fail(format!(
                    "Parameter 'type' does not accept value '{other}'"
                )))
            }
            None => return Err(fail("Parameter 'type' is missing".into())),
        }
        const KNOWN: &[&str] = &[
            "type",
            "id",
            "ifname",
            "fd",
            "script",
            "downscript",
            "vnet_hdr",
        ];
        if let Some(key) = opts.keys().find(|key| !KNOWN.contains(key)) {
            return Err(fail(format!("Invalid parameter '{key}'")));
        }
        let id = opts
            .get("id")
            .ok_or_else(|| fail("Parameter 'id' is missing".into()))?;
        if let Some(value) = opts.get("vnet_hdr") {
            if !opts::parse_bool("vnet_hdr", value).map_err(fail)? {
                return Err(fail(
                    "kvmon's taps carry the virtio-net header: vnet_hdr=off is not supported"
                        .into(),
                ));
            }
        }
        let source = match opts.get("fd") {
            Some(fd) => {
                if ["ifname", "script", "downscript", "vnet_hdr"]
                    .iter()
                    .any(|key| opts.has(key))
                {
                    return Err(fail(FD_EXCLUDES.into()));
                }
                let fd = fd
                    .parse::<i32>()
                    .ok()
                    .filter(|fd| *fd >= 0)
                    .ok_or_else(|| fail(format!("Invalid file descriptor number '{fd}'")))?;
                TapSource::Fd(fd)
            }
            None => {
                for key in ["script", "downscript"] {
                    if opts.get(key).is_some_and(|script| script != "no") {
                        return Err(fail(format!("kvmon runs no network scripts: use {key}=no")));
                    }
                }
                // As QEMU: a longer name is cut to what the kernel takes.
                let name: String = opts
                    .get("ifname")
                    .unwrap_or_default()
                    .chars()
                    .take(15)
                    .collect();
                TapSource::Name(name)
            }
        };
        if self.netdevs.iter().any(|netdev| netdev.id == id) {
            return Err(fail(format!("Duplicate ID '{id}' for netdev")));
        }
        self.netdevs.push(Netdev {
            id: id.to_string(),
            source,
            location: location.to_string(),
            taken: false,
        });
        Ok(())
    }

    /// `-device virtio-net-device,netdev=ID[,mac=MAC]`, at `qom_path`.
    pub fn device(
        &mut self,
        opts: &Opts,
        location: &str,
        qom_path: String,
    ) -> Result<(), CliError> {
        let fail = |message: String| CliError::at(location, message);
        opts.check_properties("virtio-net-device", &["netdev", "mac"], location)?;
        let mac = match opts.get("mac") {
            Some(text) => Some(parse_mac(text).ok_or_else(|| {
                fail(format!(
                    "Property 'virtio-net-device.mac' doesn't take value '{text}'"
                ))
            })?),
            None => None,
        };
        let Some(netdev_id) = opts.get("netdev") else {
            return Err(fail(
                "kvmon needs netdev= for each virtio-net-device".into(),
            ));
        };
        let Some(netdev) = self
            .netdevs
            .iter_mut()
            .find(|netdev| netdev.id == netdev_id)
        else {
            return Err(fail(format!(
                "Property 'virtio-net-device.netdev' can't find value '{netdev_id}'"
            )));
        };
        if netdev.taken {
            return Err(fail(format!(
                "Property 'virtio-net-device.netdev' can't take value '{netdev_id}', it's in use"
            )));
        }
        netdev.taken = true;
        // As QEMU names NICs: the id, else the model and how many NICs
        // came before.
        let name = match opts.get("id") {
            Some(id) => id.to_string(),
            None => format!("virtio-net-device.{}", self.nics.len()),
        };
        let nic = NicConfig {
            source: netdev.source.clone(),
            location: netdev.location.clone(),
            netdev: netdev_id.to_string(),
            mac: [0; 6],
            name,
            qom_path,
        };
        self.nics.push((nic, mac));
        Ok(())
    }

    /// The NICs, each with its MAC: QEMU's 52:54:00:12:34:XX from 0x56
    /// up for those without one, skipping the ones given.  A netdev no NIC
    /// took is warned about, as QEMU does.
    pub fn finish(self, warnings: &mut Vec<String>) -> Vec<NicConfig> {
        const PREFIX: [u8; 5] = [0x52, 0x54, 0x00, 0x12, 0x34];
        for netdev in self.netdevs.iter().filter(|netdev| !netdev.taken) {
            warnings.push(format!("netdev {} has no peer", netdev.id));
        }
        let mut used: Vec<u8> = Vec::new();
        self.nics
            .into_iter()
            .map(|(mut nic, mac)| {
                nic.mac = mac.unwrap_or_else(|| {
                    let last = (0x56..=0xfe)
                        .find(|byte| !used.contains(byte))
                        .unwrap_or(0xff);
                    [PREFIX[0], PREFIX[1], PREFIX[2], PREFIX[3], PREFIX[4], last]
                });
                if nic.mac[..5] == PREFIX {
                    used.push(nic.mac[5]);
                }
                nic
            })
            .collect()
    }
}
