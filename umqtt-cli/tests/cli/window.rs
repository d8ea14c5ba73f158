//! `umqtt pub -l -q 1` keeps `--max-inflight` messages in flight (default
//! 20, as mosquitto_pub): through a slow link (the fault proxy holding every
//! packet 25 ms each way) the proxy's record shows that many PUBLISH packets
//! leave before the first PUBACK comes back, and never more; every line
//! reaches a `sub` connected to mosquitto directly, in order. What a lost
//! connection took in flight goes again on the next one, with DUP, first.

use std::io::{Read, Write};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_tests::watcher::{Watcher, lost_only_by_the_broker, wait_until};

use super::fault_proxy::{FaultProxy, Record, window_on_the_wire};
use super::{FakeBroker, Mosquitto, Running, assert_success, cmd, read_connect, run, with};

/// How many PUBLISH packets were forwarded before the first PUBACK (all of
/// them if none came), and the most forwarded and not yet answered at any
/// point.
fn in_flight_on_the_wire(records: &[Record]) -> (usize, usize) {
    let w = window_on_the_wire(records);
    (w.before_first_ack.unwrap_or(w.sent), w.most)
}

/// `pub -l -q 1` of `n` lines through a slow link with `extra` options;
/// returns the window seen on the wire (see [`in_flight_on_the_wire`]).
fn lines_through_a_slow_link(tag: &str, n: usize, extra: &[&str]) -> (usize, usize) {
    let Some(broker) = Mosquitto::start(tag, "max_queued_messages 0") else {
        return (0, 0);
    };
    let proxy = FaultProxy::slow_link(broker.addr, Duration::from_millis(25));
    let topic = format!("cli/window/{tag}");
    let count = n.to_string();
    let sub = Running::subscribed(&with(
        &cmd("sub", broker.addr),
        &["-t", &topic, "-q", "1", "-C", &count],
    ));
    let mut input: String = (0..n).map(|i| format!("line {i:04}\n")).collect();
    let mut args = with(&cmd("pub", proxy.addr), &["-t", &topic, "-q", "1", "-l"]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run(&args, input.as_bytes());
    assert_success(&out, "pub -l -q 1 through the slow link");
    let received = sub.finish();
    assert_success(&received, "sub -C");
    assert!(
        received.stdout == input,
        "{} of {n} lines arrived, or out of order",
        received.stdout.lines().count()
    );
    input.clear();
    let (before_first_ack, most) = in_flight_on_the_wire(&proxy.records());
    eprintln!(
        "pub -l -q 1 {extra:?}: {n} lines in {:?} over a 50 ms round trip; {before_first_ack} \
         PUBLISH before the first PUBACK, at most {most} in flight",
        out.took
    );
    (before_first_ack, most)
}

#[test]
fn pub_lines_at_qos1_keep_20_messages_in_flight_by_default() {
    let seen = lines_through_a_slow_link("default", 400, &[]);
    if seen != (0, 0) {
        assert_eq!(seen, (20, 20), "(before the first PUBACK, at most)");
    }
}

#[test]
fn pub_lines_at_qos1_keep_max_inflight_messages_in_flight() {
    let seen = lines_through_a_slow_link("five", 100, &["--max-inflight", "5"]);
    if seen != (0, 0) {
        assert_eq!(seen, (5, 5), "(before the first PUBACK, at most)");
    }
    let seen = lines_through_a_slow_link("one", 20, &["--max-inflight", "1"]);
    if seen != (0, 0) {
        assert_eq!(seen, (1, 1), "(before the first PUBACK, at most)");
    }
}

/// A PUBLISH as the fake broker saw it: on which connection, its payload,
/// whether DUP was set.
type Seen = (usize, Vec<u8>, bool);

/// A broker whose first connection acknowledges two PUBLISH packets and
/// closes on the third without acknowledging it (nor anything sent after
/// it), and whose later ones acknowledge everything; with every PUBLISH it
/// was sent.
fn broker_dropping_the_first_window() -> (FakeBroker, Arc<Mutex<Vec<Seen>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let fake = FakeBroker::start(5, move |index, mut stream| {
        read_connect(&mut stream);
        if stream.write_all(&[0x20, 0x02, 0x00, 0x00]).is_err() {
            return;
        }
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut publishes = 0;
        while let Ok(packet) = umqtt_tests::read_packet(&mut reader) {
            if packet[0] & 0xf0 != 0x30 {
                continue;
            }
            // QoS 1: the packet id follows the topic, the payload the id.
            let topic_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            let id = &packet[4 + topic_len..6 + topic_len];
            let payload = packet[6 + topic_len..].to_vec();
            record
                .lock()
                .unwrap()
                .push((index, payload, packet[0] & 0x08 != 0));
            publishes += 1;
            if index == 0 && publishes == 3 {
                return; // closed with the window in flight
            }
            if stream.write_all(&[0x40, 0x02, id[0], id[1]]).is_err() {
                return;
            }
        }
        let mut sink = [0u8; 256];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    (fake, seen)
}

#[test]
fn pub_lines_at_qos1_send_what_a_lost_connection_took_again_with_dup_first_and_exit_0() {
    let (fake, seen) = broker_dropping_the_first_window();
    let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
    let out = run(
        &with(
            &cmd("pub", fake.addr),
            &[
                "-t",
                "t",
                "-q",
                "1",
                "-l",
                "--max-inflight",
                "5",
                "-W",
                "10",
            ],
        ),
        input.as_bytes(),
    );
    assert_success(
        &out,
        "pub -l -q 1 across a connection lost with 3 in flight",
    );
    let seen = seen.lock().unwrap().clone();
    let first: Vec<&[u8]> = seen
        .iter()
        .filter(|(c, _, _)| *c == 0)
        .map(|(_, p, _)| p.as_slice())
        .collect();
    assert_eq!(first, [&b"m0"[..], b"m1", b"m2"], "{seen:?}");
    // On the next connection: what was sent and not acknowledged again,
    // with DUP, in order and before any new one; then the rest, once each.
    // Unacknowledged: m2 (never acknowledged), whatever the window sent
    // after it into the dying connection (m3 to m4, or to m6 when the
    // PUBACKs of m0 and m1 slid the window on before the close was seen),
    // and m0 and m1 too when the client met the closed connection before it
    // read their PUBACKs. At most the window (5) was unacknowledged.
    let second: Vec<(String, bool)> = seen
        .iter()
        .filter(|(c, _, _)| *c == 1)
        .map(|(_, p, dup)| (String::from_utf8_lossy(p).into_owned(), *dup))
        .collect();
    let resent = second.iter().take_while(|(_, dup)| *dup).count();
    let first_resent: usize = second
        .first()
        .and_then(|(p, _)| p.strip_prefix('m')?.parse().ok())
        .unwrap_or_else(|| panic!("nothing on the second connection: {seen:?}"));
    assert!(first_resent <= 2 && first_resent + resent >= 3, "{seen:?}");
    assert!((1..=5).contains(&resent), "{seen:?}");
    let expected: Vec<(String, bool)> = (first_resent..10)
        .map(|i| (format!("m{i}"), i < first_resent + resent))
        .collect();
    assert_eq!(second, expected, "{seen:?}");
}

/// When each line's PUBACK came, from `pub -d`'s log ("[  1.234s DEBUG …]
/// message N acknowledged by the broker", N from 1 in line order), given
/// the process started at `started`.
fn acknowledged_at(stderr: &str, started: Instant, total: usize) -> Vec<Option<Instant>> {
    let mut acked_at = vec![None; total];
    for line in stderr.lines() {
        let Some(rest) = line.strip_suffix(" acknowledged by the broker") else {
            continue;
        };
        let seconds = line
            .strip_prefix('[')
            .and_then(|l| l.split('s').next())
            .and_then(|s| s.trim().parse::<f64>().ok());
        let seq = rest
            .rsplit(' ')
            .next()
            .and_then(|n| n.parse::<usize>().ok());
        if let (Some(seconds), Some(seq)) = (seconds, seq)
            && let Some(slot) = seq.checked_sub(1).and_then(|i| acked_at.get_mut(i))
        {
            *slot = Some(started + Duration::from_secs_f64(seconds));
        }
    }
    acked_at
}

#[test]
fn pub_lines_at_qos1_with_default_flags_deliver_every_line_through_three_broker_sigkills() {
    const TOTAL: usize = 400;
    let Some(mut broker) = Mosquitto::start("cli-window-kill9", "") else {
        return;
    };
    broker
        .enable_persistence("autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 0");
    let addr = broker.addr;
    let topic = format!("cli/kill9/{}", umqtt_tests::client_id("t"));
    let watcher = Watcher::start(addr, &topic, TOTAL);
    wait_until(Duration::from_secs(10), "mosquitto.db", || {
        broker.dir.join("mosquitto.db").exists()
    });
    // Default flags (window 20, -W 30, memory outbox); -d for the log of
    // PUBACKs the broker-loss check needs.
    let mut publisher = Running::spawn(&with(
        &cmd("pub", addr),
        &["-t", &topic, "-q", "1", "-l", "-d"],
    ));
    let started = Instant::now();
    let mut kills = Vec::new();
    for i in 0..TOTAL {
        publisher.feed_stdin(format!("{i}\n").as_bytes());
        thread::sleep(Duration::from_millis(4));
        if [TOTAL / 4, TOTAL / 2, 3 * TOTAL / 4].contains(&i) {
            // Once the subscriber saw most of what was written.
            wait_until(Duration::from_secs(20), "the stream", || {
                watcher.distinct() + 40 >= i
            });
            broker.kill(); // SIGKILL
            kills.push(Instant::now());
            broker.restart();
        }
    }
    let published = publisher.finish();
    assert_success(&published, "pub -l -q 1 through three broker SIGKILLs");
    assert_eq!(
        published.stderr.matches("\nreconnected").count()
            + usize::from(published.stderr.starts_with("reconnected")),
        3,
        "{}",
        published.stderr
    );
    let acked_at = acknowledged_at(&published.stderr, started, TOTAL);
    let report = lost_only_by_the_broker(&watcher.finish(), TOTAL, &acked_at, &kills);
    eprintln!(
        "pub -l -q 1: {TOTAL} lines through 3 SIGKILLs in {:?}, exit 0; {} duplicates, {} \
         acknowledged by mosquitto right before a kill and lost by it {:?}",
        published.took,
        report.duplicates,
        report.lost_by_broker.len(),
        report.lost_by_broker
    );
}
