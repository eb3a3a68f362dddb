//! The NICs' link and receive filter.

crate::qapi_command! {
    /// Sets the link status of a virtual network adapter.  The guest
    /// sees the change in the device's status and through an interrupt.
    "set_link" => pub struct SetLink {
        /// the device name of the virtual network adapter
        name: String,
        /// true to set the link status to be up
        up: bool,
    } -> ()
}

crate::qapi_enum! {
    /// Packets receiving state
    pub enum RxState {
        /// filter assigned packets according to the mac-table
        Normal = "normal",
        /// don't receive any assigned packet
        None = "none",
        /// receive all assigned packets
        All = "all",
    }
}

crate::qapi_struct! {
    /// Rx-filter information for a NIC.
    pub struct RxFilterInfo {
        /// net client name
        name: String,
        /// whether promiscuous mode is enabled
        promiscuous: bool,
        /// multicast receive state
        multicast: RxState,
        /// unicast receive state
        unicast: RxState,
        /// vlan receive state
        vlan: RxState,
        /// whether to receive broadcast
        broadcast_allowed = "broadcast-allowed": bool,
        /// multicast table is overflowed or not
        multicast_overflow = "multicast-overflow": bool,
        /// unicast table is overflowed or not
        unicast_overflow = "unicast-overflow": bool,
        /// the main macaddr string
        main_mac = "main-mac": String,
        /// a list of active vlan id
        vlan_table = "vlan-table": Vec<i64>,
        /// a list of unicast macaddr string
        unicast_table = "unicast-table": Vec<String>,
        /// a list of multicast macaddr string
        multicast_table = "multicast-table": Vec<String>,
    }
}

crate::qapi_command! {
    /// Return rx-filter information for all NICs (or for the given NIC).
    /// Querying a NIC lets its next filter change send
    /// NIC_RX_FILTER_CHANGED again.
    "query-rx-filter" => pub struct QueryRxFilter {
        /// net client name
        name: Option<String>,
    } -> Vec<RxFilterInfo>
}
