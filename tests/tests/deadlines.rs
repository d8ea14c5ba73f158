//! Deadlines against scripted fake brokers that stay silent: every wait ends
//! in the right `Error::Timeout(Waiting::X)`, and keepalive pings happen by
//! themselves.
//!
//! The machine is noisy, so timing is asserted loosely: an upper bound of the
//! deadline plus [`SLACK`], and (to catch a deadline that fires at once) a
//! lower bound of half the deadline. Every client runs in its own thread under
//! a hard limit ([`run_in_thread_within`] and [`HANG_LIMIT`]), so a hang fails
//! the test instead of blocking the suite.

use std::io::Write;
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::{Error, Message, Options, QoS, Waiting};
use umqtt_tests::{
    FakeBroker, HANG_LIMIT, StdClient, StdClientError, accept_connect, read_packet,
    run_in_thread_within, std_client, to_hex,
};

/// Allowed lateness on top of a deadline.
const SLACK: Duration = Duration::from_secs(2);

/// What a silent broker saw on one connection.
#[derive(Debug)]
struct Seen {
    /// Every packet, as hex, in order.
    packets: Vec<String>,
    /// Whether the client closed the connection (end of file or reset),
    /// rather than the broker's 20 s read timeout ending the script.
    closed_by_client: bool,
}

/// A broker that answers CONNECT (if `connack`) and then nothing at all,
/// reporting what it received once the client closes the connection.
fn silent_broker(connack: bool) -> (FakeBroker, Receiver<Seen>) {
    let (tx, rx) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut s| {
        let mut packets = Vec::new();
        if connack {
            packets.push(to_hex(&accept_connect(&mut s)));
        }
        let closed_by_client = loop {
            match read_packet(&mut s) {
                Ok(p) => packets.push(to_hex(&p)),
                Err(e) => {
                    break !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    );
                }
            }
        };
        let _ = tx.send(Seen {
            packets,
            closed_by_client,
        });
    });
    (broker, rx)
}

/// Asserts `elapsed` lies between half of `deadline` and `deadline + SLACK`.
fn assert_took(elapsed: Duration, deadline: Duration, what: &str) {
    assert!(
        elapsed <= deadline + SLACK,
        "{what}: returned after {elapsed:?}, deadline {deadline:?}"
    );
    assert!(
        elapsed >= deadline / 2,
        "{what}: returned after {elapsed:?}, before its {deadline:?} deadline"
    );
}

fn seen(rx: &Receiver<Seen>) -> Seen {
    rx.recv_timeout(Duration::from_secs(5))
        .expect("the broker script reports once the client closes")
}

/// What became of a request to a broker that never answers it.
struct Unanswered<T> {
    /// What the request returned.
    result: Result<T, StdClientError>,
    /// How long it took.
    elapsed: Duration,
    /// Whether the client was still connected right after it.
    connected: bool,
    /// What the broker saw.
    seen: Seen,
}

/// Connects a client with `options` (and a callback that ignores messages;
/// none come) to a broker that answers CONNECT and then nothing at all, and
/// times `request`.
fn unanswered<T: Send + 'static>(
    options: Options<'static>,
    request: impl FnOnce(&mut StdClient<'_>) -> Result<T, StdClientError> + Send + 'static,
) -> Unanswered<T> {
    let (broker, report) = silent_broker(true);
    let addr = broker.addr;
    let (result, elapsed, connected) = run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = std_client(&mut tx, &mut rx, options);
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        let start = Instant::now();
        let result = request(&mut client);
        (result, start.elapsed(), client.is_connected())
    });
    let seen = seen(&report);
    broker.join();
    Unanswered {
        result,
        elapsed,
        connected,
        seen,
    }
}

// ---------------------------------------------------------------------------
// 9. CONNACK never comes
// ---------------------------------------------------------------------------

#[test]
fn connect_without_connack_times_out_waiting_connack() {
    let (broker, report) = silent_broker(false);
    let addr = broker.addr;
    let (result, elapsed, connected) = run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(
            &mut tx,
            &mut rx,
            Options::new("umqtt_client").connect_timeout_ms(500),
        );
        let start = Instant::now();
        let result = client.connect(addr);
        (result, start.elapsed(), client.is_connected())
    });
    assert_eq!(result, Err(Error::Timeout(Waiting::ConnAck)));
    assert_took(elapsed, Duration::from_millis(500), "connect");
    assert!(!connected);
    let seen = seen(&report);
    broker.join();
    assert_eq!(
        seen.packets.len(),
        1,
        "only the CONNECT: {:?}",
        seen.packets
    );
    assert!(seen.packets[0].starts_with("10"));
    assert!(
        seen.closed_by_client,
        "the client closes the connection it gave up on"
    );
}

// ---------------------------------------------------------------------------
// 10. PUBACK never comes
// ---------------------------------------------------------------------------

#[test]
fn qos1_publish_without_puback_times_out_waiting_puback_and_disconnects() {
    let (broker, report) = silent_broker(true);
    let addr = broker.addr;
    let (result, elapsed, connected, after) = run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(
            &mut tx,
            &mut rx,
            Options::new("umqtt_client").ack_timeout_ms(500),
        );
        client.connect(addr).unwrap();
        let start = Instant::now();
        let result = client.publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce);
        let elapsed = start.elapsed();
        let connected = client.is_connected();
        let after = client.publish(b"foo_topic", b"hello", false, QoS::AtMostOnce);
        (result, elapsed, connected, after)
    });
    assert_eq!(result, Err(Error::Timeout(Waiting::PubAck)));
    assert_took(elapsed, Duration::from_millis(500), "publish");
    assert!(!connected, "a missing PUBACK ends the connection");
    assert_eq!(after, Err(Error::NotConnected));
    let seen = seen(&report);
    broker.join();
    assert_eq!(
        seen.packets[1..],
        ["32120009666f6f5f746f706963000168656c6c6f".to_string()]
    );
    assert!(seen.closed_by_client);
}

// ---------------------------------------------------------------------------
// 11. SUBACK / UNSUBACK never come
// ---------------------------------------------------------------------------

#[test]
fn subscribe_without_suback_times_out_waiting_suback() {
    let got = unanswered(Options::new("umqtt_client").ack_timeout_ms(500), |c| {
        c.subscribe(b"foo_topic", QoS::AtMostOnce)
    });
    assert_eq!(got.result, Err(Error::Timeout(Waiting::SubAck)));
    assert_took(got.elapsed, Duration::from_millis(500), "subscribe");
    assert!(!got.connected);
    assert_eq!(
        got.seen.packets[1..],
        ["820e00010009666f6f5f746f70696300".to_string()]
    );
    assert!(got.seen.closed_by_client);
}

#[test]
fn unsubscribe_without_unsuback_times_out_waiting_unsuback() {
    let got = unanswered(Options::new("umqtt_client").ack_timeout_ms(500), |c| {
        c.unsubscribe(b"foo_topic")
    });
    assert_eq!(got.result, Err(Error::Timeout(Waiting::UnsubAck)));
    assert_took(got.elapsed, Duration::from_millis(500), "unsubscribe");
    assert!(!got.connected);
    assert_eq!(
        got.seen.packets[1..],
        ["a20d00010009666f6f5f746f706963".to_string()]
    );
    assert!(got.seen.closed_by_client);
}

// ---------------------------------------------------------------------------
// 12. PINGRESP never comes
// ---------------------------------------------------------------------------

#[test]
fn wait_msg_pings_after_keepalive_and_times_out_waiting_pingresp() {
    let options = Options::new("umqtt_client")
        .keepalive(1)
        .ping_timeout_ms(500);
    let got = unanswered(options, |c| c.wait_msg());
    assert_eq!(got.result, Err(Error::Timeout(Waiting::PingResp)));
    // Keepalive 1 s, then 500 ms for the PINGRESP.
    assert_took(got.elapsed, Duration::from_millis(1_500), "wait_msg");
    assert!(!got.connected);
    assert_eq!(
        got.seen.packets[1..],
        ["c000".to_string()],
        "exactly one PINGREQ, then the client gives up"
    );
    assert!(got.seen.closed_by_client);
}

// ---------------------------------------------------------------------------
// 13. Idle clients ping by themselves
// ---------------------------------------------------------------------------

#[test]
fn idle_client_pings_by_itself_in_wait_msg_and_check_msg_and_stays_connected() {
    let pings = Arc::new(AtomicUsize::new(0));
    let (tx_seen, report) = mpsc::channel();
    let broker_pings = Arc::clone(&pings);
    let broker = FakeBroker::start(1, move |_, mut s| {
        s.set_nodelay(true).ok();
        let mut packets = vec![to_hex(&accept_connect(&mut s))];
        while let Ok(p) = read_packet(&mut s) {
            if p == [0xc0, 0x00] {
                broker_pings.fetch_add(1, Ordering::SeqCst);
                if s.write_all(&[0xd0, 0x00]).is_err() {
                    break;
                }
            }
            packets.push(to_hex(&p));
        }
        let _ = tx_seen.send(packets);
    });
    let addr = broker.addr;
    let client_pings = Arc::clone(&pings);
    let (after_wait, after_check, check_phase) = run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(&mut tx, &mut rx, Options::new("umqtt_client").keepalive(1));
        client.connect(addr).unwrap();
        // wait_msg: nothing but the PINGRESP will arrive, so each call returns
        // once it handled the answer to the PINGREQ it sent itself.
        for i in 0..2 {
            let start = Instant::now();
            client
                .wait_msg()
                .unwrap_or_else(|e| panic!("wait_msg {i}: {e:?}"));
            assert!(
                start.elapsed() <= Duration::from_secs(1) + SLACK,
                "wait_msg {i} took {:?}",
                start.elapsed()
            );
            assert!(client.is_connected());
        }
        let after_wait = client_pings.load(Ordering::SeqCst);
        // check_msg in a polling loop: never waits, still pings when due.
        let start = Instant::now();
        while client_pings.load(Ordering::SeqCst) < after_wait + 2
            && start.elapsed() < Duration::from_secs(8)
        {
            let t = Instant::now();
            client
                .check_msg()
                .unwrap_or_else(|e| panic!("check_msg after {:?}: {e:?}", start.elapsed()));
            assert!(
                t.elapsed() < Duration::from_secs(1),
                "check_msg waited {:?}",
                t.elapsed()
            );
            thread::sleep(Duration::from_millis(50));
        }
        let check_phase = start.elapsed();
        // Let the last PINGRESP in.
        let settle = Instant::now();
        while settle.elapsed() < Duration::from_millis(200) {
            client.check_msg().unwrap();
            thread::sleep(Duration::from_millis(20));
        }
        assert!(client.is_connected(), "answered pings keep the connection");
        client.disconnect().unwrap();
        (after_wait, client_pings.load(Ordering::SeqCst), check_phase)
    });
    let packets = report
        .recv_timeout(Duration::from_secs(5))
        .expect("broker report");
    broker.join();
    assert_eq!(after_wait, 2, "one PINGREQ per wait_msg call");
    assert!(
        after_check >= after_wait + 2,
        "at least 2 PINGREQs while polling check_msg; saw {} in {check_phase:?}",
        after_check - after_wait
    );
    assert!(
        check_phase <= Duration::from_millis(2_500) + SLACK,
        "2 pings took {check_phase:?}"
    );
    assert_eq!(packets.last().map(String::as_str), Some("e000"));
    assert!(
        packets[1..packets.len() - 1].iter().all(|p| p == "c000"),
        "{packets:?}"
    );
}

// ---------------------------------------------------------------------------
// 14. Publishing resets the keepalive
// ---------------------------------------------------------------------------

#[test]
fn publish_only_client_stays_connected_without_pingreq_since_publishes_reset_keepalive() {
    let (tx_seen, report) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut s: TcpStream| {
        accept_connect(&mut s);
        // A broker drops a client silent for 1.5 × keepalive.
        s.set_read_timeout(Some(Duration::from_millis(1_500)))
            .unwrap();
        let mut packets = Vec::new();
        let outcome = loop {
            match read_packet(&mut s) {
                Ok(p) => {
                    if p == [0xc0, 0x00] {
                        let _ = s.write_all(&[0xd0, 0x00]);
                    }
                    packets.push(to_hex(&p));
                }
                Err(e) => break e.kind(),
            }
        };
        let _ = tx_seen.send((packets, outcome));
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(&mut tx, &mut rx, Options::new("umqtt_client").keepalive(1));
        client.connect(addr).unwrap();
        for i in 0..10u8 {
            thread::sleep(Duration::from_millis(300));
            client
                .publish(b"t", &[b'0' + i], false, QoS::AtMostOnce)
                .unwrap_or_else(|e| panic!("publish {i}: {e:?}"));
            assert!(client.is_connected(), "after publish {i}");
        }
        client.disconnect().unwrap();
    });
    let (packets, outcome) = report
        .recv_timeout(Duration::from_secs(5))
        .expect("broker report");
    broker.join();
    assert!(
        !matches!(
            outcome,
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "the broker's keepalive expired: the client went silent ({packets:?})"
    );
    let pings = packets.iter().filter(|p| *p == "c000").count();
    let publishes = packets.iter().filter(|p| p.starts_with("30")).count();
    assert_eq!(publishes, 10, "{packets:?}");
    assert_eq!(
        pings, 0,
        "publishes reset the keepalive, no PINGREQ needed: {packets:?}"
    );
    assert_eq!(packets.last().map(String::as_str), Some("e000"));
}
