//! What a [`FileOutbox`](super::FileOutbox) is opened with, and what
//! opening it reports: the fsync policy, the options, torn records, errors.

use std::io;
use std::path::PathBuf;

use super::format::VERSION;
#[cfg(doc)]
use super::{FileOutbox, Outbox};

/// When the log file is flushed to the storage device (`fdatasync`).
///
/// A crash of the process loses nothing under any policy: every record is
/// written to the file (the OS's page cache) before the call returns. The
/// policy decides what a power cut (or a kernel crash) can lose. Whatever
/// it loses, a torn record is detected and dropped at the next open, and a
/// corrupt message is never given back. All of this assumes a device that
/// honours flushes (no volatile write cache that lies).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FsyncPolicy {
    /// Every push is on the device before it returns: a power cut loses no
    /// message whose push returned. Sent and removed records are written at
    /// once and reach the device with the next push (or compaction): after
    /// a power cut, a message removed since the last push may come back and
    /// be sent again, and one marked sent since then may have forgotten its
    /// packet id (it is then sent as a new message). Both are duplicates,
    /// which QoS 1 allows. Costs one fsync per push.
    #[default]
    EveryRecord,
    /// An fsync after every `n`th push (0 counts as 1): a power cut may lose
    /// the last `n - 1` messages pushed.
    EveryN(u32),
    /// Never fsync; rely on the OS to write the file back (Linux does within
    /// about 30 s). A power cut may lose the messages pushed in that window,
    /// and, since the OS may write pages in any order, a part of the log
    /// written before them whose pages had not reached the device yet
    /// (replay stops at the first torn record). Compaction still fsyncs the
    /// file it renames over the log.
    Never,
}

/// How a [`FileOutbox`] is sized and flushed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileOutboxOptions {
    /// The most bytes the messages it holds may take (as counted by
    /// [`FileOutbox::needed`]). The messages are also kept in RAM (so
    /// [`Outbox::first`] does not read the file), so this bounds its RAM
    /// too. The file holds them and 15 bytes per message sent, and may grow
    /// to about twice that (or 4 KiB) before it is compacted.
    pub capacity_bytes: usize,
    /// When the file is flushed to the device.
    pub fsync: FsyncPolicy,
}

impl Default for FileOutboxOptions {
    /// 64 KiB, [`FsyncPolicy::EveryRecord`].
    fn default() -> Self {
        FileOutboxOptions {
            capacity_bytes: 64 * 1024,
            fsync: FsyncPolicy::EveryRecord,
        }
    }
}

/// What [`FileOutbox::open`] found in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OpenReport {
    /// Records replayed (of every kind, the header included).
    pub records: usize,
    /// Messages given back (pushed and not removed).
    pub messages: usize,
    /// A torn record that ended the replay, if one did.
    pub torn: Option<TornRecord>,
}

/// A torn record found by [`FileOutbox::open`]: the file was cut there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TornRecord {
    /// Where it began, in bytes from the start of the file.
    pub offset: u64,
    /// Bytes dropped from there to the end of the file.
    pub dropped_bytes: u64,
}

/// Why [`FileOutbox::open`] failed. Only [`OpenError::Io`] may come after
/// the file was changed (cut after a torn record); the others leave it as
/// it was.
#[derive(Debug)]
#[non_exhaustive]
pub enum OpenError {
    /// Opening, reading, cutting or flushing the file failed.
    Io {
        /// What was being done.
        operation: &'static str,
        /// The file (or its directory).
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// The file does not begin with an outbox header: not an outbox log.
    NotAnOutbox {
        /// The file.
        path: PathBuf,
    },
    /// The file is an outbox log of a format version this crate cannot read.
    UnsupportedVersion {
        /// The file.
        path: PathBuf,
        /// Its version.
        version: u8,
    },
    /// A record with a good checksum that makes no sense (a bug, or a file
    /// edited by hand).
    Invalid {
        /// The file.
        path: PathBuf,
        /// Where the record begins, in bytes from the start of the file.
        offset: u64,
        /// What is wrong with it.
        reason: &'static str,
    },
}

impl core::fmt::Display for OpenError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OpenError::Io {
                operation,
                path,
                source,
            } => write!(f, "cannot {operation} {}: {source}", path.display()),
            OpenError::NotAnOutbox { path } => write!(
                f,
                "{} is not an outbox file (it does not begin with an outbox header); left untouched",
                path.display()
            ),
            OpenError::UnsupportedVersion { path, version } => write!(
                f,
                "{} is an outbox file of format version {version}; this umqtt-robust reads version {VERSION}",
                path.display()
            ),
            OpenError::Invalid {
                path,
                offset,
                reason,
            } => write!(
                f,
                "the outbox file {} has an invalid record at byte {offset} ({reason}); left untouched",
                path.display()
            ),
        }
    }
}

impl core::error::Error for OpenError {
    fn source(&self) -> Option<&(dyn core::error::Error + 'static)> {
        match self {
            OpenError::Io { source, .. } => Some(source),
            _ => None,
        }
    }
}
