//! Where each device goes in the QOM tree, as QEMU places them when it
//! creates them: under /machine/peripheral by its `id=` (which must be
//! unique), else numbered under /machine/peripheral-anon in the order the
//! devices are made (`-drive if=virtio` makes one too).

#[derive(Debug, Default)]
pub struct Peripherals {
    ids: Vec<String>,
    anonymous: usize,
}

impl Peripherals {
    /// The QOM path of a new device with `id`.
    pub fn place(&mut self, id: Option<&str>) -> Result<String, String> {
        match id {
            Some(id) if self.ids.iter().any(|used| used == id) => {
                Err(format!("Duplicate ID '{id}' for device"))
            }
            Some(id) => {
                self.ids.push(id.to_string());
                Ok(format!("/machine/peripheral/{id}"))
            }
            None => {
                self.anonymous += 1;
                Ok(format!(
                    "/machine/peripheral-anon/device[{}]",
                    self.anonymous - 1
                ))
            }
        }
    }
}
