//! The QoS 1 window (issue 16), on the wire: a publisher behind a slow link
//! (the fault proxy holding every packet 25 ms each way, a 50 ms round trip)
//! in front of mosquitto keeps as many PUBLISH packets in flight as its
//! window allows, and no more; a subscriber connected to mosquitto directly
//! receives every message, in order; every PUBACK reaches the ack callback
//! once; `flush_for` ends with nothing in flight. Both front-ends. And a
//! scripted broker that never acknowledges: a full window makes `publish`
//! wait for the ack timeout and fail with `Timeout(PubAck)`.
//!
//! What was on the wire is read from the proxy's record of every packet it
//! forwarded, in the order it forwarded them. Speed is the bench's business
//! (`umqtt-bench`, slow-link pass): these tests only print how long they took.

#[path = "support/fault_proxy.rs"]
mod fault_proxy;

use std::cell::RefCell;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fault_proxy::{Direction, FaultProxy, PUBACK, PUBLISH, Record};
use umqtt_simple::{Error, QoS, Waiting};
use umqtt_tests::tokio_net::{TokioNet, run_async};
use umqtt_tests::{
    ClientParts, FakeBroker, HANG_LIMIT, Mosquitto, WAIT, accept_connect, pump_until, read_packet,
};

/// One way of the slow link.
const LEG: Duration = Duration::from_millis(25);

/// The topic every message goes to.
const TOPIC: &[u8] = b"umqtt/window/stream";

/// How long `flush_for` may wait for the last PUBACKs.
const FLUSH_MS: u32 = 10_000;

/// The payload of message `i`: its number first, so an out-of-order or
/// missing message shows in a failure.
fn payload(i: usize) -> Vec<u8> {
    format!("{i:05} windowed QoS 1 message").into_bytes()
}

/// mosquitto, with room to queue every message for the subscriber (its
/// default queue of 1 000 QoS 1 messages would be the limit otherwise), and
/// without Nagle's algorithm: else it holds the later PUBACKs of a burst
/// until the proxy's kernel acknowledges the first, which it delays by up
/// to 40 ms (nothing goes back on that socket until the next burst), an
/// artefact of the emulated link that only costs time.
fn mosquitto(test: &str) -> Option<Mosquitto> {
    Mosquitto::start(test, "max_queued_messages 10000\nset_tcp_nodelay true")
}

/// What a publisher saw.
#[derive(Debug, Default)]
struct Published {
    /// The ids the ack callback heard, in the order it heard them.
    acked: Vec<u16>,
    /// What `flush_for` returned at the end.
    flushed: bool,
    /// `in_flight()` after it.
    in_flight_after: usize,
    /// The most `in_flight()` said right after a publish.
    peak: usize,
    /// From the first publish to the end of `flush_for`.
    elapsed: Duration,
}

/// `n` QoS 1 messages from a blocking client with a window of `window`,
/// connected to `addr`, then `flush_for`.
fn publish_blocking(addr: SocketAddr, n: usize, window: usize) -> Published {
    let acked = RefCell::new(Vec::new());
    let mut on_ack = |id: u16| acked.borrow_mut().push(id);
    let mut slots = vec![0u16; window];
    let mut parts = ClientParts::new("window-pub", 256, 256);
    let mut client = parts.client(|o| o);
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    assert_eq!(client.window_capacity(), window);
    client.connect(addr).expect("connect through the proxy");
    let mut peak = 0;
    let start = Instant::now();
    for i in 0..n {
        client
            .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
        assert!(
            client.in_flight() <= window,
            "more in flight than the window"
        );
        peak = peak.max(client.in_flight());
    }
    let flushed = client.flush_for(FLUSH_MS).expect("flush_for");
    let elapsed = start.elapsed();
    let in_flight_after = client.in_flight();
    client.disconnect().expect("disconnect");
    drop(client);
    Published {
        acked: acked.take(),
        flushed,
        in_flight_after,
        peak,
        elapsed,
    }
}

/// The same with the async client (tokio).
fn publish_async(addr: SocketAddr, n: usize, window: usize) -> Published {
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let acked = RefCell::new(Vec::new());
        let mut on_ack = |id: u16| acked.borrow_mut().push(id);
        let mut slots = vec![0u16; window];
        let mut parts = ClientParts::new("window-async-pub", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o);
        client.set_window(&mut slots);
        client.set_ack_callback(&mut on_ack);
        client
            .connect(addr)
            .await
            .expect("connect through the proxy");
        let mut peak = 0;
        let start = Instant::now();
        for i in 0..n {
            client
                .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
                .await
                .unwrap_or_else(|e| panic!("publish {i}: {e}"));
            assert!(
                client.in_flight() <= window,
                "more in flight than the window"
            );
            peak = peak.max(client.in_flight());
        }
        let flushed = client.flush_for(FLUSH_MS).await.expect("flush_for");
        let elapsed = start.elapsed();
        let in_flight_after = client.in_flight();
        client.disconnect().await.expect("disconnect");
        drop(client);
        Published {
            acked: acked.take(),
            flushed,
            in_flight_after,
            peak,
            elapsed,
        }
    })
}

/// Runs `publish` (given the proxy's address) in a thread of its own while
/// a subscriber connected to mosquitto directly collects the payloads on
/// [`TOPIC`]; returns what the publisher saw and what the subscriber got.
fn stream(
    mosquitto: &Mosquitto,
    proxy: &FaultProxy,
    n: usize,
    publish: impl FnOnce(SocketAddr) -> Published + Send + 'static,
) -> (Published, Vec<Vec<u8>>) {
    let mut parts = ClientParts::new("window-sub", 256, 1024);
    let (mut subscriber, inbox) = parts.observer(mosquitto.addr, TOPIC, QoS::AtLeastOnce);
    let (done, result) = mpsc::channel();
    let addr = proxy.addr;
    let publisher = thread::spawn(move || {
        let _ = done.send(publish(addr));
    });
    pump_until(&mut subscriber, HANG_LIMIT, || {
        inbox.len() >= n || publisher.is_finished()
    });
    let published = match result.recv_timeout(HANG_LIMIT) {
        Ok(published) => published,
        Err(_) => match publisher.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the publisher did not finish within {HANG_LIMIT:?}: a hang"),
        },
    };
    let _ = publisher.join();
    pump_until(&mut subscriber, WAIT, || inbox.len() >= n);
    // Anything beyond n would be a duplicate: give it a moment to show.
    pump_until(&mut subscriber, Duration::from_millis(200), || false);
    subscriber.disconnect().expect("subscriber disconnects");
    (published, inbox.payloads())
}

/// What the proxy's record says about the publisher's QoS 1 stream.
#[derive(Debug)]
struct Wire {
    /// Ids of the PUBLISH packets to the broker, in order.
    published: Vec<u16>,
    /// Ids of the PUBACK packets to the client, in order.
    acked: Vec<u16>,
    /// PUBLISH packets forwarded before the first PUBACK was.
    before_first_ack: usize,
    /// The most PUBLISH packets forwarded and not yet answered by a
    /// forwarded PUBACK, at any point.
    most_in_flight: usize,
    /// PUBLISH and PUBACK in the order forwarded: true for a PUBLISH.
    sequence: Vec<(bool, u16)>,
}

fn wire(records: &[Record]) -> Wire {
    let mut w = Wire {
        published: Vec::new(),
        acked: Vec::new(),
        before_first_ack: 0,
        most_in_flight: 0,
        sequence: Vec::new(),
    };
    let mut in_flight = 0usize;
    for r in records {
        let id = r.packet_id();
        match (r.dir, id) {
            (Direction::ToBroker, Some(id)) if r.is(PUBLISH) => {
                w.published.push(id);
                w.sequence.push((true, id));
                in_flight += 1;
                w.most_in_flight = w.most_in_flight.max(in_flight);
                if w.acked.is_empty() {
                    w.before_first_ack += 1;
                }
            }
            (Direction::ToClient, Some(id)) if r.is(PUBACK) => {
                w.acked.push(id);
                w.sequence.push((false, id));
                in_flight = in_flight.saturating_sub(1);
            }
            _ => {}
        }
    }
    w
}

fn sorted(ids: &[u16]) -> Vec<u16> {
    let mut ids = ids.to_vec();
    ids.sort_unstable();
    ids
}

/// The checks every windowed stream passes: all `n` messages arrived at the
/// subscriber, in order, once; `n` PUBLISH packets with distinct ids went
/// out and each PUBACK reached the ack callback exactly once; `flush_for`
/// ended with nothing in flight; never more than `window` in flight.
fn assert_stream(n: usize, window: usize, published: &Published, received: &[Vec<u8>], w: &Wire) {
    let expected: Vec<Vec<u8>> = (0..n).map(payload).collect();
    assert_eq!(
        received.len(),
        n,
        "the subscriber got {} of {n}",
        received.len()
    );
    assert!(received == expected, "the messages arrived out of order");
    assert_eq!(w.published.len(), n, "one PUBLISH per message, no resends");
    let ids = sorted(&w.published);
    assert!(ids.windows(2).all(|p| p[0] != p[1]), "an id used twice");
    assert_eq!(
        published.acked.len(),
        n,
        "the ack callback heard {} acks",
        published.acked.len()
    );
    assert_eq!(
        sorted(&published.acked),
        ids,
        "the ack callback heard other ids"
    );
    assert_eq!(sorted(&w.acked), ids, "the PUBACKs on the wire");
    assert!(published.flushed, "flush_for: not all acknowledged");
    assert_eq!(published.in_flight_after, 0);
    assert!(published.peak <= window);
    assert!(
        w.most_in_flight <= window,
        "{} in flight on the wire",
        w.most_in_flight
    );
}

fn report(what: &str, n: usize, published: &Published, w: &Wire) {
    println!(
        "{what}: {n} messages in {:.2} s over a {} ms round trip; {} PUBLISH before the first \
         PUBACK, at most {} in flight on the wire, at most {} reported by in_flight()",
        published.elapsed.as_secs_f64(),
        (2 * LEG).as_millis(),
        w.before_first_ack,
        w.most_in_flight,
        published.peak
    );
}

#[test]
fn window_of_32_keeps_32_publishes_in_flight_on_a_slow_link_and_all_1000_arrive_in_order() {
    let Some(broker) = mosquitto("window_of_32") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 1000;
    let (published, received) = stream(&broker, &proxy, n, move |addr| {
        publish_blocking(addr, n, 32)
    });
    let w = wire(&proxy.records());
    report("blocking, window 32", n, &published, &w);
    assert_stream(n, 32, &published, &received, &w);
    assert_eq!(
        w.before_first_ack, 32,
        "the whole window left before the first PUBACK came back"
    );
    assert_eq!(w.most_in_flight, 32);
    assert_eq!(published.peak, 32);
}

#[test]
fn async_window_of_32_keeps_32_publishes_in_flight_on_a_slow_link_and_all_arrive_in_order() {
    let Some(broker) = mosquitto("async_window_of_32") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 400;
    let (published, received) = stream(&broker, &proxy, n, move |addr| publish_async(addr, n, 32));
    let w = wire(&proxy.records());
    report("async, window 32", n, &published, &w);
    assert_stream(n, 32, &published, &received, &w);
    assert_eq!(w.before_first_ack, 32);
    assert_eq!(w.most_in_flight, 32);
}

/// A window of one: PUBLISH, its PUBACK, the next PUBLISH, and so on.
fn assert_one_at_a_time(w: &Wire) {
    assert_eq!(w.before_first_ack, 1);
    assert_eq!(w.most_in_flight, 1);
    for (i, pair) in w.sequence.chunks(2).enumerate() {
        match pair {
            [(true, sent), (false, acked)] => {
                assert_eq!(sent, acked, "message {i}: the PUBACK of another id");
            }
            other => panic!("message {i}: {other:?} instead of PUBLISH then its PUBACK"),
        }
    }
}

#[test]
fn window_of_1_keeps_one_publish_in_flight_at_a_time() {
    let Some(broker) = mosquitto("window_of_1") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 20;
    let (published, received) =
        stream(&broker, &proxy, n, move |addr| publish_blocking(addr, n, 1));
    let w = wire(&proxy.records());
    report("blocking, window 1", n, &published, &w);
    assert_stream(n, 1, &published, &received, &w);
    assert_one_at_a_time(&w);
    assert_eq!(published.peak, 1);
}

#[test]
fn async_window_of_1_keeps_one_publish_in_flight_at_a_time() {
    let Some(broker) = mosquitto("async_window_of_1") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 20;
    let (published, received) = stream(&broker, &proxy, n, move |addr| publish_async(addr, n, 1));
    let w = wire(&proxy.records());
    report("async, window 1", n, &published, &w);
    assert_stream(n, 1, &published, &received, &w);
    assert_one_at_a_time(&w);
}

/// The window of the no-PUBACK tests, and their ack timeout.
const SILENT_WINDOW: usize = 4;
const ACK_TIMEOUT_MS: u32 = 400;
/// The least a wait for the ack timeout can take: the client's clock counts
/// whole milliseconds, so its deadline may fall up to 1 ms early.
const ACK_TIMEOUT_AT_LEAST: Duration = Duration::from_millis(ACK_TIMEOUT_MS as u64 - 1);

/// A broker that accepts the connection and reads PUBLISH packets without
/// ever acknowledging one, until the client closes; reports how many came.
fn silent_broker() -> (FakeBroker, mpsc::Receiver<usize>) {
    let (count, counted) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut stream: TcpStream| {
        accept_connect(&mut stream);
        let mut publishes = 0;
        while let Ok(packet) = read_packet(&mut stream) {
            assert_eq!(packet[0] & 0xf6, 0x32, "only QoS 1 PUBLISH packets");
            publishes += 1;
        }
        let _ = count.send(publishes);
    });
    (broker, counted)
}

fn assert_silent_broker_saw_the_window(broker: FakeBroker, counted: &mpsc::Receiver<usize>) {
    let publishes = counted.recv_timeout(HANG_LIMIT);
    // A failed assertion in the script is re-raised here.
    broker.join();
    let publishes = publishes.expect("the broker's count");
    assert_eq!(
        publishes, SILENT_WINDOW,
        "the PUBLISH that found the window full was never sent"
    );
}

#[test]
fn full_window_without_pubacks_makes_publish_time_out_waiting_for_puback() {
    let (broker, counted) = silent_broker();
    let addr = broker.addr;
    umqtt_tests::run_in_thread_within(HANG_LIMIT, move || {
        let mut slots = [0u16; SILENT_WINDOW];
        let mut parts = ClientParts::new("window-silent", 256, 256);
        let mut client = parts.client(|o| o.ack_timeout_ms(ACK_TIMEOUT_MS));
        client.set_window(&mut slots);
        client.connect(addr).expect("connect");
        for i in 0..SILENT_WINDOW {
            client
                .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
                .expect("a publish with room in the window returns without its PUBACK");
        }
        assert_eq!(client.in_flight(), SILENT_WINDOW);
        // flush_for gives up without closing the connection.
        assert!(!client.flush_for(100).expect("flush_for"));
        assert!(client.is_connected());
        let start = Instant::now();
        let full = client.publish(TOPIC, &payload(SILENT_WINDOW), false, QoS::AtLeastOnce);
        let waited = start.elapsed();
        assert!(
            matches!(full, Err(Error::Timeout(Waiting::PubAck))),
            "{full:?}"
        );
        assert!(
            waited >= ACK_TIMEOUT_AT_LEAST,
            "gave up after {waited:?}, before the ack timeout"
        );
        assert!(
            !client.is_connected(),
            "a missing PUBACK ends the connection"
        );
        println!("full window, no PUBACK: Timeout(PubAck) after {waited:?}");
    });
    assert_silent_broker_saw_the_window(broker, &counted);
}

#[test]
fn async_full_window_without_pubacks_makes_publish_time_out_waiting_for_puback() {
    let (broker, counted) = silent_broker();
    let addr = broker.addr;
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut slots = [0u16; SILENT_WINDOW];
        let mut parts = ClientParts::new("window-async-silent", 256, 256);
        let (mut client, _) =
            parts.async_client_with_inbox(&net, |o| o.ack_timeout_ms(ACK_TIMEOUT_MS));
        client.set_window(&mut slots);
        client.connect(addr).await.expect("connect");
        for i in 0..SILENT_WINDOW {
            client
                .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
                .await
                .expect("a publish with room in the window returns without its PUBACK");
        }
        assert_eq!(client.in_flight(), SILENT_WINDOW);
        assert!(!client.flush_for(100).await.expect("flush_for"));
        assert!(client.is_connected());
        let start = Instant::now();
        let full = client
            .publish(TOPIC, &payload(SILENT_WINDOW), false, QoS::AtLeastOnce)
            .await;
        let waited = start.elapsed();
        assert!(
            matches!(full, Err(Error::Timeout(Waiting::PubAck))),
            "{full:?}"
        );
        assert!(waited >= ACK_TIMEOUT_AT_LEAST, "gave up after {waited:?}");
        assert!(!client.is_connected());
    });
    assert_silent_broker_saw_the_window(broker, &counted);
}

/// `republish` takes the id of a message still in flight (the window lets
/// it through without a second slot), so the broker gets the message twice
/// and acknowledges each copy: the second PUBACK is for an id no longer in
/// flight, and must not end the connection.
#[test]
fn republishing_a_message_still_in_flight_survives_the_second_puback() {
    let Some(broker) = mosquitto("republish_in_flight") else {
        return;
    };
    let acked = RefCell::new(Vec::new());
    let mut on_ack = |id: u16| acked.borrow_mut().push(id);
    let mut slots = [0u16; 4];
    let mut parts = ClientParts::new("window-republish", 256, 256);
    let mut client = parts.client(|o| o);
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    client.connect(broker.addr).expect("connect");
    let id = client.take_packet_id();
    client
        .publish_with_id(TOPIC, b"once", false, id)
        .expect("publish_with_id");
    assert!(client.is_in_flight(id));
    client
        .republish(TOPIC, b"once", false, id)
        .expect("republish while in flight");
    assert_eq!(client.in_flight(), 1, "one message, one slot");
    assert!(client.flush_for(5_000).expect("flush_for"));
    // The second PUBACK arrives now, if not before: handled, no error.
    let handled = client.wait_msg_for(300);
    assert!(
        handled.is_ok(),
        "the broker's PUBACK of the copy: {handled:?}"
    );
    assert!(client.is_connected());
    client
        .publish(TOPIC, b"after", false, QoS::AtLeastOnce)
        .expect("publish after");
    assert!(client.flush_for(5_000).expect("flush_for"));
    client.disconnect().expect("disconnect");
    drop(client);
    let acked = acked.take();
    assert_eq!(acked.first(), Some(&id));
    assert_eq!(
        acked.iter().filter(|&&a| a == id).count(),
        1,
        "the copy's PUBACK is not reported again: {acked:?}"
    );
}

/// PUBACKs of windowed messages that arrive while `subscribe` waits for its
/// SUBACK are matched and reported like any other.
#[test]
fn pubacks_arriving_during_subscribe_are_counted() {
    let Some(broker) = mosquitto("pubacks_during_subscribe") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let acked = RefCell::new(Vec::new());
    let mut on_ack = |id: u16| acked.borrow_mut().push(id);
    let mut slots = [0u16; 8];
    let mut parts = ClientParts::new("window-subscribe", 256, 256);
    let (mut client, inbox) = parts.client_with_inbox(|o| o);
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    client.connect(proxy.addr).expect("connect");
    for i in 0..8 {
        client
            .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
            .expect("publish");
    }
    assert_eq!(client.in_flight(), 8);
    // The SUBACK comes a round trip later, behind the 8 PUBACKs.
    client
        .subscribe(b"umqtt/window/other", QoS::AtLeastOnce)
        .expect("subscribe");
    assert_eq!(client.in_flight(), 0, "the PUBACKs came before the SUBACK");
    assert_eq!(acked.borrow().len(), 8);
    assert!(client.flush_for(1_000).expect("flush_for"));
    assert!(inbox.is_empty());
    client.disconnect().expect("disconnect");
}

/// A windowed publisher subscribed to its own topic at QoS 1: while it
/// waits for room, its messages come back (each to be acknowledged by the
/// client, mixed with the broker's PUBACKs); every one arrives, in order.
#[test]
fn windowed_publisher_gets_its_own_qos1_messages_back_in_order() {
    let Some(broker) = mosquitto("window_own_topic") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 200;
    let acked = RefCell::new(0usize);
    let mut on_ack = |_: u16| *acked.borrow_mut() += 1;
    let mut slots = [0u16; 8];
    let mut parts = ClientParts::new("window-own", 256, 1024);
    let (mut client, inbox) = parts.client_with_inbox(|o| o);
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    client.connect(proxy.addr).expect("connect");
    client
        .subscribe(TOPIC, QoS::AtLeastOnce)
        .expect("subscribe");
    for i in 0..n {
        client
            .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
    assert!(client.flush_for(10_000).expect("flush_for"));
    assert!(pump_until(&mut client, WAIT, || inbox.len() >= n));
    let expected: Vec<Vec<u8>> = (0..n).map(payload).collect();
    assert!(inbox.payloads() == expected, "out of order or missing");
    assert_eq!(*acked.borrow(), n);
    client.disconnect().expect("disconnect");
    // The client acknowledged every message that came back (the last
    // PUBACKs are still on the slow link when disconnect returns).
    let acks_from_client = || {
        proxy
            .records()
            .iter()
            .filter(|r| r.dir == Direction::ToBroker && r.is(PUBACK))
            .count()
    };
    let start = Instant::now();
    while acks_from_client() < n && start.elapsed() < WAIT {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(acks_from_client(), n);
}

/// The same with the async client.
#[test]
fn async_republishing_a_message_still_in_flight_survives_the_second_puback() {
    let Some(broker) = mosquitto("async_republish_in_flight") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut slots = [0u16; 4];
        let mut parts = ClientParts::new("window-async-republish", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o);
        client.set_window(&mut slots);
        client.connect(broker.addr).await.expect("connect");
        let id = client.take_packet_id();
        client
            .publish_with_id(TOPIC, b"once", false, id)
            .await
            .expect("publish_with_id");
        client
            .republish(TOPIC, b"once", false, id)
            .await
            .expect("republish while in flight");
        assert!(client.flush_for(5_000).await.expect("flush_for"));
        let handled = client.wait_msg_for(300).await;
        assert!(
            handled.is_ok(),
            "the broker's PUBACK of the copy: {handled:?}"
        );
        assert!(client.is_connected());
        client.disconnect().await.expect("disconnect");
    });
}

/// QoS 0 messages batched in the transmit buffer (`batch_qos0`) and
/// windowed QoS 1 messages, alternating: the wire order is the publish
/// order.
#[test]
fn batched_qos0_and_windowed_qos1_leave_in_publish_order() {
    let Some(broker) = mosquitto("window_and_batch") else {
        return;
    };
    let proxy = FaultProxy::slow_link(broker.addr, LEG);
    let n = 100;
    let mut slots = [0u16; 8];
    let mut parts = ClientParts::new("window-batch", 1024, 256);
    let mut client = parts.client(|o| o.batch_qos0(true));
    client.set_window(&mut slots);
    client.connect(proxy.addr).expect("connect");
    for i in 0..n {
        let qos = if i % 2 == 0 {
            QoS::AtMostOnce
        } else {
            QoS::AtLeastOnce
        };
        client
            .publish(TOPIC, &payload(i), false, qos)
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
    assert!(client.flush_for(10_000).expect("flush_for"));
    client.disconnect().expect("disconnect");
    let published = || {
        proxy
            .records()
            .iter()
            .filter(|r| r.dir == Direction::ToBroker && r.is(PUBLISH))
            .map(|r| r.packet.clone())
            .collect::<Vec<_>>()
    };
    let start = Instant::now();
    while published().len() < n && start.elapsed() < WAIT {
        thread::sleep(Duration::from_millis(10));
    }
    let wire = published();
    assert_eq!(wire.len(), n);
    for (i, packet) in wire.iter().enumerate() {
        assert!(
            packet.ends_with(&payload(i)),
            "PUBLISH {i} on the wire carries another message"
        );
        assert_eq!(packet[0] & 0x06 != 0, i % 2 == 1, "message {i}'s QoS");
    }
}
