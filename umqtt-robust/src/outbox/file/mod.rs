//! [`FileOutbox`]: the outbox in an append-only log file (feature `std`);
//! its format is described on the type.

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::vec::Vec;

use super::record::{FRAME_OVERHEAD, message_len, read_message, write_message};
use super::{Outbox, OutboxError, Queued};

mod format;
mod options;
mod replay;
#[cfg(test)]
mod tests;

use format::*;
pub use options::{FileOutboxOptions, FsyncPolicy, OpenError, OpenReport, TornRecord};
use replay::replay;

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
