//! The memory balloon: the target size a guest is asked to shrink or grow
//! to, and the size it has.

crate::qapi_command! {
    /// Request the balloon driver to change its balloon size.  @value is
    /// the target logical size of the VM in bytes: the balloon's size is
    /// vm_ram_size - @value.  The guest may take time to get there, or
    /// not get there at all; BALLOON_CHANGE reports where it gets to.
    "balloon" => pub struct Balloon {
        /// the target logical size of the VM in bytes
        value: i64,
    } -> ()
}

crate::qapi_struct! {
    /// Information about the guest balloon device.
    pub struct BalloonInfo {
        /// the logical size of the VM in bytes.  Formula used:
        /// logical_vm_size = vm_ram_size - balloon_size
        actual: i64,
    }
}

crate::qapi_command! {
    /// Return information about the balloon device.  Fails with
    /// DeviceNotActive when there is no balloon.
    "query-balloon" => pub struct QueryBalloon {} -> BalloonInfo
}
