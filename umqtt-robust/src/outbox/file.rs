//! [`FileOutbox`]: the outbox in an append-only log file (feature `std`);
//! its format is described on the type.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::vec::Vec;

use super::record::{
    FRAME_OVERHEAD, Unframed, frame, message_len, read_message, unframe, write_message,
};
use super::{Outbox, OutboxError, Queued};

const KIND_HEADER: u8 = 0;
const KIND_MESSAGE: u8 = 1;
const KIND_SENT: u8 = 2;
const KIND_REMOVED: u8 = 3;
const MAGIC: [u8; 4] = *b"UMQO";
const VERSION: u8 = 1;

/// A header's body: kind, magic, version, next sequence number.
const HEADER_BODY: usize = 1 + 4 + 1 + 4;
const HEADER_FRAME: usize = FRAME_OVERHEAD + HEADER_BODY;
/// A record's kind and sequence number.
const RECORD_HEAD: usize = 1 + 4;
const SENT_FRAME: usize = FRAME_OVERHEAD + RECORD_HEAD + 2;
/// Below this, a log is never rewritten (only truncated once empty).
const COMPACT_MIN: u64 = 4096;

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

/// An outbox in an append-only log file: messages accepted are kept across
/// outages, a crash of the process and, with [`FsyncPolicy::EveryRecord`]
/// (the default), a power cut.
///
/// The messages it holds are also kept in RAM (at most `capacity_bytes` of
/// them), so [`Outbox::first`] and [`Outbox::next_after`] never read the
/// file. One `FileOutbox` per file at a time: the file is not locked.
///
/// After a storage failure that may have left the file in doubt (an fsync
/// that failed, or a write that could not be undone), every change is
/// refused with [`OutboxError::Storage`]; open the file again to carry on
/// from what it really holds.
///
/// # The file
/// One checksummed frame per record (length of the frame u32 LE, body,
/// CRC-32 of length and body, LE), written one after the other and never
/// changed in place. A frame's body starts with its kind:
///
/// | kind | rest of the body | written by |
/// |------|------------------|------------|
/// | 0 header | `UMQO`, format version (1), next sequence number (u32 LE) | the first push into an empty file; compaction |
/// | 1 message | sequence number (u32 LE), the message (flags, topic length u16 LE, topic, payload) | [`Outbox::push`] |
/// | 2 sent | sequence number, packet id (u16 LE) | [`Outbox::mark_sent`] |
/// | 3 removed | sequence number | [`Outbox::remove`] |
///
/// Opening the file replays it: what was pushed and not removed comes back,
/// with the packet id of its last sent record. A frame cut short or with a
/// bad checksum (a write cut by a crash or a power cut) ends the replay: it
/// is reported ([`FileOutbox::open_report`], and a warning in the log), the
/// file is cut there, and nothing after it is trusted.
///
/// The log is kept small: when the last message is removed the file is
/// truncated to nothing, and when more than half of a file over 4 KiB is
/// dead (removed messages, superseded sent records) the live records are
/// written to `<path>.compact`, fsynced and renamed over the log.
///
/// # Example
/// ```
/// use umqtt_robust::outbox::{FileOutbox, FileOutboxOptions, Outbox, Queued};
/// use umqtt_simple::QoS;
///
/// let dir = std::env::temp_dir().join(format!("umqtt-doc-{}", std::process::id()));
/// std::fs::create_dir_all(&dir)?;
/// let path = dir.join("outbox.log");
///
/// let mut outbox = FileOutbox::open(&path, FileOutboxOptions::default())?;
/// let seq = outbox.push(&Queued::new(b"sensors/1", b"21.5", QoS::AtLeastOnce, false))?;
/// outbox.mark_sent(seq, 7)?;
/// drop(outbox); // a crash, a power cut, a restart...
///
/// let mut outbox = FileOutbox::open(&path, FileOutboxOptions::default())?;
/// let message = outbox.first().expect("kept across the restart");
/// assert_eq!((message.payload, message.packet_id), (&b"21.5"[..], Some(7)));
/// outbox.remove(seq)?; // its PUBACK came
/// assert!(outbox.is_empty());
/// assert_eq!(outbox.file_len(), 0);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct FileOutbox {
    path: PathBuf,
    file: File,
    options: FileOutboxOptions,
    /// The messages held, by sequence number.
    live: BTreeMap<u32, Live>,
    /// What they count against the capacity.
    live_bytes: usize,
    /// Bytes their records take in the log (messages and sent records).
    live_log: u64,
    /// Where the next record goes.
    file_len: u64,
    next_seq: u32,
    /// Pushes since the last fsync.
    unsynced: u32,
    /// A compaction renamed a new log over the old one and the rename is
    /// not known to be durable yet (fsync of the directory to retry).
    rename_unsynced: bool,
    /// After a compaction failed: not tried again before the log is this
    /// long (so a full disk does not make every removal rewrite the log).
    compact_after: u64,
    /// A failure left the file in doubt: changes are refused.
    poisoned: bool,
    report: OpenReport,
    /// Scratch for a record's body and its frames, kept to reuse.
    body: Vec<u8>,
    out: Vec<u8>,
}

/// A message held: its bytes as [`write_message`] lays them out.
struct Live {
    message: Vec<u8>,
    packet_id: Option<u16>,
}

impl Live {
    fn queued(&self, seq: u32) -> Option<Queued<'_>> {
        read_message(&self.message, seq, self.packet_id)
    }

    /// Bytes its message record takes in the log.
    fn frame_len(&self) -> u64 {
        (FRAME_OVERHEAD + RECORD_HEAD + self.message.len()) as u64
    }

    /// What it counts against the capacity.
    fn needed(&self) -> usize {
        FRAME_OVERHEAD + RECORD_HEAD + self.message.len()
    }

    /// Bytes its records (message, sent) take in the log.
    fn log_len(&self) -> u64 {
        self.frame_len()
            + if self.packet_id.is_some() {
                SENT_FRAME as u64
            } else {
                0
            }
    }
}

impl FileOutbox {
    /// Opens the outbox log at `path` (created if missing) and replays it.
    ///
    /// A torn record ends the replay: the file is cut there, the cut is
    /// logged and reported by [`FileOutbox::open_report`]. A file that is
    /// not an outbox log, or holds a record that makes no sense, is refused
    /// and left untouched. Messages beyond `capacity_bytes` are all kept
    /// (pushes are refused until they drain).
    pub fn open(path: impl AsRef<Path>, options: FileOutboxOptions) -> Result<Self, OpenError> {
        let path = path.as_ref().to_path_buf();
        let io_error = |operation, path: &Path| {
            let path = path.to_path_buf();
            move |source| OpenError::Io {
                operation,
                path,
                source,
            }
        };
        let temp = temp_path(&path);
        match fs::remove_file(&temp) {
            Ok(()) => log::warn!(
                "outbox {}: removed an unfinished compaction",
                temp.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(io_error("remove the unfinished compaction", &temp)(e)),
        }
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(io_error("open", &path))?;
        if options.fsync != FsyncPolicy::Never {
            // The file may have just been created: make its name durable.
            sync_dir(&path).map_err(io_error("fsync the directory of", &path))?;
        }
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)
            .map_err(io_error("read", &path))?;
        let replayed = replay(&bytes).map_err(|e| e.at(&path))?;
        drop(bytes);
        if let Some(torn) = replayed.report.torn {
            log::warn!(
                "outbox {}: a torn record at byte {} (a write cut short by a crash or power cut); \
                 dropped it and the {} bytes from there to the end",
                path.display(),
                torn.offset,
                torn.dropped_bytes
            );
            file.set_len(torn.offset)
                .and_then(|()| file.sync_all())
                .map_err(io_error("cut the torn record from", &path))?;
        }
        let live_bytes = replayed.live.values().map(Live::needed).sum();
        if live_bytes > options.capacity_bytes {
            log::warn!(
                "outbox {}: holds {live_bytes} bytes of messages, over its capacity of {}; \
                 pushes are refused until they drain",
                path.display(),
                options.capacity_bytes
            );
        }
        let mut outbox = FileOutbox {
            live_log: replayed.live.values().map(Live::log_len).sum(),
            live_bytes,
            live: replayed.live,
            file_len: replayed.good_len as u64,
            next_seq: replayed.next_seq,
            report: replayed.report,
            path,
            file,
            options,
            unsynced: 0,
            rename_unsynced: false,
            compact_after: 0,
            poisoned: false,
            body: Vec::new(),
            out: Vec::new(),
        };
        outbox.maybe_compact();
        Ok(outbox)
    }

    /// Bytes a push of `message` counts against `capacity_bytes`: its
    /// record in the log, 16 bytes beyond its topic and payload (within
    /// [`RECORD_OVERHEAD`](super::RECORD_OVERHEAD)).
    pub fn needed(message: &Queued<'_>) -> usize {
        FRAME_OVERHEAD + RECORD_HEAD + message_len(message)
    }

    /// What opening the file found (records, messages, a torn record).
    pub fn open_report(&self) -> &OpenReport {
        &self.report
    }

    /// The log file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The log file's length now, in bytes.
    pub fn file_len(&self) -> u64 {
        self.file_len
    }

    /// Flushes everything written so far to the device (whatever the
    /// policy), e.g. before a planned shutdown under [`FsyncPolicy::Never`].
    pub fn sync(&mut self) -> Result<(), OutboxError> {
        self.usable()?;
        if let Err(e) = self.flush() {
            self.failed("fsync", &e);
            self.poisoned = true;
            return Err(OutboxError::Storage);
        }
        Ok(())
    }

    /// fsyncs the log (and its directory, after a compaction whose rename
    /// is not yet durable: until it is, a power cut could bring the old log
    /// back without what was pushed since).
    fn flush(&mut self) -> Result<(), io::Error> {
        self.file.sync_data()?;
        if self.rename_unsynced {
            sync_dir(&self.path)?;
            self.rename_unsynced = false;
        }
        self.unsynced = 0;
        Ok(())
    }

    fn usable(&self) -> Result<(), OutboxError> {
        if self.poisoned {
            log::error!(
                "outbox {}: refusing changes after an earlier storage failure; open it again",
                self.path.display()
            );
            return Err(OutboxError::Storage);
        }
        Ok(())
    }

    fn failed(&self, operation: &str, error: &io::Error) {
        log::error!(
            "outbox {}: {operation} failed: {error}",
            self.path.display()
        );
    }

    /// Whether the push about to be written is to be fsynced.
    fn sync_this_push(&self) -> bool {
        match self.options.fsync {
            FsyncPolicy::EveryRecord => true,
            FsyncPolicy::EveryN(n) => self.unsynced.saturating_add(1) >= n.max(1),
            FsyncPolicy::Never => false,
        }
    }

    /// Appends `self.out` to the log, fsynced if `sync`. On failure the
    /// log is cut back to where it was (or, if that fails too, or the
    /// fsync failed, the outbox refuses changes from then on).
    fn append(&mut self, sync: bool) -> Result<(), OutboxError> {
        let at = self.file_len;
        let written = self
            .file
            .seek(SeekFrom::Start(at))
            .and_then(|_| self.file.write_all(&self.out));
        if let Err(e) = written {
            self.failed("append a record", &e);
            self.cut_back(at);
            return Err(OutboxError::Storage);
        }
        if sync && let Err(e) = self.flush() {
            // What reached the device, before this record too, is in
            // doubt: only a fresh replay can tell.
            self.failed("fsync", &e);
            self.cut_back(at);
            self.poisoned = true;
            return Err(OutboxError::Storage);
        }
        self.file_len = at + self.out.len() as u64;
        Ok(())
    }

    fn cut_back(&mut self, len: u64) {
        if let Err(e) = self.file.set_len(len) {
            self.failed("cut a failed write back", &e);
            self.poisoned = true;
        }
    }

    /// Fills `self.out` with the frame of a record: `kind`, `seq`, then
    /// `rest` written by the closure (`rest_len` bytes); with a header
    /// before it if the log is empty.
    fn prepare(
        &mut self,
        kind: u8,
        seq: u32,
        rest_len: usize,
        rest: impl FnOnce(&mut [u8]) -> Result<(), OutboxError>,
    ) -> Result<(), OutboxError> {
        self.body.clear();
        self.body.push(kind);
        self.body.extend_from_slice(&seq.to_le_bytes());
        self.body.resize(RECORD_HEAD + rest_len, 0);
        rest(self.body.get_mut(RECORD_HEAD..).unwrap_or_default())?;
        self.out.clear();
        if self.file_len == 0 {
            push_frame(&mut self.out, &header(self.next_seq))?;
        }
        push_frame(&mut self.out, &self.body)
    }

    /// Truncates the log to nothing (no message left).
    fn truncate(&mut self) -> Result<(), io::Error> {
        self.file.set_len(0)?;
        self.file_len = 0;
        Ok(())
    }

    /// Truncates or rewrites the log if it is mostly dead (failures are
    /// logged: the old log is still whole).
    fn maybe_compact(&mut self) {
        if self.poisoned || self.file_len == 0 {
            return;
        }
        if self.live.is_empty() {
            if let Err(e) = self.truncate() {
                self.failed("truncate the empty log", &e);
            }
            return;
        }
        let dead = self
            .file_len
            .saturating_sub(HEADER_FRAME as u64 + self.live_log);
        if self.file_len > COMPACT_MIN.max(self.compact_after)
            && dead > self.file_len / 2
            && let Err(e) = self.compact()
        {
            self.failed("compaction", &e);
            self.compact_after = self.file_len + self.file_len / 2;
        }
    }

    /// Writes the live records to a new file, fsyncs it and renames it
    /// over the log.
    fn compact(&mut self) -> Result<(), io::Error> {
        let temp = temp_path(&self.path);
        let written = self.write_compacted(&temp);
        let (file, len) = match written {
            Ok(done) => done,
            Err(e) => {
                let _ = fs::remove_file(&temp);
                return Err(e);
            }
        };
        if let Err(e) = fs::rename(&temp, &self.path) {
            let _ = fs::remove_file(&temp);
            return Err(e);
        }
        // The path names the new file now, whatever follows.
        self.file = file;
        self.file_len = len;
        self.unsynced = 0;
        self.compact_after = 0;
        log::debug!(
            "outbox {}: compacted to {len} bytes ({} messages)",
            self.path.display(),
            self.live.len()
        );
        if let Err(e) = sync_dir(&self.path) {
            log::warn!(
                "outbox {}: fsync of its directory after compaction failed ({e}); \
                 retried with the next fsync",
                self.path.display()
            );
            self.rename_unsynced = true;
        }
        Ok(())
    }

    fn write_compacted(&mut self, temp: &Path) -> Result<(File, u64), io::Error> {
        let too_large = || io::Error::other("a record too large to frame");
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(temp)?;
        let mut len = 0u64;
        let mut writer = BufWriter::new(&mut file);
        let mut out = core::mem::take(&mut self.out);
        out.clear();
        push_frame(&mut out, &header(self.next_seq)).map_err(|_| too_large())?;
        writer.write_all(&out)?;
        len += out.len() as u64;
        for (seq, live) in &self.live {
            out.clear();
            self.body.clear();
            self.body.push(KIND_MESSAGE);
            self.body.extend_from_slice(&seq.to_le_bytes());
            self.body.extend_from_slice(&live.message);
            push_frame(&mut out, &self.body).map_err(|_| too_large())?;
            if let Some(id) = live.packet_id {
                push_frame(&mut out, &sent_body(*seq, id)).map_err(|_| too_large())?;
            }
            writer.write_all(&out)?;
            len += out.len() as u64;
        }
        self.out = out;
        writer.flush()?;
        drop(writer);
        file.sync_all()?;
        Ok((file, len))
    }
}

impl Outbox for FileOutbox {
    fn push(&mut self, message: &Queued<'_>) -> Result<u32, OutboxError> {
        self.usable()?;
        let needed = Self::needed(message);
        let capacity = self.options.capacity_bytes;
        if needed > capacity {
            return Err(OutboxError::TooLarge { needed, capacity });
        }
        let free = capacity.saturating_sub(self.live_bytes);
        if needed > free {
            return Err(OutboxError::Full { needed, free });
        }
        let seq = self.next_seq;
        self.prepare(KIND_MESSAGE, seq, message_len(message), |out| {
            write_message(out, message).map(|_| ())
        })?;
        let sync = self.sync_this_push();
        self.append(sync)?;
        if !sync {
            self.unsynced = self.unsynced.saturating_add(1);
        }
        let live = Live {
            message: self.body.get(RECORD_HEAD..).unwrap_or_default().to_vec(),
            packet_id: None,
        };
        self.live_bytes += live.needed();
        self.live_log += live.log_len();
        self.live.insert(seq, live);
        self.next_seq = seq.wrapping_add(1).max(1);
        Ok(seq)
    }

    fn first(&self) -> Option<Queued<'_>> {
        let (seq, live) = self.live.iter().next()?;
        live.queued(*seq)
    }

    fn next_after(&self, seq: u32) -> Option<Queued<'_>> {
        let (seq, live) = self
            .live
            .range((Bound::Excluded(seq), Bound::Unbounded))
            .next()?;
        live.queued(*seq)
    }

    fn mark_sent(&mut self, seq: u32, packet_id: u16) -> Result<(), OutboxError> {
        let before = self
            .live
            .get(&seq)
            .ok_or(OutboxError::UnknownSeq(seq))?
            .packet_id;
        if before == Some(packet_id) {
            // A resend under the same id: already recorded.
            return Ok(());
        }
        self.usable()?;
        self.prepare(KIND_SENT, seq, 2, |out| {
            out.copy_from_slice(&packet_id.to_le_bytes());
            Ok(())
        })?;
        self.append(false)?;
        if let Some(live) = self.live.get_mut(&seq) {
            live.packet_id = Some(packet_id);
        }
        if before.is_none() {
            self.live_log += SENT_FRAME as u64;
        }
        self.maybe_compact();
        Ok(())
    }

    fn remove(&mut self, seq: u32) -> Result<(), OutboxError> {
        if !self.live.contains_key(&seq) {
            return Err(OutboxError::UnknownSeq(seq));
        }
        self.usable()?;
        let last = self.live.len() == 1;
        let truncated = last
            && self
                .truncate()
                .inspect_err(|e| self.failed("truncate the empty log", e))
                .is_ok();
        if !truncated {
            self.prepare(KIND_REMOVED, seq, 0, |_| Ok(()))?;
            self.append(false)?;
        }
        if let Some(live) = self.live.remove(&seq) {
            self.live_bytes = self.live_bytes.saturating_sub(live.needed());
            self.live_log = self.live_log.saturating_sub(live.log_len());
        }
        self.maybe_compact();
        Ok(())
    }

    fn len(&self) -> usize {
        self.live.len()
    }
}

impl core::fmt::Debug for FileOutbox {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("FileOutbox")
            .field("path", &self.path)
            .field("messages", &self.live.len())
            .field("live_bytes", &self.live_bytes)
            .field("file_len", &self.file_len)
            .field("next_seq", &self.next_seq)
            .field("options", &self.options)
            .field("poisoned", &self.poisoned)
            .finish()
    }
}

fn header(next_seq: u32) -> [u8; HEADER_BODY] {
    let [m0, m1, m2, m3] = MAGIC;
    let [s0, s1, s2, s3] = next_seq.to_le_bytes();
    [KIND_HEADER, m0, m1, m2, m3, VERSION, s0, s1, s2, s3]
}

fn sent_body(seq: u32, packet_id: u16) -> [u8; RECORD_HEAD + 2] {
    let [s0, s1, s2, s3] = seq.to_le_bytes();
    let [p0, p1] = packet_id.to_le_bytes();
    [KIND_SENT, s0, s1, s2, s3, p0, p1]
}

/// Appends the frame of `body` to `out`.
fn push_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<(), OutboxError> {
    let start = out.len();
    let len = body.len() + FRAME_OVERHEAD;
    out.resize(start + len, 0);
    let framed = out.get_mut(start..).and_then(|slot| frame(slot, body));
    if framed.is_none() {
        out.truncate(start);
        return Err(OutboxError::TooLarge {
            needed: len,
            capacity: u32::MAX as usize,
        });
    }
    Ok(())
}

/// `<path>.compact`, where compaction writes the new log.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(".compact");
    PathBuf::from(name)
}

/// Makes a file's creation, or a rename onto it, durable (on Unix, where a
/// directory can be fsynced).
fn sync_dir(path: &Path) -> Result<(), io::Error> {
    #[cfg(unix)]
    {
        let dir = match path.parent() {
            Some(dir) if !dir.as_os_str().is_empty() => dir,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// What replaying a log found.
struct Replayed {
    live: BTreeMap<u32, Live>,
    next_seq: u32,
    /// Bytes up to the end of the last good record.
    good_len: usize,
    report: OpenReport,
}

/// Why a log could not be replayed (the path is added by
/// [`ReplayError::at`]).
#[derive(Debug, PartialEq, Eq)]
enum ReplayError {
    NotAnOutbox,
    UnsupportedVersion(u8),
    Invalid { offset: usize, reason: &'static str },
}

impl ReplayError {
    fn at(self, path: &Path) -> OpenError {
        let path = path.to_path_buf();
        match self {
            ReplayError::NotAnOutbox => OpenError::NotAnOutbox { path },
            ReplayError::UnsupportedVersion(version) => {
                OpenError::UnsupportedVersion { path, version }
            }
            ReplayError::Invalid { offset, reason } => OpenError::Invalid {
                path,
                offset: offset as u64,
                reason,
            },
        }
    }
}

/// Replays the log in `bytes`, up to its end or its first torn record.
fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed {
        live: BTreeMap::new(),
        next_seq: 1,
        good_len: 0,
        report: OpenReport::default(),
    };
    let mut offset = match unframe(bytes) {
        Unframed::End => return Ok(replayed),
        Unframed::Torn if torn_header(bytes) => {
            replayed.torn_at(0, bytes.len());
            return Ok(replayed);
        }
        Unframed::Torn => return Err(ReplayError::NotAnOutbox),
        Unframed::Frame(body, len) => {
            replayed.next_seq = read_header(body)?;
            replayed.report.records = 1;
            len
        }
    };
    loop {
        match unframe(bytes.get(offset..).unwrap_or_default()) {
            Unframed::End => break,
            Unframed::Torn => {
                replayed.torn_at(offset, bytes.len());
                break;
            }
            Unframed::Frame(body, len) => {
                replayed
                    .apply(body)
                    .map_err(|reason| ReplayError::Invalid { offset, reason })?;
                replayed.report.records += 1;
                offset += len;
            }
        }
    }
    replayed.good_len = offset;
    replayed.report.messages = replayed.live.len();
    Ok(replayed)
}

/// Whether a log whose first frame is torn is the beginning of an outbox
/// log cut short (its bytes so far agree with a header's, or are zeros, as
/// a file extended but not written reads after a power cut), rather than
/// some other file.
fn torn_header(bytes: &[u8]) -> bool {
    let [l0, l1, l2, l3] = (HEADER_FRAME as u32).to_le_bytes();
    let [m0, m1, m2, m3] = MAGIC;
    let prefix = [l0, l1, l2, l3, KIND_HEADER, m0, m1, m2, m3, VERSION];
    bytes.iter().zip(prefix).all(|(&a, b)| a == b) || bytes.iter().all(|&b| b == 0)
}

/// The next sequence number a header holds.
fn read_header(body: &[u8]) -> Result<u32, ReplayError> {
    let Some((&[kind, m0, m1, m2, m3, version], rest)) = body.split_first_chunk::<6>() else {
        return Err(ReplayError::NotAnOutbox);
    };
    if kind != KIND_HEADER || [m0, m1, m2, m3] != MAGIC {
        return Err(ReplayError::NotAnOutbox);
    }
    if version != VERSION {
        return Err(ReplayError::UnsupportedVersion(version));
    }
    match rest {
        &[s0, s1, s2, s3] => Ok(u32::from_le_bytes([s0, s1, s2, s3])),
        _ => Err(ReplayError::Invalid {
            offset: 0,
            reason: "a header of the wrong length",
        }),
    }
}

impl Replayed {
    fn torn_at(&mut self, offset: usize, end: usize) {
        self.good_len = offset;
        self.report.torn = Some(TornRecord {
            offset: offset as u64,
            dropped_bytes: end.saturating_sub(offset) as u64,
        });
    }

    /// Applies one record (with a good checksum).
    fn apply(&mut self, body: &[u8]) -> Result<(), &'static str> {
        let (&kind, rest) = body.split_first().ok_or("an empty record")?;
        let (seq, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("a record without its sequence number")?;
        let seq = u32::from_le_bytes(*seq);
        match kind {
            KIND_MESSAGE => {
                if read_message(rest, seq, None).is_none() {
                    return Err("a message that does not decode");
                }
                if self.live.contains_key(&seq) {
                    return Err("a second message under one sequence number");
                }
                self.live.insert(
                    seq,
                    Live {
                        message: rest.to_vec(),
                        packet_id: None,
                    },
                );
                if seq >= self.next_seq {
                    self.next_seq = seq.wrapping_add(1).max(1);
                }
            }
            KIND_SENT => {
                let &[lo, hi] = rest else {
                    return Err("a sent record of the wrong length");
                };
                let live = self
                    .live
                    .get_mut(&seq)
                    .ok_or("a sent record for a message not held")?;
                live.packet_id = Some(u16::from_le_bytes([lo, hi]));
            }
            KIND_REMOVED => {
                if !rest.is_empty() {
                    return Err("a removed record of the wrong length");
                }
                self.live
                    .remove(&seq)
                    .ok_or("a removed record for a message not held")?;
            }
            KIND_HEADER => return Err("a second header"),
            _ => return Err("a record of an unknown kind"),
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::format;
    use std::string::{String, ToString};
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::vec;
    use umqtt_simple::QoS;

    /// A directory of its own under the temp dir, removed when dropped.
    struct TempDir(PathBuf);

    impl TempDir {
        fn new(name: &str) -> Self {
            static COUNT: AtomicU32 = AtomicU32::new(0);
            let dir = std::env::temp_dir().join(format!(
                "umqtt-file-outbox-{}-{name}-{}",
                std::process::id(),
                COUNT.fetch_add(1, Ordering::Relaxed)
            ));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }

        fn log(&self) -> PathBuf {
            self.0.join("outbox.log")
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn msg(payload: &[u8]) -> Queued<'_> {
        Queued::new(b"t/x", payload, QoS::AtLeastOnce, false)
    }

    fn options(capacity_bytes: usize, fsync: FsyncPolicy) -> FileOutboxOptions {
        FileOutboxOptions {
            capacity_bytes,
            fsync,
        }
    }

    fn open(path: &Path) -> FileOutbox {
        FileOutbox::open(path, FileOutboxOptions::default()).unwrap()
    }

    /// Every message held, oldest first: (seq, payload, packet id).
    fn contents(outbox: &FileOutbox) -> Vec<(u32, Vec<u8>, Option<u16>)> {
        let mut all = Vec::new();
        let mut next = outbox.first();
        while let Some(m) = next {
            all.push((m.seq, m.payload.to_vec(), m.packet_id));
            next = outbox.next_after(m.seq);
        }
        assert_eq!(all.len(), outbox.len());
        all
    }

    #[test]
    fn what_was_pushed_and_not_removed_comes_back_after_a_reopen_with_its_packet_id() {
        let dir = TempDir::new("reopen");
        let mut outbox = open(&dir.log());
        let a = outbox.push(&msg(b"a")).unwrap();
        let b = outbox.push(&msg(b"b")).unwrap();
        let c = outbox.push(&msg(b"c")).unwrap();
        assert!(a < b && b < c);
        outbox.mark_sent(b, 7).unwrap();
        outbox.remove(a).unwrap();
        let before = contents(&outbox);
        drop(outbox);

        let mut outbox = open(&dir.log());
        assert_eq!(
            contents(&outbox),
            vec![(b, b"b".to_vec(), Some(7)), (c, b"c".to_vec(), None)]
        );
        assert_eq!(contents(&outbox), before);
        assert_eq!(
            *outbox.open_report(),
            OpenReport {
                records: 6,
                messages: 2,
                torn: None
            }
        );
        let first = outbox.first().unwrap();
        assert_eq!(
            (first.topic, first.qos, first.retain),
            (&b"t/x"[..], QoS::AtLeastOnce, false)
        );
        // Numbers go on from where they were.
        assert!(outbox.push(&msg(b"d")).unwrap() > c);
        assert_eq!(outbox.remove(a), Err(OutboxError::UnknownSeq(a)));
        assert_eq!(outbox.mark_sent(a, 1), Err(OutboxError::UnknownSeq(a)));
    }

    #[test]
    fn acknowledgements_in_any_order_survive_reopens_and_the_last_one_empties_the_file() {
        let dir = TempDir::new("any-order");
        let mut outbox = open(&dir.log());
        let seqs: Vec<u32> = (0..6u8)
            .map(|i| outbox.push(&msg(&[b'0' + i])).unwrap())
            .collect();
        for (i, &seq) in seqs.iter().enumerate() {
            outbox.mark_sent(seq, 100 + i as u16).unwrap();
        }
        let mut expected: Vec<u32> = seqs.clone();
        for &i in &[3usize, 0, 5, 1, 4] {
            outbox.remove(seqs[i]).unwrap();
            expected.retain(|&s| s != seqs[i]);
            drop(outbox);
            outbox = open(&dir.log());
            let held: Vec<(u32, Option<u16>)> = contents(&outbox)
                .into_iter()
                .map(|(s, _, id)| (s, id))
                .collect();
            let want: Vec<(u32, Option<u16>)> = expected
                .iter()
                .map(|&s| (s, Some(100 + (s - seqs[0]) as u16)))
                .collect();
            assert_eq!(held, want, "after removing message {i}");
        }
        outbox.remove(seqs[2]).unwrap();
        assert!(outbox.is_empty());
        assert_eq!(outbox.file_len(), 0);
        assert_eq!(fs::metadata(dir.log()).unwrap().len(), 0);
        // Numbers keep increasing while the outbox lives, empty or not.
        assert!(outbox.push(&msg(b"z")).unwrap() > seqs[5]);
    }

    #[test]
    fn a_resend_under_the_same_packet_id_writes_nothing_and_a_new_id_wins() {
        let dir = TempDir::new("resend");
        let mut outbox = open(&dir.log());
        let a = outbox.push(&msg(b"a")).unwrap();
        outbox.mark_sent(a, 1).unwrap();
        let len = outbox.file_len();
        outbox.mark_sent(a, 1).unwrap();
        assert_eq!(outbox.file_len(), len);
        outbox.mark_sent(a, 2).unwrap();
        assert_eq!(outbox.file_len(), len + SENT_FRAME as u64);
        drop(outbox);
        assert_eq!(open(&dir.log()).first().unwrap().packet_id, Some(2));
    }

    /// A log of three messages (the second sent), and where the last
    /// message's frame begins.
    fn three_messages(path: &Path) -> (Vec<u8>, usize) {
        let mut outbox = open(path);
        outbox.push(&msg(b"first")).unwrap();
        let second = outbox.push(&msg(b"second")).unwrap();
        outbox.mark_sent(second, 9).unwrap();
        let last = outbox.file_len() as usize;
        outbox.push(&msg(b"third, cut short")).unwrap();
        drop(outbox);
        (fs::read(path).unwrap(), last)
    }

    #[test]
    fn a_torn_last_record_is_found_cut_off_and_the_records_before_it_survive() {
        let dir = TempDir::new("torn");
        let (whole, last) = three_messages(&dir.log());
        let survivors = vec![
            (1, b"first".to_vec(), None),
            (2, b"second".to_vec(), Some(9)),
        ];
        let mut damaged: Vec<(String, Vec<u8>)> = (last + 1..whole.len())
            .map(|cut| (format!("cut to {cut} bytes"), whole[..cut].to_vec()))
            .collect();
        for at in last..whole.len() {
            let mut flipped = whole.clone();
            flipped[at] ^= 0x10;
            damaged.push((format!("byte {at} flipped"), flipped));
        }
        // Zeros, as a file extended but not written reads after a power cut.
        let mut zeroed = whole.clone();
        zeroed[last..].fill(0);
        damaged.push(("zeroed".into(), zeroed));
        for (what, bytes) in damaged {
            fs::write(dir.log(), &bytes).unwrap();
            let mut outbox = open(&dir.log());
            assert_eq!(contents(&outbox), survivors, "{what}");
            assert_eq!(
                outbox.open_report().torn,
                Some(TornRecord {
                    offset: last as u64,
                    dropped_bytes: (bytes.len() - last) as u64
                }),
                "{what}"
            );
            assert_eq!(
                fs::metadata(dir.log()).unwrap().len(),
                last as u64,
                "{what}"
            );
            // It carries on from there, and what it writes next is kept.
            let seq = outbox.push(&msg(b"after")).unwrap();
            drop(outbox);
            let outbox = open(&dir.log());
            assert_eq!(outbox.open_report().torn, None, "{what}");
            assert_eq!(
                contents(&outbox).last(),
                Some(&(seq, b"after".to_vec(), None)),
                "{what}"
            );
        }
    }

    #[test]
    fn a_first_write_cut_short_leaves_an_empty_outbox() {
        let dir = TempDir::new("torn-first");
        let mut outbox = open(&dir.log());
        outbox.push(&msg(b"only")).unwrap();
        drop(outbox);
        let whole = fs::read(dir.log()).unwrap();
        for cut in 1..whole.len() {
            fs::write(dir.log(), &whole[..cut]).unwrap();
            let outbox = open(&dir.log());
            assert!(outbox.is_empty(), "cut to {cut} bytes");
            // A whole header and nothing after it is a good, empty log.
            let dropped = match cut {
                ..HEADER_FRAME => Some(cut as u64),
                HEADER_FRAME => None,
                _ => Some((cut - HEADER_FRAME) as u64),
            };
            assert_eq!(
                outbox.open_report().torn.map(|t| t.dropped_bytes),
                dropped,
                "cut to {cut} bytes"
            );
            assert_eq!(fs::metadata(dir.log()).unwrap().len(), 0);
        }
    }

    #[test]
    fn a_file_that_is_not_an_outbox_or_makes_no_sense_is_refused_and_left_untouched() {
        let dir = TempDir::new("foreign");
        let text = b"# not an outbox\nsome configuration = 1\n";
        fs::write(dir.log(), text).unwrap();
        let error = FileOutbox::open(dir.log(), FileOutboxOptions::default()).unwrap_err();
        assert!(matches!(error, OpenError::NotAnOutbox { .. }), "{error}");
        assert!(error.to_string().contains("not an outbox file"));
        assert_eq!(fs::read(dir.log()).unwrap(), text);

        // A newer format.
        let mut log = Vec::new();
        let mut body = header(1);
        body[5] = 2;
        push_frame(&mut log, &body).unwrap();
        fs::write(dir.log(), &log).unwrap();
        let error = FileOutbox::open(dir.log(), FileOutboxOptions::default()).unwrap_err();
        assert!(matches!(
            error,
            OpenError::UnsupportedVersion { version: 2, .. }
        ));

        // Well checksummed, but removing a message that is not there.
        let mut log = Vec::new();
        push_frame(&mut log, &header(1)).unwrap();
        push_frame(&mut log, &[KIND_REMOVED, 5, 0, 0, 0]).unwrap();
        fs::write(dir.log(), &log).unwrap();
        let error = FileOutbox::open(dir.log(), FileOutboxOptions::default()).unwrap_err();
        assert!(
            matches!(error, OpenError::Invalid { offset: 18, .. }),
            "{error}"
        );
        assert_eq!(fs::read(dir.log()).unwrap(), log);
    }

    #[test]
    fn compaction_keeps_exactly_the_live_records() {
        let dir = TempDir::new("compact");
        let path = dir.log();
        let mut outbox = FileOutbox::open(&path, options(1 << 20, FsyncPolicy::Never)).unwrap();
        let payload = [b'p'; 40];
        let seqs: Vec<u32> = (0..400)
            .map(|_| outbox.push(&msg(&payload)).unwrap())
            .collect();
        for (i, &seq) in seqs.iter().enumerate() {
            if i % 3 == 0 {
                outbox.mark_sent(seq, (i % 1000) as u16 + 1).unwrap();
            }
        }
        let peak = outbox.file_len();
        // Remove all but every 7th, from both ends inwards.
        let mut doomed: Vec<u32> = seqs.iter().copied().filter(|s| s % 7 != 0).collect();
        while !doomed.is_empty() {
            let seq = if doomed.len().is_multiple_of(2) {
                doomed.remove(0)
            } else {
                doomed.pop().unwrap()
            };
            outbox.remove(seq).unwrap();
            let live = HEADER_FRAME as u64 + outbox.live_log;
            assert!(
                outbox.file_len() <= COMPACT_MIN.max(2 * live) + SENT_FRAME as u64,
                "{} bytes for {live} live",
                outbox.file_len()
            );
        }
        assert!(
            outbox.file_len() < peak / 3,
            "{} of {peak}",
            outbox.file_len()
        );
        let live = contents(&outbox);
        assert_eq!(
            live.iter().map(|m| m.0).collect::<Vec<_>>(),
            seqs.iter()
                .copied()
                .filter(|s| s % 7 == 0)
                .collect::<Vec<_>>()
        );
        // A compaction now leaves exactly the live records, which read back.
        outbox.compact().unwrap();
        let sent = live.iter().filter(|m| m.2.is_some()).count() as u64;
        let each = (FRAME_OVERHEAD + RECORD_HEAD + 3 + 3 + payload.len()) as u64;
        assert_eq!(
            outbox.file_len(),
            HEADER_FRAME as u64 + live.len() as u64 * each + sent * SENT_FRAME as u64
        );
        assert_eq!(fs::metadata(&path).unwrap().len(), outbox.file_len());
        assert!(!temp_path(&path).exists());
        let next = outbox.push(&msg(b"after")).unwrap();
        drop(outbox);
        let outbox = open(&path);
        let mut expected = live;
        expected.push((next, b"after".to_vec(), None));
        assert_eq!(contents(&outbox), expected);
    }

    #[test]
    fn a_failed_compaction_leaves_the_log_whole_and_is_retried_later() {
        let dir = TempDir::new("compact-fails");
        let path = dir.log();
        let mut outbox = FileOutbox::open(&path, options(1 << 20, FsyncPolicy::Never)).unwrap();
        let pinned = outbox.push(&msg(b"pinned")).unwrap();
        // Where the new log would go is taken by a directory.
        fs::create_dir(temp_path(&path)).unwrap();
        let churn = |outbox: &mut FileOutbox, n: usize| {
            for _ in 0..n {
                let seq = outbox.push(&msg(&[b'c'; 100])).unwrap();
                outbox.remove(seq).unwrap();
            }
        };
        churn(&mut outbox, 100);
        let grown = outbox.file_len();
        assert!(grown > 2 * COMPACT_MIN, "not compacted: {grown} bytes");
        assert!(outbox.compact_after > grown);
        fs::remove_dir(temp_path(&path)).unwrap();
        churn(&mut outbox, 100);
        assert!(outbox.file_len() < COMPACT_MIN, "compacted once it could");
        drop(outbox);
        let outbox = open(&path);
        assert_eq!(contents(&outbox), vec![(pinned, b"pinned".to_vec(), None)]);
    }

    #[test]
    fn an_unfinished_compaction_is_removed_at_open() {
        let dir = TempDir::new("stale");
        let mut outbox = open(&dir.log());
        outbox.push(&msg(b"kept")).unwrap();
        drop(outbox);
        fs::write(temp_path(&dir.log()), b"half a compaction").unwrap();
        let outbox = open(&dir.log());
        assert_eq!(contents(&outbox), vec![(1, b"kept".to_vec(), None)]);
        assert!(!temp_path(&dir.log()).exists());
    }

    #[test]
    fn a_push_beyond_the_capacity_is_refused_and_changes_nothing() {
        let dir = TempDir::new("capacity");
        let each = FileOutbox::needed(&msg(b"0123456789"));
        assert_eq!(each, 8 + 5 + 3 + 3 + 10);
        let mut outbox =
            FileOutbox::open(dir.log(), options(2 * each + 5, FsyncPolicy::EveryRecord)).unwrap();
        let first = outbox.push(&msg(b"0123456789")).unwrap();
        outbox.push(&msg(b"abcdefghij")).unwrap();
        let (len, held) = (outbox.file_len(), contents(&outbox));
        assert_eq!(
            outbox.push(&msg(b"ABCDEFGHIJ")),
            Err(OutboxError::Full {
                needed: each,
                free: 5
            })
        );
        assert_eq!(
            outbox.push(&msg(&[0; 100])),
            Err(OutboxError::TooLarge {
                needed: each + 90,
                capacity: 2 * each + 5
            })
        );
        assert_eq!((outbox.file_len(), contents(&outbox)), (len, held.clone()));
        assert_eq!(fs::metadata(dir.log()).unwrap().len(), len);
        outbox.remove(first).unwrap();
        let third = outbox.push(&msg(b"ABCDEFGHIJ")).unwrap();
        assert_eq!(third, 3, "a refused push takes no number");
        drop(outbox);
        assert_eq!(open(&dir.log()).len(), 2);
    }

    #[test]
    fn ten_thousand_messages_pushed_and_removed_keep_the_file_small() {
        let dir = TempDir::new("ten-thousand");
        let mut outbox = FileOutbox::open(dir.log(), options(1 << 16, FsyncPolicy::Never)).unwrap();
        // Each acknowledged before the next: the log empties every time.
        for i in 0..10_000u32 {
            let seq = outbox.push(&msg(&i.to_le_bytes())).unwrap();
            outbox.remove(seq).unwrap();
            assert_eq!(outbox.file_len(), 0);
        }
        // One message stays throughout, so the log is never simply emptied.
        let pinned = outbox.push(&msg(b"pinned")).unwrap();
        let mut largest = 0;
        let mut window = std::collections::VecDeque::new();
        for i in 0..10_000u32 {
            let payload = format!("message {i} {}", "x".repeat((i % 50) as usize));
            let seq = outbox.push(&msg(payload.as_bytes())).unwrap();
            outbox.mark_sent(seq, (i % 65_535) as u16 + 1).unwrap();
            window.push_back(seq);
            if window.len() > 10 {
                let oldest = window.pop_front().unwrap();
                outbox.remove(oldest).unwrap();
            }
            largest = largest.max(outbox.file_len());
        }
        assert!(
            largest <= 2 * COMPACT_MIN,
            "the log reached {largest} bytes"
        );
        assert_eq!(outbox.len(), 11);
        drop(outbox);
        let mut outbox = open(&dir.log());
        assert_eq!(outbox.len(), 11);
        assert_eq!(outbox.first().unwrap().seq, pinned);
        let all: Vec<u32> = contents(&outbox).iter().map(|m| m.0).collect();
        for seq in all {
            outbox.remove(seq).unwrap();
        }
        assert_eq!(outbox.file_len(), 0);
    }

    #[test]
    fn every_n_fsyncs_every_nth_push() {
        let dir = TempDir::new("every-n");
        let mut outbox =
            FileOutbox::open(dir.log(), options(4096, FsyncPolicy::EveryN(3))).unwrap();
        let mut unsynced = Vec::new();
        for _ in 0..7 {
            outbox.push(&msg(b"m")).unwrap();
            unsynced.push(outbox.unsynced);
        }
        assert_eq!(unsynced, [1, 2, 0, 1, 2, 0, 1]);
        outbox.sync().unwrap();
        assert_eq!(outbox.unsynced, 0);
    }

    #[test]
    fn a_failed_write_changes_nothing_and_a_failure_that_leaves_the_file_in_doubt_refuses_changes()
    {
        let dir = TempDir::new("failure");
        let mut outbox = open(&dir.log());
        let a = outbox.push(&msg(b"a")).unwrap();
        let (len, held) = (outbox.file_len(), contents(&outbox));
        // A handle that cannot write: the write fails, and so does cutting
        // it back.
        outbox.file = File::open(dir.log()).unwrap();
        assert_eq!(outbox.push(&msg(b"b")), Err(OutboxError::Storage));
        assert_eq!((outbox.file_len(), contents(&outbox)), (len, held.clone()));
        assert!(outbox.poisoned);
        assert_eq!(outbox.remove(a), Err(OutboxError::Storage));
        assert_eq!(outbox.mark_sent(a, 3), Err(OutboxError::Storage));
        assert_eq!(contents(&outbox), held, "still readable");
        drop(outbox);
        assert_eq!(contents(&open(&dir.log())), held);
    }
}
