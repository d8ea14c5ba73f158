//! FileOutbox on real files: round trips across reopen, torn records,
//! compaction, capacity, fsync policies.

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
    let mut outbox = FileOutbox::open(dir.log(), options(4096, FsyncPolicy::EveryN(3))).unwrap();
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
fn a_failed_write_changes_nothing_and_a_failure_that_leaves_the_file_in_doubt_refuses_changes() {
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
