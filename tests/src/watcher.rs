//! A persistent subscriber that counts numbered messages across broker
//! restarts, and the checks made on what it saw: every number arrived, new
//! ones in order on each of its connections, and a message missing only if
//! the broker lost it (acknowledged it right before a SIGKILL).

use std::collections::HashSet;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_robust::Event;
use umqtt_simple::{Message, Options, QoS};

use crate::{client_id, std_robust};

/// What a subscriber saw: for each message number, on which of its
/// connections it arrived (in arrival order).
#[derive(Default)]
pub struct Seen {
    /// (connection, message number), in arrival order.
    pub arrivals: Vec<(u32, usize)>,
}

impl Seen {
    /// How many different numbers arrived.
    pub fn distinct(&self) -> usize {
        self.arrivals
            .iter()
            .map(|&(_, n)| n)
            .collect::<HashSet<_>>()
            .len()
    }
}

/// A persistent subscriber to `topic` in its own thread, recording every
/// numbered message; it stops once it has `total` distinct ones, or 20 s
/// after `stop` is set.
fn subscriber(
    addr: SocketAddr,
    topic: String,
    total: usize,
    ready: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    seen: Arc<Mutex<Seen>>,
) -> thread::JoinHandle<()> {
    let id = client_id("watch-sub");
    thread::spawn(move || {
        let connection = AtomicUsize::new(0);
        let mut on_event = |e: Event| {
            if matches!(e, Event::Reconnected { .. }) {
                connection.fetch_add(1, Ordering::SeqCst);
            }
        };
        let mut on_message = |m: Message<'_>| {
            if let Some(n) = std::str::from_utf8(m.payload)
                .ok()
                .and_then(|s| s.parse().ok())
            {
                let mut seen = seen.lock().unwrap();
                seen.arrivals
                    .push((connection.load(Ordering::SeqCst) as u32, n));
            }
        };
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let options = Options::new(&id).clean_session(false).keepalive(10);
        let mut sub = std_robust(&mut tx, &mut rx, options, (50, 500), 20_000);
        sub.set_callback(&mut on_message);
        sub.set_event_callback(&mut on_event);
        sub.connect(addr).expect("the subscriber connects");
        sub.subscribe(topic.as_bytes(), QoS::AtLeastOnce)
            .expect("subscribe");
        ready.store(true, Ordering::SeqCst);
        let mut stop_at = None;
        while seen.lock().unwrap().distinct() < total {
            if stop.load(Ordering::SeqCst)
                && stop_at.get_or_insert_with(Instant::now).elapsed() > Duration::from_secs(20)
            {
                break;
            }
            sub.wait_msg_for(100)
                .unwrap_or_else(|e| panic!("subscriber: {e}"));
        }
        let _ = sub.disconnect();
    })
}

/// A persistent subscriber started and subscribed, with what it sees and
/// the flag that tells it the publisher is done.
pub struct Watcher {
    handle: thread::JoinHandle<()>,
    /// What it saw so far.
    pub seen: Arc<Mutex<Seen>>,
    stop: Arc<AtomicBool>,
}

impl Watcher {
    /// Starts a subscriber to `topic` on `addr` that waits for `total`
    /// messages numbered 0..total.
    pub fn start(addr: SocketAddr, topic: &str, total: usize) -> Self {
        let (ready, stop) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicBool::new(false)),
        );
        let seen = Arc::new(Mutex::new(Seen::default()));
        let handle = subscriber(
            addr,
            topic.to_owned(),
            total,
            Arc::clone(&ready),
            Arc::clone(&stop),
            Arc::clone(&seen),
        );
        wait_until(crate::WAIT, "the subscriber", || {
            ready.load(Ordering::SeqCst)
        });
        Watcher { handle, seen, stop }
    }

    /// How many different numbers arrived so far.
    pub fn distinct(&self) -> usize {
        self.seen.lock().unwrap().distinct()
    }

    /// Tells the subscriber the publisher is done, waits for it to finish,
    /// and returns what it saw.
    pub fn finish(self) -> Seen {
        self.stop.store(true, Ordering::SeqCst);
        self.handle.join().expect("the subscriber");
        std::mem::take(&mut *self.seen.lock().unwrap())
    }
}

/// Polls `done` every 5 ms; fails the test after `within`.
pub fn wait_until(within: Duration, what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < within, "timed out waiting for {what}");
        thread::sleep(Duration::from_millis(5));
    }
}

/// Checks that on each of the subscriber's connections the numbers seen for
/// the first time came in increasing order; returns the numbers seen.
pub fn in_order(seen: &Seen) -> HashSet<usize> {
    let mut first = HashSet::new();
    let mut last_new: Option<(u32, usize)> = None;
    for &(connection, n) in &seen.arrivals {
        if first.insert(n) {
            if let Some((c, previous)) = last_new {
                assert!(
                    c != connection || n > previous,
                    "on connection {connection}, {n} arrived new after {previous}"
                );
            }
            last_new = Some((connection, n));
        }
    }
    first
}

/// The numbers below `total` missing from `first`.
pub fn missing(first: &HashSet<usize>, total: usize) -> Vec<usize> {
    (0..total).filter(|n| !first.contains(n)).collect()
}

/// Checks that `seen` has every number below `total`, in order on each
/// connection ([`in_order`]); returns the number of duplicates.
pub fn all_in_order(seen: &Seen, total: usize) -> usize {
    let lost = missing(&in_order(seen), total);
    assert!(
        lost.is_empty(),
        "{} missing, first {:?}",
        lost.len(),
        &lost[..lost.len().min(20)]
    );
    seen.arrivals.len() - total
}

/// What a run through broker SIGKILLs delivered: checked with
/// [`lost_only_by_the_broker`].
pub struct KillReport {
    /// Messages missing at the subscriber (each acknowledged by the broker
    /// less than 2 s before a SIGKILL: the broker's loss).
    pub lost_by_broker: Vec<usize>,
    /// Arrivals beyond the first of each message.
    pub duplicates: usize,
}

/// Checks what a subscriber `seen` of `total` numbered messages published
/// through SIGKILLs at `kills`: new ones in order on each connection, and
/// every missing message lost by the broker, not the client.
///
/// The client's promise ends at the broker's PUBACK. mosquitto saves its
/// database after it acknowledges (even with `autosave_on_changes`), so a
/// SIGKILL can take a message it acknowledged and had not yet saved or
/// forwarded. A message may be missing only so: `acked_at[n]` (when its
/// PUBACK came) less than 2 s before a kill. One never acknowledged, or
/// acknowledged long before any kill, is the client's loss: the test fails.
pub fn lost_only_by_the_broker(
    seen: &Seen,
    total: usize,
    acked_at: &[Option<Instant>],
    kills: &[Instant],
) -> KillReport {
    let lost = missing(&in_order(seen), total);
    let client_lost: Vec<usize> = lost
        .iter()
        .copied()
        .filter(|&n| {
            !acked_at.get(n).copied().flatten().is_some_and(|acked| {
                kills
                    .iter()
                    .any(|&kill| kill >= acked && kill - acked < Duration::from_secs(2))
            })
        })
        .collect();
    assert!(
        client_lost.is_empty(),
        "{} of {total} messages missing and not acknowledged within 2 s before a SIGKILL: \
         the client lost them (first {:?})",
        client_lost.len(),
        &client_lost[..client_lost.len().min(20)]
    );
    KillReport {
        duplicates: seen.arrivals.len() - (total - lost.len()),
        lost_by_broker: lost,
    }
}
