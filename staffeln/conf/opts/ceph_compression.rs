//! `[ceph_compression]`: compression of the Ceph pool Cinder backs up to,
//! read and set by `staffeln-manage ceph-compression show|apply`.

use super::{integer, string, unset_string};

options! {
    /// Ceph-level compression of the backup pool (Cinder's Ceph backup driver).
    /// Unset options leave the pool's property alone.
    group "ceph_compression" => CephCompressionOpts;

    /// The pool Cinder's Ceph backup driver writes to (Cinder's
    /// backup_ceph_pool).
    pool: String = string("backups");

    /// When BlueStore compresses the pool's data.
    mode: String = string("aggressive").choices(&[
        ("none", "Never compress."),
        ("passive", "Compress when the client hints that data is compressible."),
        ("aggressive", "Compress unless the client hints that data is incompressible."),
        ("force", "Always compress."),
    ]);

    /// Compression algorithm of the pool; the cluster default when unset.
    algorithm: Option<String> = unset_string().choices(&[
        ("snappy", ""),
        ("zlib", ""),
        ("zstd", ""),
        ("lz4", ""),
    ]);

    /// Keep a compressed chunk only if compressed size / original size is at
    /// most this ratio, a number in (0, 1]; the cluster default when unset.
    required_ratio: Option<String> = unset_string().regex(r"^(0?\.[0-9]+|0|1|1\.0*)$");

    /// Chunks smaller than this many bytes are not compressed.
    min_blob_size: Option<i64> = super::unset_integer().min(0);

    /// Chunks larger than this many bytes are split before compression.
    max_blob_size: Option<i64> = super::unset_integer().min(0);

    /// The ceph command line tool, a name looked up in PATH or a path.
    ceph_cli: String = string("ceph");

    /// The cluster's configuration file (the ceph tool's conf option).
    ceph_conf: Option<String> = unset_string();

    /// The cephx user without the client. prefix (the ceph tool's id option).
    ceph_id: Option<String> = unset_string();

    /// Seconds the ceph tool waits for the cluster (its connect-timeout
    /// option).
    connect_timeout: u32 = integer(30).min(1);
}
