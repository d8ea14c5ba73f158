//! The file outbox under SIGKILL: a child process (this test binary,
//! re-executed) pushes messages into a `FileOutbox` as fast as it can and
//! reports each push that returned; the parent kills it with SIGKILL in the
//! middle of the stream, opens the file itself and checks that every message
//! whose push returned is there, whole and in order, and that none whose
//! removal returned came back. Rounds go on from the same file, under
//! `FsyncPolicy::EveryRecord` and `FsyncPolicy::Never` (which promises the
//! same against a crash of the process: the writes are in the OS's page
//! cache). Half the rounds watch the file grow and kill the child in the
//! middle of writing a 1 MiB message, which leaves a torn record that the
//! next open must find and drop; the others kill it after delays spread over
//! its cycle (encoding, write, fsync, a removal, a compaction).
//!
//! This proves the storage; the same proof through a broker comes once the
//! client has its outbox.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use umqtt_robust::outbox::{FileOutbox, FileOutboxOptions, FsyncPolicy, Outbox, Queued};
use umqtt_simple::QoS;

/// Set in the child: the log file's path.
const ENV_LOG: &str = "UMQTT_OUTBOX_KILL_LOG";
/// Set in the child: the round (picks the payloads and the policy).
const ENV_ROUND: &str = "UMQTT_OUTBOX_KILL_ROUND";
const ROUNDS: u32 = 16;
/// Messages the child keeps before it removes the oldest.
const WINDOW: usize = 8;
const TOPIC: &[u8] = b"kill/test";

fn policy(round: u32) -> FsyncPolicy {
    if round.is_multiple_of(2) {
        FsyncPolicy::EveryRecord
    } else {
        FsyncPolicy::Never
    }
}

fn options(round: u32) -> FileOutboxOptions {
    FileOutboxOptions {
        capacity_bytes: 64 << 20,
        fsync: policy(round),
    }
}

/// Message `i` of `round`: every fourth is 1 MiB (256 pages, so a kill can
/// land in the middle of its write), the others small; each says whose it
/// is and has contents that can be checked.
fn payload(round: u32, i: u32) -> Vec<u8> {
    let len = if i.is_multiple_of(4) {
        1 << 20
    } else {
        50 + (i % 97) as usize
    };
    let mut bytes = format!("r{round} i{i} ").into_bytes();
    let fill = (0..len).map(|k| (k as u32).wrapping_mul(31).wrapping_add(i) as u8);
    bytes.extend(fill);
    bytes
}

/// Whether `bytes` is a message some round pushed, whole.
fn is_whole(bytes: &[u8]) -> bool {
    let text = String::from_utf8_lossy(&bytes[..bytes.len().min(24)]).into_owned();
    let mut words = text.split(' ');
    let round = words.next().and_then(|w| w.strip_prefix('r')?.parse().ok());
    let i = words.next().and_then(|w| w.strip_prefix('i')?.parse().ok());
    match (round, i) {
        (Some(round), Some(i)) => payload(round, i) == bytes,
        _ => false,
    }
}

/// The child: pushes until it is killed, printing (to stderr) each push and
/// removal that returned. Does nothing when run as an ordinary test.
#[test]
fn sigkill_child_pushes_until_killed() {
    let (Ok(log), Ok(round)) = (std::env::var(ENV_LOG), std::env::var(ENV_ROUND)) else {
        return;
    };
    let round: u32 = round.parse().unwrap();
    let mut outbox = FileOutbox::open(&log, options(round)).unwrap();
    let mut window = Vec::new();
    let mut next = outbox.first().map(|m| m.seq);
    while let Some(seq) = next {
        window.push(seq);
        next = outbox.next_after(seq).map(|m| m.seq);
    }
    eprintln!("opened {}", outbox.len());
    for i in 0.. {
        let payload = payload(round, i);
        let seq = outbox
            .push(&Queued::new(TOPIC, &payload, QoS::AtLeastOnce, false))
            .unwrap();
        eprintln!("pushed {seq} {i}");
        window.push(seq);
        if window.len() > WINDOW {
            let oldest = window.remove(0);
            outbox.remove(oldest).unwrap();
            eprintln!("removed {oldest}");
        }
    }
}

/// What the child said before it died.
#[derive(Default)]
struct Said {
    /// Pushes that returned: seq → message number.
    pushed: BTreeMap<u32, u32>,
    /// Removals that returned.
    removed: Vec<u32>,
}

/// When the child is killed, once it has pushed enough and is about to push
/// a large message.
#[derive(Debug, Clone, Copy)]
enum Kill {
    /// After a delay: in the encoding, the write, the fsync, a removal...
    After(Duration),
    /// As soon as the file grows by 64 KiB: in the middle of the write.
    MidWrite,
}

/// Waits until the log grows by 64 KiB over the smallest it was seen at
/// (a compaction may shrink it first), or 2 s.
fn wait_for_growth(log: &Path) {
    let started = Instant::now();
    let mut low = u64::MAX;
    while started.elapsed() < Duration::from_secs(2) {
        let len = std::fs::metadata(log).map_or(0, |m| m.len());
        low = low.min(len);
        if len > low + (64 << 10) {
            return;
        }
    }
}

/// Runs the child for `round` on `log`, kills it after `kill_after` pushes
/// (see [`Kill`]), and returns what it said.
fn run_and_kill(log: &Path, round: u32, kill_after: usize, when: Kill) -> Said {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut child = Command::new(exe)
        .args([
            "sigkill_child_pushes_until_killed",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(ENV_LOG, log)
        .env(ENV_ROUND, round.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the child");
    let lines = BufReader::new(child.stderr.take().expect("the child's stderr")).lines();
    let mut said = Said::default();
    let mut killed = false;
    let started = Instant::now();
    for line in lines {
        let line = line.expect("read the child's output");
        let words: Vec<&str> = line.split(' ').collect();
        // Whether the next push is a large one.
        let mut large_next = false;
        match words[..] {
            ["pushed", seq, i] => {
                let i: u32 = i.parse().unwrap();
                said.pushed.insert(seq.parse().unwrap(), i);
                large_next = (i + 1).is_multiple_of(4);
            }
            ["removed", seq] => said.removed.push(seq.parse().unwrap()),
            ["opened", _] => {}
            _ => panic!("the child said: {line}"),
        }
        let due = said.pushed.len() >= kill_after && large_next;
        if !killed && (due || started.elapsed() > Duration::from_secs(20)) {
            match when {
                Kill::After(delay) => std::thread::sleep(delay),
                Kill::MidWrite => wait_for_growth(log),
            }
            child.kill().expect("SIGKILL the child");
            killed = true;
        }
    }
    let status = child.wait().expect("wait for the child");
    assert_eq!(
        status.signal(),
        Some(9),
        "the child died of SIGKILL: {status}"
    );
    assert!(
        said.pushed.len() >= kill_after,
        "the child pushed too slowly"
    );
    said
}

fn scratch_log(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("umqtt-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a scratch directory");
    let log = dir.join("outbox.log");
    (dir, log)
}

#[test]
fn every_push_that_returned_survives_sigkill_and_a_torn_record_is_dropped() {
    let (dir, log) = scratch_log("outbox-sigkill");
    // What the file must hold: seq → payload.
    let mut expected: BTreeMap<u32, Vec<u8>> = BTreeMap::new();
    let (mut pushes, mut torn) = (0, 0);
    let started = Instant::now();
    for round in 0..ROUNDS {
        let kill_after = 12 + (round as usize * 7) % 20;
        // Every other round (with each policy), in the middle of a write;
        // the others at times spread over the child's cycle.
        let when = if round % 4 < 2 {
            Kill::MidWrite
        } else {
            Kill::After(Duration::from_micros(u64::from(round) * 400))
        };
        let said = run_and_kill(&log, round, kill_after, when);
        pushes += said.pushed.len();
        for (&seq, &i) in &said.pushed {
            expected.insert(seq, payload(round, i));
        }
        for seq in &said.removed {
            expected.remove(seq);
        }

        let outbox = FileOutbox::open(&log, options(round)).expect("reopen after SIGKILL");
        let report = *outbox.open_report();
        if let Some(tear) = report.torn {
            torn += 1;
            println!(
                "round {round} ({:?}, killed {when:?}): a torn record at byte {} ({} bytes) dropped",
                policy(round),
                tear.offset,
                tear.dropped_bytes
            );
        }
        let mut held = BTreeMap::new();
        let mut next = outbox.first();
        while let Some(m) = next {
            assert!(
                is_whole(m.payload),
                "round {round}: message {} is not whole",
                m.seq
            );
            assert_eq!(m.topic, TOPIC);
            held.insert(m.seq, m.payload.to_vec());
            next = outbox.next_after(m.seq);
        }
        // Everything whose push returned is there, whole, except perhaps
        // the oldest, if the kill came while it was being removed.
        let missing: Vec<u32> = expected
            .keys()
            .filter(|s| !held.contains_key(s))
            .copied()
            .collect();
        let oldest = expected.keys().next().copied();
        assert!(
            missing.is_empty()
                || (missing.len() == 1
                    && missing.first() == oldest.as_ref()
                    && expected.len() > WINDOW),
            "round {round} ({:?}): messages {missing:?}, whose pushes returned, are missing",
            policy(round)
        );
        for (seq, payload) in &held {
            if let Some(said) = expected.get(seq) {
                assert_eq!(said, payload, "round {round}: message {seq} changed");
            }
        }
        // Beyond those, at most the push the kill cut short (never one
        // whose removal returned).
        let newest = expected.keys().next_back().copied().unwrap_or(0);
        let extra: Vec<u32> = held
            .keys()
            .filter(|s| !expected.contains_key(s))
            .copied()
            .collect();
        assert!(
            extra.len() <= 1 && extra.iter().all(|&s| s > newest),
            "round {round}: {extra:?} are there, but no push of them returned, or their removal did"
        );
        // The next round starts from what is there now.
        expected = held;
        drop(outbox);
    }
    println!(
        "{ROUNDS} SIGKILLs, {pushes} pushes reported, {torn} torn records found and dropped, {:.1?}",
        started.elapsed()
    );
    // A kill in the middle of a 1 MiB write leaves part of it behind: the
    // mid-write rounds must have produced (and the opens caught) some.
    assert!(
        torn > 0,
        "no kill tore a record: the torn-record path went untested"
    );
    let _ = std::fs::remove_dir_all(dir);
}
