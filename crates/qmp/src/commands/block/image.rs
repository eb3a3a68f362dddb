//! What query-block says of an image: its format-specific details, as
//! QEMU 10 declares them.

crate::qapi_struct! {
    /// Information about a QEMU image file snapshot
    pub struct SnapshotInfo {
        /// unique snapshot id
        id: String,
        /// user chosen name
        name: String,
        /// size of the VM state
        vm_state_size = "vm-state-size": i64,
        /// UTC date of the snapshot in seconds
        date_sec = "date-sec": i64,
        /// fractional part in nano seconds to be used with date-sec
        date_nsec = "date-nsec": i64,
        /// VM clock relative to boot in seconds
        vm_clock_sec = "vm-clock-sec": i64,
        /// fractional part in nano seconds to be used with vm-clock-sec
        vm_clock_nsec = "vm-clock-nsec": i64,
        /// current instruction count
        icount: Option<i64>,
    }
}

crate::qapi_enum! {
    /// The supported cipher algorithms
    pub enum QCryptoCipherAlgo {
        Aes128 = "aes-128",
        Aes192 = "aes-192",
        Aes256 = "aes-256",
        Des = "des",
        TripleDes = "3des",
        Cast5128 = "cast5-128",
        Serpent128 = "serpent-128",
        Serpent192 = "serpent-192",
        Serpent256 = "serpent-256",
        Twofish128 = "twofish-128",
        Twofish192 = "twofish-192",
        Twofish256 = "twofish-256",
        Sm4 = "sm4",
    }
}

crate::qapi_enum! {
    /// The supported modes for content encryption
    pub enum QCryptoCipherMode {
        Ecb = "ecb",
        Cbc = "cbc",
        Xts = "xts",
        Ctr = "ctr",
    }
}

crate::qapi_enum! {
    /// The supported algorithms for generating initialization vectors
    pub enum QCryptoIvGenAlgo {
        Plain = "plain",
        Plain64 = "plain64",
        Essiv = "essiv",
    }
}

crate::qapi_enum! {
    /// The supported algorithms for computing content digests
    pub enum QCryptoHashAlgo {
        Md5 = "md5",
        Sha1 = "sha1",
        Sha224 = "sha224",
        Sha256 = "sha256",
        Sha384 = "sha384",
        Sha512 = "sha512",
        Ripemd160 = "ripemd160",
        Sm3 = "sm3",
    }
}

crate::qapi_struct! {
    /// Information about the LUKS block encryption key slot options
    pub struct QCryptoBlockInfoLUKSSlot {
        /// whether the key slot is currently in use
        active: bool,
        /// number of PBKDF2 iterations for key material
        iters: Option<i64>,
        /// number of stripes for splitting key material
        stripes: Option<i64>,
        /// offset to the key material in bytes
        key_offset = "key-offset": i64,
    }
}

crate::qapi_struct! {
    /// Information about the LUKS block encryption options
    pub struct QCryptoBlockInfoLUKS {
        /// the cipher algorithm for data encryption
        cipher_alg = "cipher-alg": QCryptoCipherAlgo,
        /// the cipher mode for data encryption
        cipher_mode = "cipher-mode": QCryptoCipherMode,
        /// the initialization vector generator
        ivgen_alg = "ivgen-alg": QCryptoIvGenAlgo,
        /// the initialization vector generator hash
        ivgen_hash_alg = "ivgen-hash-alg": Option<QCryptoHashAlgo>,
        /// the master key hash algorithm
        hash_alg = "hash-alg": QCryptoHashAlgo,
        /// whether the LUKS header is detached
        detached_header = "detached-header": bool,
        /// offset to the payload data in bytes
        payload_offset = "payload-offset": i64,
        /// number of PBKDF2 iterations for key material
        master_key_iters = "master-key-iters": i64,
        /// unique identifier for the volume
        uuid: String,
        /// information about each key slot
        slots: Vec<QCryptoBlockInfoLUKSSlot>,
    }
}

crate::qapi_enum! {
    /// The supported qcow2 encryption formats
    pub enum BlockdevQcow2EncryptionFormat {
        Aes = "aes",
        Luks = "luks",
    }
}

crate::qapi_struct! {
    /// The members every qcow2 encryption description has besides its format.
    pub struct ImageInfoSpecificQCow2EncryptionBase {}
}

crate::qapi_union! {
    /// The encryption of a qcow2 image
    pub union ImageInfoSpecificQCow2Encryption: ImageInfoSpecificQCow2EncryptionBase,
    tag format = "format": BlockdevQcow2EncryptionFormat => ImageInfoSpecificQCow2EncryptionVariant {
        Luks(QCryptoBlockInfoLUKS),
        Aes(()),
    }
}

crate::qapi_enum! {
    /// An enumeration of flags that a bitmap can report to the user.
    pub enum Qcow2BitmapInfoFlags {
        /// This flag is set by any process actively modifying the qcow2 file
        InUse = "in-use",
        /// The bitmap must reflect all changes of the virtual disk
        Auto = "auto",
    }
}

crate::qapi_struct! {
    /// Qcow2 bitmap information.
    pub struct Qcow2BitmapInfo {
        /// the name of the bitmap
        name: String,
        /// granularity of the bitmap in bytes
        granularity: i64,
        /// flags of the bitmap
        flags: Vec<Qcow2BitmapInfoFlags>,
    }
}

crate::qapi_enum! {
    /// Compression type used in qcow2 image file
    pub enum Qcow2CompressionType {
        /// zlib compression
        Zlib = "zlib",
        /// zstd compression
        Zstd = "zstd",
    }
}

crate::qapi_struct! {
    /// Information about a qcow2 image
    pub struct ImageInfoSpecificQCow2 {
        /// compatibility level
        compat: String,
        /// the filename of the external data file
        data_file = "data-file": Option<String>,
        /// true if the external data file must stay valid as a raw image
        data_file_raw = "data-file-raw": Option<bool>,
        /// true if the image uses extended L2 entries
        extended_l2 = "extended-l2": Option<bool>,
        /// on or off; only valid for compat >= 1.1
        lazy_refcounts = "lazy-refcounts": Option<bool>,
        /// true if the image has been marked corrupt
        corrupt: Option<bool>,
        /// width of a refcount entry in bits
        refcount_bits = "refcount-bits": i64,
        /// details about encryption parameters
        encrypt: Option<ImageInfoSpecificQCow2Encryption>,
        /// A list of qcow2 bitmap details
        bitmaps: Option<Vec<Qcow2BitmapInfo>>,
        /// the image cluster compression method
        compression_type = "compression-type": Qcow2CompressionType,
    }
}

crate::qapi_struct! {
    /// Information about a VMDK extent or image
    pub struct VmdkExtentInfo {
        /// Name of the extent file
        filename: String,
        /// Extent type (e.g. FLAT or SPARSE)
        format: String,
        /// Number of bytes covered by this extent
        virtual_size = "virtual-size": i64,
        /// Cluster size in bytes (for non-flat extents)
        cluster_size = "cluster-size": Option<i64>,
        /// Whether this extent contains compressed data
        compressed: Option<bool>,
    }
}

crate::qapi_struct! {
    /// Information about a VMDK image
    pub struct ImageInfoSpecificVmdk {
        /// The create type of VMDK image
        create_type = "create-type": String,
        /// Content id of image
        cid: i64,
        /// Parent VMDK image's cid
        parent_cid = "parent-cid": i64,
        /// List of extent files
        extents: Vec<VmdkExtentInfo>,
    }
}

crate::qapi_enum! {
    /// The encryption formats of an RBD image
    pub enum RbdImageEncryptionFormat {
        Luks = "luks",
        Luks2 = "luks2",
        LuksAny = "luks-any",
    }
}

crate::qapi_struct! {
    /// Information about an RBD image
    pub struct ImageInfoSpecificRbd {
        /// Image encryption format
        encryption_format = "encryption-format": Option<RbdImageEncryptionFormat>,
    }
}

crate::qapi_struct! {
    /// Information about a file image
    pub struct ImageInfoSpecificFile {
        /// Extent size hint (if available)
        extent_size_hint = "extent-size-hint": Option<i64>,
    }
}

crate::qapi_struct! {
    /// A qcow2 image's details.
    pub struct ImageInfoSpecificQCow2Wrapper {
        /// image information specific to QCOW2
        data: ImageInfoSpecificQCow2,
    }
}

crate::qapi_struct! {
    /// A VMDK image's details.
    pub struct ImageInfoSpecificVmdkWrapper {
        /// image information specific to VMDK
        data: ImageInfoSpecificVmdk,
    }
}

crate::qapi_struct! {
    /// A LUKS image's details.
    pub struct ImageInfoSpecificLUKSWrapper {
        /// image information specific to LUKS
        data: QCryptoBlockInfoLUKS,
    }
}

crate::qapi_struct! {
    /// An RBD image's details.
    pub struct ImageInfoSpecificRbdWrapper {
        /// image information specific to RBD
        data: ImageInfoSpecificRbd,
    }
}

crate::qapi_struct! {
    /// A file image's details.
    pub struct ImageInfoSpecificFileWrapper {
        /// image information specific to files
        data: ImageInfoSpecificFile,
    }
}

crate::qapi_enum! {
    /// The kinds of format-specific image information.
    pub enum ImageInfoSpecificKind {
        Qcow2 = "qcow2",
        Vmdk = "vmdk",
        Luks = "luks",
        Rbd = "rbd",
        File = "file",
    }
}

crate::qapi_struct! {
    /// The members every format-specific description has besides its type.
    pub struct ImageInfoSpecificBase {}
}

crate::qapi_union! {
    /// A discriminated record of image format specific information
    /// structures.
    pub union ImageInfoSpecific: ImageInfoSpecificBase,
    tag kind = "type": ImageInfoSpecificKind => ImageInfoSpecificVariant {
        Qcow2(ImageInfoSpecificQCow2Wrapper),
        Vmdk(ImageInfoSpecificVmdkWrapper),
        Luks(ImageInfoSpecificLUKSWrapper),
        Rbd(ImageInfoSpecificRbdWrapper),
        File(ImageInfoSpecificFileWrapper),
    }
}

crate::qapi_struct! {
    /// Information about a QEMU image file, and potentially its backing
    /// image
    pub struct ImageInfo {
        /// name of the image file
        filename: String,
        /// format of the image file
        format: String,
        /// true if image is not cleanly closed
        dirty_flag = "dirty-flag": Option<bool>,
        /// actual size on disk in bytes of the image
        actual_size = "actual-size": Option<i64>,
        /// maximum capacity in bytes of the image
        virtual_size = "virtual-size": i64,
        /// size of a cluster in bytes
        cluster_size = "cluster-size": Option<i64>,
        /// true if the image is encrypted
        encrypted: Option<bool>,
        /// true if the image is compressed
        compressed: Option<bool>,
        /// name of the backing file
        backing_filename = "backing-filename": Option<String>,
        /// full path of the backing file
        full_backing_filename = "full-backing-filename": Option<String>,
        /// the format of the backing file
        backing_filename_format = "backing-filename-format": Option<String>,
        /// list of VM snapshots
        snapshots: Option<Vec<SnapshotInfo>>,
        /// structure supplying additional format-specific information
        format_specific = "format-specific": Option<ImageInfoSpecific>,
        /// info of the backing image
        backing_image = "backing-image": Option<Box<ImageInfo>>,
    }
}
