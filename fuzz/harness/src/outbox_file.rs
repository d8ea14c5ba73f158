//! The `outbox_file` target: umqtt-robust's `FileOutbox` reopened over a log
//! that was cut or corrupted anywhere.
//!
//! Input: byte 0 the number of operations (at most [`MAX_OPS`]), then one
//! byte each (bits 0-1 the kind, bits 2-7 a parameter):
//! - 0, 1: push a message (topic `t/N`, `param` payload bytes, QoS 1 for
//!   kind 1, QoS 0 for kind 0, retained for an odd `param`);
//! - 2: mark the `param`-th held message sent with packet id `param + 1`;
//! - 3: remove the `param`-th held message;
//!
//! then five bytes of damage: where to cut the log (u16 LE; 0 or past its
//! end: no cut), which byte to change (u16 LE, modulo the length) and the
//! XOR to change it with (0: none).
//!
//! Checks: opening never panics and never fails with `Io` or `Invalid` (a
//! record with a good checksum that makes no sense: one byte changed cannot
//! make one, CRC-32 finds it). An undamaged log gives back exactly what was
//! held, with its sequence numbers and packet ids. A cut log gives back
//! only messages that were pushed (same sequence number, topic, payload,
//! QoS, retain; a packet id they were marked sent with), and reports the
//! cut exactly: no torn record when the cut falls between records, else
//! the torn record's offset (the last record boundary before the cut) and
//! the bytes dropped; `file_len` is then the file's length, and opening it
//! again gives the same messages with nothing torn. A changed byte gives
//! back only messages that were pushed, or refuses the file as not an
//! outbox (a changed header).

use std::collections::BTreeMap;
use std::fs;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};

use umqtt_robust::outbox::{
    FileOutbox, FileOutboxOptions, FsyncPolicy, OpenError, Outbox, Queued, Unframed, unframe,
};
use umqtt_simple::QoS;

use crate::Trace;

/// Most operations one input runs.
pub const MAX_OPS: usize = 48;
/// The outbox's capacity: small, so pushes are refused too.
const CAPACITY: usize = 600;

/// A message as the test holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Held {
    topic: Vec<u8>,
    payload: Vec<u8>,
    qos: QoS,
    retain: bool,
    packet_id: Option<u16>,
}

impl Held {
    fn of(message: &Queued<'_>) -> Self {
        Held {
            topic: message.topic.to_vec(),
            payload: message.payload.to_vec(),
            qos: message.qos,
            retain: message.retain,
            packet_id: message.packet_id,
        }
    }
}

/// A log file of its own (tests run in parallel), removed when dropped.
struct TempLog(PathBuf);

impl TempLog {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        // In memory where there is a tmpfs: the outbox fsyncs when it cuts
        // a torn record, which on a disk slows fuzzing down.
        let shm = std::path::Path::new("/dev/shm");
        let dir = if shm.is_dir() {
            shm.to_path_buf()
        } else {
            std::env::temp_dir()
        };
        let path = dir.join(format!("umqtt-fuzz-outbox-{}-{n}.log", std::process::id()));
        let _ = fs::remove_file(&path);
        TempLog(path)
    }
}

impl Drop for TempLog {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

fn options() -> FileOutboxOptions {
    FileOutboxOptions {
        capacity_bytes: CAPACITY,
        // Nothing to gain from fsync here (no power is cut), and it is slow.
        fsync: FsyncPolicy::Never,
    }
}

fn contents(outbox: &FileOutbox) -> BTreeMap<u32, Held> {
    let mut out = BTreeMap::new();
    let mut next = outbox.first();
    while let Some(message) = next {
        assert!(
            out.insert(message.seq, Held::of(&message)).is_none(),
            "seq {} given back twice",
            message.seq
        );
        next = outbox.next_after(message.seq);
    }
    assert_eq!(
        out.len(),
        outbox.len(),
        "len agrees with the messages given back"
    );
    out
}

/// Runs one input; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    let (&count, rest) = data.split_first().unwrap_or((&0, &[]));
    let count = usize::from(count).min(MAX_OPS).min(rest.len());
    let (ops, damage) = rest.split_at(count);
    let byte = |i: usize| damage.get(i).copied().unwrap_or(0);
    let cut_at = usize::from(u16::from_le_bytes([byte(0), byte(1)]));
    let flip_at = usize::from(u16::from_le_bytes([byte(2), byte(3)]));
    let flip = byte(4);

    let log = TempLog::new();
    let mut outbox = FileOutbox::open(&log.0, options()).expect("a new log opens");
    // Everything ever pushed, by seq, with every packet id it was given.
    let mut pushed: BTreeMap<u32, (Held, Vec<u16>)> = BTreeMap::new();
    let mut held: BTreeMap<u32, Held> = BTreeMap::new();
    let payload = [b'p'; 63];
    for (n, &op) in ops.iter().enumerate() {
        let param = usize::from(op >> 2);
        let nth = held.keys().nth(param % held.len().max(1)).copied();
        match op & 3 {
            kind @ (0 | 1) => {
                let topic = format!("t/{n}");
                let qos = if kind == 1 {
                    QoS::AtLeastOnce
                } else {
                    QoS::AtMostOnce
                };
                let message = Queued::new(topic.as_bytes(), &payload[..param], qos, param % 2 == 1);
                let result = outbox.push(&message);
                trace.note(|| format!("push {topic} {param} bytes -> {result:?}"));
                if let Ok(seq) = result {
                    let entry = Held::of(&message);
                    assert!(pushed.insert(seq, (entry.clone(), Vec::new())).is_none());
                    held.insert(seq, entry);
                }
            }
            2 => {
                let Some(seq) = nth else { continue };
                let id = u16::try_from(param + 1).unwrap_or(1);
                let result = outbox.mark_sent(seq, id);
                trace.note(|| format!("mark_sent {seq} {id} -> {result:?}"));
                if result.is_ok() {
                    if let Some(h) = held.get_mut(&seq) {
                        h.packet_id = Some(id);
                    }
                    if let Some((_, ids)) = pushed.get_mut(&seq) {
                        ids.push(id);
                    }
                }
            }
            _ => {
                let Some(seq) = nth else { continue };
                let result = outbox.remove(seq);
                trace.note(|| format!("remove {seq} -> {result:?}"));
                if result.is_ok() {
                    held.remove(&seq);
                }
            }
        }
        assert_eq!(
            contents(&outbox),
            held,
            "the outbox holds what the test holds"
        );
    }
    drop(outbox);

    let mut bytes = fs::read(&log.0).expect("the log reads");
    // Where each whole record ends, in the undamaged log.
    let mut ends = vec![0];
    let mut at = 0;
    while let Unframed::Frame(_, len) = unframe(bytes.get(at..).unwrap_or_default()) {
        at += len;
        ends.push(at);
    }
    assert_eq!(at, bytes.len(), "the log the outbox wrote is whole records");

    let cut = if cut_at == 0 {
        bytes.len()
    } else {
        cut_at.min(bytes.len())
    };
    let cut_short = cut < bytes.len();
    bytes.truncate(cut);
    let flipped = flip != 0 && !bytes.is_empty();
    let flip_at = flip_at % bytes.len().max(1);
    if let Some(b) = bytes.get_mut(flip_at) {
        *b ^= flip;
    }
    trace.note(|| format!("cut at {cut} (of {at}), flip {flip:#04x}"));
    fs::write(&log.0, &bytes).expect("the damaged log writes");

    let reopened = FileOutbox::open(&log.0, options());
    trace.note(|| format!("open -> {:?}", reopened.as_ref().map(|o| *o.open_report())));
    let outbox = match reopened {
        Ok(outbox) => outbox,
        Err(OpenError::NotAnOutbox { .. } | OpenError::UnsupportedVersion { .. }) if flipped => {
            return;
        }
        Err(e) => panic!("open failed on a log {cut} bytes long (flip {flip:#04x}): {e}"),
    };
    let found = contents(&outbox);
    for (seq, message) in &found {
        let Some((first, ids)) = pushed.get(seq) else {
            panic!("open gave back seq {seq}, which was never pushed");
        };
        let id_ok = match message.packet_id {
            None => true,
            Some(id) => ids.contains(&id),
        };
        assert!(
            id_ok
                && message.topic == first.topic
                && message.payload == first.payload
                && message.qos == first.qos
                && message.retain == first.retain,
            "open gave back {message:?} as seq {seq}, which was pushed as {first:?} with ids {ids:?}"
        );
    }
    if flipped {
        return;
    }
    let report = *outbox.open_report();
    if !cut_short {
        assert_eq!(found, held, "an undamaged log gives back what was held");
        assert_eq!(report.torn, None);
        return;
    }
    let boundary = ends
        .iter()
        .copied()
        .filter(|&e| e <= cut)
        .max()
        .unwrap_or(0);
    match report.torn {
        None => assert_eq!(
            boundary, cut,
            "a cut inside a record at {boundary} went unreported"
        ),
        Some(torn) => {
            assert_eq!(
                (torn.offset, torn.dropped_bytes),
                (boundary as u64, (cut - boundary) as u64),
                "a cut at {cut} is reported as this torn record"
            );
        }
    }
    // Cut back to the last good record (and maybe compacted since).
    let on_disk = fs::metadata(&log.0).map(|m| m.len()).unwrap_or_default();
    assert_eq!(outbox.file_len(), on_disk, "file_len is the file's length");
    drop(outbox);
    let again = FileOutbox::open(&log.0, options()).expect("a log cut back opens again");
    assert_eq!(
        again.open_report().torn,
        None,
        "the cut back log has nothing torn"
    );
    assert_eq!(
        contents(&again),
        found,
        "opening again gives the same messages"
    );
}
