//! Yank: drop the connections of a chardev (or block node, or migration)
//! at once, without waiting for them to time out.

crate::qapi_enum! {
    /// An enumeration of yank instance types.
    pub enum YankInstanceType {
        BlockNode = "block-node",
        Chardev = "chardev",
        Migration = "migration",
    }
}

crate::qapi_struct! {
    /// The members every yank instance has besides its type.
    pub struct YankInstanceBase {}
}

crate::qapi_struct! {
    /// Specifies which block graph node to yank.
    pub struct YankInstanceBlockNode {
        /// the name of the block graph node
        node_name = "node-name": String,
    }
}

crate::qapi_struct! {
    /// Specifies which character device to yank.
    pub struct YankInstanceChardev {
        /// the chardev's ID
        id: String,
    }
}

crate::qapi_union! {
    /// A yank instance can be yanked with the yank qmp command to recover
    /// from a hanging QEMU.
    pub union YankInstance: YankInstanceBase,
    tag kind = "type": YankInstanceType => YankInstanceVariant {
        BlockNode(YankInstanceBlockNode),
        Chardev(YankInstanceChardev),
        Migration(()),
    }
}

crate::qapi_command! {
    /// Try to recover from hanging QEMU by yanking the specified instances:
    /// for a chardev, every connection it has is closed at once.
    "yank" (allow_oob) => pub struct Yank {
        /// the instances to be yanked
        instances: Vec<YankInstance>,
    } -> ()
}

crate::qapi_command! {
    /// Query yank instances.  See YankInstance for more information.
    "query-yank" (allow_oob) => pub struct QueryYank {} -> Vec<YankInstance>
}
