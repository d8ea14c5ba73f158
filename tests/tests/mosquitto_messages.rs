//! Messages through a real mosquitto (started by each test on its own
//! loopback port; skipped when it is not installed): QoS and its downgrade,
//! retained messages, unsubscribe, packet id wrap, UTF-8, large and oversized
//! messages, and a QoS 1 message that comes back inside `publish`.

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::{Error, Message, QoS};
use umqtt_tests::{
    ClientParts, Inbox, MOSQUITTO_QUIET_LOG, Mosquitto, QUIET, StdClient, StdClientError, WAIT,
    pump_for, pump_until,
};

/// Waits (up to [`WAIT`]) until `wait_msg_for` handles a packet or fails,
/// and returns that outcome; `Ok(false)` if nothing came.
fn next_outcome(client: &mut StdClient<'_>) -> Result<bool, StdClientError> {
    let start = Instant::now();
    while start.elapsed() < WAIT {
        if client.wait_msg_for(100)? {
            return Ok(true);
        }
    }
    Ok(false)
}

/// Aborts the test process if it is still alive after `limit`: `wait_msg`
/// has no deadline, and a test must not hang forever when a message is lost.
struct Watchdog(Arc<AtomicBool>);

impl Watchdog {
    fn start(what: &'static str, limit: Duration) -> Self {
        let done = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&done);
        thread::spawn(move || {
            let start = Instant::now();
            while !flag.load(Ordering::Relaxed) {
                if start.elapsed() > limit {
                    eprintln!("{what}: still blocked after {limit:?}; aborting");
                    std::process::abort();
                }
                thread::sleep(Duration::from_millis(50));
            }
        });
        Watchdog(done)
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// A payload whose every byte depends on its position, so a shifted,
/// truncated or reordered copy is noticed.
fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| ((i % 251) as u8) ^ ((i / 251) as u8).wrapping_mul(7) ^ seed)
        .collect()
}

/// Bytes of a PUBLISH packet with these field sizes (MQTT 3.1.1).
fn publish_packet_size(topic: usize, payload: usize, qos: QoS) -> usize {
    let id = if qos == QoS::AtLeastOnce { 2 } else { 0 };
    let remaining = 2 + topic + id + payload;
    let varint = match remaining {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    };
    1 + varint + remaining
}

/// The messages published by the QoS tests, each to a subscription at QoS 0
/// or 1: (topic, payload, publish QoS, QoS mosquitto must deliver with).
const QOS_CASES: [(&[u8], &[u8], QoS, QoS); 4] = [
    (
        b"qos/sub0/a",
        b"pub0-sub0",
        QoS::AtMostOnce,
        QoS::AtMostOnce,
    ),
    (
        b"qos/sub0/b",
        b"pub1-sub0",
        QoS::AtLeastOnce,
        QoS::AtMostOnce,
    ),
    (
        b"qos/sub1/a",
        b"pub0-sub1",
        QoS::AtMostOnce,
        QoS::AtMostOnce,
    ),
    (
        b"qos/sub1/b",
        b"pub1-sub1",
        QoS::AtLeastOnce,
        QoS::AtLeastOnce,
    ),
];

/// Subscribes `sub` (connected) to `qos/sub0/#` at QoS 0 and `qos/sub1/#`
/// at QoS 1, then publishes [`QOS_CASES`] from a second client.
fn subscribe_and_publish_qos_cases(broker: &Mosquitto, sub: &mut StdClient<'_>) {
    assert_eq!(
        sub.subscribe(b"qos/sub0/#", QoS::AtMostOnce).unwrap(),
        QoS::AtMostOnce
    );
    assert_eq!(
        sub.subscribe(b"qos/sub1/#", QoS::AtLeastOnce).unwrap(),
        QoS::AtLeastOnce
    );
    let mut publisher_parts = ClientParts::new("qos-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);
    for (topic, payload, qos, _) in QOS_CASES {
        publisher.publish(topic, payload, false, qos).unwrap();
    }
    publisher.disconnect().unwrap();
}

/// Checks that every QoS case arrived once, with the lower of the two QoS.
fn assert_qos_cases_delivered(inbox: &Inbox) {
    let got = inbox.all();
    assert_eq!(got.len(), QOS_CASES.len(), "received: {got:?}");
    for (topic, payload, publish_qos, delivered_qos) in QOS_CASES {
        let m = got
            .iter()
            .find(|m| m.topic == topic)
            .unwrap_or_else(|| panic!("{} missing", String::from_utf8_lossy(topic)));
        assert_eq!(m.payload, payload);
        assert_eq!(
            m.qos,
            delivered_qos,
            "{}: published at {publish_qos:?}",
            String::from_utf8_lossy(topic)
        );
        assert!(!m.retain);
    }
}

#[test]
fn qos0_and_qos1_arrive_through_wait_msg_at_the_lower_of_publish_and_subscription_qos() {
    let Some(broker) = Mosquitto::start("qos_wait_msg", "") else {
        return;
    };
    let mut parts = ClientParts::new("qos-wait", 1024, 1024);
    let (mut sub, inbox) = parts.connected_with_inbox(broker.addr);
    subscribe_and_publish_qos_cases(&broker, &mut sub);
    // The publisher's PUBACKs mean every message is on its way: wait_msg
    // (no deadline) must return once per message.
    let _watchdog = Watchdog::start("wait_msg", Duration::from_secs(30));
    while inbox.len() < QOS_CASES.len() {
        sub.wait_msg().unwrap();
    }
    pump_for(&mut sub, Duration::from_millis(200));
    assert_qos_cases_delivered(&inbox);
    sub.disconnect().unwrap();
}

#[test]
fn qos0_and_qos1_arrive_through_check_msg_at_the_lower_of_publish_and_subscription_qos() {
    let Some(broker) = Mosquitto::start("qos_check_msg", "") else {
        return;
    };
    let mut parts = ClientParts::new("qos-check", 1024, 1024);
    let (mut sub, inbox) = parts.connected_with_inbox(broker.addr);
    subscribe_and_publish_qos_cases(&broker, &mut sub);
    let start = Instant::now();
    let mut handled = 0;
    while inbox.len() < QOS_CASES.len() && start.elapsed() < WAIT {
        if sub.check_msg().unwrap() {
            handled += 1;
        } else {
            thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(
        handled,
        QOS_CASES.len(),
        "check_msg reports each message it handled"
    );
    assert_qos_cases_delivered(&inbox);
    sub.disconnect().unwrap();
}

#[test]
fn retained_message_reaches_later_subscriber_with_retain_flag_until_cleared_by_empty_retained_publish()
 {
    let Some(broker) = Mosquitto::start("retained", "") else {
        return;
    };
    let topic = b"retained/status";
    let mut publisher_parts = ClientParts::new("retain-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);
    publisher
        .publish(topic, b"kept", true, QoS::AtLeastOnce)
        .unwrap();

    // A subscriber arriving later gets the retained message, flagged retain.
    let mut late_parts = ClientParts::new("retain-late", 256, 256);
    let (mut late, early) = late_parts.observer(broker.addr, topic, QoS::AtLeastOnce);
    assert!(
        pump_until(&mut late, WAIT, || !early.is_empty()),
        "retained message missing"
    );
    let got = early.all();
    assert_eq!(got[0].topic, topic);
    assert_eq!(got[0].payload, b"kept");
    assert!(
        got[0].retain,
        "a retained message sent on subscribe carries the retain flag"
    );

    // The empty retained publish clears it; a subscriber that is already there
    // gets it as a live (not retained) empty message.
    publisher
        .publish(topic, b"", true, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut late, WAIT, || early.len() >= 2),
        "the clearing message missing"
    );
    let got = early.all();
    assert_eq!(got[1].payload, b"");
    assert!(
        !got[1].retain,
        "live delivery to an existing subscription has retain clear"
    );
    late.disconnect().unwrap();

    // A new subscriber gets nothing retained: only the control message
    // published after its SUBACK (a retained message would come first).
    let mut fresh_parts = ClientParts::new("retain-after-clear", 256, 256);
    let (mut fresh, after) = fresh_parts.observer(broker.addr, topic, QoS::AtLeastOnce);
    publisher
        .publish(topic, b"control", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut fresh, WAIT, || !after.is_empty()),
        "control message missing"
    );
    pump_for(&mut fresh, QUIET);
    let got = after.all();
    assert_eq!(got.len(), 1, "received: {got:?}");
    assert_eq!(got[0].payload, b"control");
    assert!(!got[0].retain);
    fresh.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn unsubscribe_stops_delivery_while_other_subscriptions_continue() {
    let Some(broker) = Mosquitto::start("unsubscribe", "") else {
        return;
    };
    let mut parts = ClientParts::new("unsub", 256, 256);
    let (mut sub, inbox) = parts.observer(broker.addr, b"unsub/stop", QoS::AtLeastOnce);
    sub.subscribe(b"unsub/keep", QoS::AtLeastOnce).unwrap();

    let mut publisher_parts = ClientParts::new("unsub-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);

    // Before: both arrive.
    publisher
        .publish(b"unsub/stop", b"before", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(pump_until(&mut sub, WAIT, || !inbox.is_empty()));

    sub.unsubscribe(b"unsub/stop").unwrap();
    publisher
        .publish(b"unsub/stop", b"after", false, QoS::AtLeastOnce)
        .unwrap();
    publisher
        .publish(b"unsub/keep", b"control", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut sub, WAIT, || inbox.len() >= 2),
        "the control message did not arrive"
    );
    pump_for(&mut sub, QUIET);
    let got = inbox.all();
    assert_eq!(got.len(), 2, "received: {got:?}");
    assert_eq!(
        (got[0].topic.as_slice(), got[0].payload.as_slice()),
        (&b"unsub/stop"[..], &b"before"[..])
    );
    assert_eq!(
        (got[1].topic.as_slice(), got[1].payload.as_slice()),
        (&b"unsub/keep"[..], &b"control"[..])
    );
    sub.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn seventy_thousand_qos1_publishes_wrap_packet_id_past_65535_to_1_and_keep_the_connection() {
    const COUNT: u32 = 70_000;
    let Some(broker) = Mosquitto::start("packet_id_wrap", MOSQUITTO_QUIET_LOG) else {
        return;
    };
    let addr = broker.addr;
    let topic = b"wrap/t";

    // A subscriber in its own thread counts what the broker forwards.
    let (ready_tx, ready_rx) = mpsc::channel();
    let publisher_done = Arc::new(AtomicBool::new(false));
    let done = Arc::clone(&publisher_done);
    let counter = thread::spawn(move || -> usize {
        let count = Cell::new(0usize);
        let mut on_message = |_: Message<'_>| count.set(count.get() + 1);
        let mut parts = ClientParts::new("wrap-sub", 256, 64 * 1024);
        let mut sub = parts.client(|o| o);
        sub.set_callback(&mut on_message);
        sub.connect(addr).unwrap();
        sub.subscribe(topic, QoS::AtMostOnce).unwrap();
        ready_tx.send(()).unwrap();
        let mut done_at = None;
        while count.get() < COUNT as usize + 1 {
            if done_at.is_none() && done.load(Ordering::Relaxed) {
                done_at = Some(Instant::now());
            }
            if done_at.is_some_and(|t| t.elapsed() > WAIT) {
                break;
            }
            sub.wait_msg_for(100).unwrap();
        }
        sub.disconnect().unwrap();
        count.get()
    });
    ready_rx
        .recv_timeout(WAIT)
        .expect("the subscriber did not subscribe");

    let mut parts = ClientParts::new("wrap-pub", 256, 256);
    let mut client = parts.connected(addr);
    assert_eq!(client.next_packet_id(), 1);
    for i in 1..=COUNT {
        let expected_id = ((i - 1) % 65_535 + 1) as u16;
        assert_eq!(client.next_packet_id(), expected_id, "before publish {i}");
        if let Err(e) = client.publish(topic, &i.to_be_bytes(), false, QoS::AtLeastOnce) {
            panic!("publish {i} (packet id {expected_id}) failed: {e}");
        }
        match i {
            65_534 => assert_eq!(client.next_packet_id(), 65_535),
            65_535 => assert_eq!(
                client.next_packet_id(),
                1,
                "65535 is followed by 1, never 0"
            ),
            _ => {}
        }
    }
    assert!(client.is_connected());
    // One more after the wrap, acknowledged like the others.
    let before_last = client.next_packet_id();
    assert_eq!(before_last, (COUNT % 65_535 + 1) as u16);
    client
        .publish(topic, b"last", false, QoS::AtLeastOnce)
        .unwrap();
    assert_eq!(client.next_packet_id(), before_last + 1);
    assert!(client.is_connected());
    client.disconnect().unwrap();

    publisher_done.store(true, Ordering::Relaxed);
    let received = counter.join().expect("subscriber thread");
    assert!(
        received > COUNT as usize,
        "the subscriber counted {received} of {} messages",
        COUNT + 1
    );
}

#[test]
fn utf8_topic_and_payload_round_trip_byte_exact() {
    // Anchor 2: the original counted characters instead of bytes.
    let Some(broker) = Mosquitto::start("utf8", "") else {
        return;
    };
    let topic = "t/ü/€/日本語/🚀".as_bytes();
    let filter = "t/ü/#".as_bytes();
    let payloads: [&[u8]; 2] = [
        "grüße — 5 € — 日本 — 🚀".as_bytes(),
        "ÄÖÜ äöü ß ½ ∞".as_bytes(),
    ];

    let mut parts = ClientParts::new("utf8-sub", 512, 512);
    let (mut sub, inbox) = parts.connected_with_inbox(broker.addr);
    assert_eq!(
        sub.subscribe(filter, QoS::AtLeastOnce).unwrap(),
        QoS::AtLeastOnce
    );

    let mut publisher_parts = ClientParts::new("utf8-pub", 512, 256);
    let mut publisher = publisher_parts.connected(broker.addr);
    publisher
        .publish(topic, payloads[0], false, QoS::AtMostOnce)
        .unwrap();
    publisher
        .publish(topic, payloads[1], false, QoS::AtLeastOnce)
        .unwrap();
    // A malformed packet would have cost the connection: an ASCII message
    // after them must still go through.
    publisher
        .publish(b"t/\xc3\xbc/ascii-after", b"plain", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(publisher.is_connected());

    assert!(
        pump_until(&mut sub, WAIT, || inbox.len() >= 3),
        "received: {:?}",
        inbox.all()
    );
    let got = inbox.all();
    assert_eq!(got[0].topic, topic);
    assert_eq!(got[0].payload, payloads[0]);
    assert_eq!(got[0].qos, QoS::AtMostOnce);
    assert_eq!(got[1].topic, topic);
    assert_eq!(got[1].payload, payloads[1]);
    assert_eq!(got[1].qos, QoS::AtLeastOnce);
    assert_eq!(got[2].topic, "t/ü/ascii-after".as_bytes());
    assert_eq!(got[2].payload, b"plain");
    sub.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn one_megabyte_and_three_mebibyte_messages_round_trip_through_a_256_byte_tx_buffer() {
    // Anchor 6: the original failed an assertion at 2 MiB.
    let Some(broker) = Mosquitto::start("large_messages", "") else {
        return;
    };
    let one_mb = pattern(1_000_000, 0x11);
    let three_mib = pattern(3 * 1024 * 1024, 0x5a);

    let mut parts = ClientParts::new("large-sub", 256, 4 * 1024 * 1024);
    let (mut sub, inbox) = parts.observer(broker.addr, b"large/#", QoS::AtLeastOnce);

    // The payload does not fit the publisher's 256-byte tx buffer: it goes in
    // a second send after the header.
    let mut publisher_parts = ClientParts::new("large-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);
    publisher
        .publish(b"large/1mb", &one_mb, false, QoS::AtMostOnce)
        .unwrap();
    publisher
        .publish(b"large/3mib", &three_mib, false, QoS::AtLeastOnce)
        .unwrap();
    publisher
        .publish(b"large/after", b"small", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(publisher.is_connected());

    assert!(
        pump_until(&mut sub, WAIT, || inbox.len() >= 3),
        "got {} messages",
        inbox.len()
    );
    let got = inbox.all();
    assert_eq!(got[0].topic, b"large/1mb");
    assert_eq!(got[0].payload.len(), one_mb.len());
    assert!(got[0].payload == one_mb, "1 MB payload differs");
    assert_eq!(got[1].topic, b"large/3mib");
    assert_eq!(got[1].payload.len(), three_mib.len());
    assert!(got[1].payload == three_mib, "3 MiB payload differs");
    assert_eq!(got[1].qos, QoS::AtLeastOnce);
    assert_eq!(got[2].payload, b"small");
    assert_eq!(sub.skipped_messages(), 0);
    sub.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn messages_larger_than_rx_buffer_are_skipped_at_qos0_and_qos1_and_the_next_arrives_intact() {
    let Some(broker) = Mosquitto::start("oversized", "") else {
        return;
    };
    let big = pattern(10_000, 0x33);
    let capacity = 1024;

    let mut parts = ClientParts::new("oversized-sub", 256, capacity);
    // A persistent session, to show at the end that the skipped QoS 1 message
    // was acknowledged (the broker would resend it after a reconnect).
    let (mut sub, inbox) = parts.client_with_inbox(|o| o.clean_session(false));
    sub.connect(broker.addr).unwrap();
    sub.subscribe(b"big/#", QoS::AtLeastOnce).unwrap();

    let mut publisher_parts = ClientParts::new("oversized-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);

    for (round, (topic, qos)) in [
        (&b"big/q0"[..], QoS::AtMostOnce),
        (&b"big/q1"[..], QoS::AtLeastOnce),
    ]
    .into_iter()
    .enumerate()
    {
        let normal = format!("normal after {qos:?}");
        publisher.publish(topic, &big, false, qos).unwrap();
        publisher
            .publish(topic, normal.as_bytes(), false, qos)
            .unwrap();

        let size = publish_packet_size(topic.len(), big.len(), qos);
        assert_eq!(
            next_outcome(&mut sub),
            Err(Error::MessageTooLarge { size, capacity }),
            "the {qos:?} message of {size} bytes"
        );
        assert!(sub.is_connected(), "a skipped message keeps the connection");
        assert_eq!(sub.skipped_messages(), round as u32 + 1);
        assert_eq!(
            inbox.len(),
            round,
            "the skipped message never reaches the callback"
        );

        assert_eq!(
            next_outcome(&mut sub),
            Ok(true),
            "the {qos:?} message after the big one"
        );
        let got = inbox.all();
        assert_eq!(got.len(), round + 1);
        assert_eq!(got[round].topic, topic);
        assert_eq!(got[round].payload, normal.as_bytes());
        assert_eq!(got[round].qos, qos);
    }

    // Reconnect: nothing is resent (pump_until panics on MessageTooLarge).
    sub.disconnect().unwrap();
    assert!(sub.connect(broker.addr).unwrap());
    publisher
        .publish(b"big/control", b"control", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(pump_until(&mut sub, WAIT, || inbox.len() >= 3));
    pump_for(&mut sub, QUIET);
    assert_eq!(inbox.len(), 3);
    assert_eq!(inbox.all()[2].payload, b"control");
    assert_eq!(sub.skipped_messages(), 2);
    sub.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn qos1_message_to_own_subscription_reaches_callback_before_publish_returns() {
    // Anchor 12: mosquitto forwards the message to the subscriber before it
    // sends the publisher's PUBACK, so it arrives while publish() waits and
    // goes to the callback there.
    let Some(broker) = Mosquitto::start("own_subscription", "") else {
        return;
    };
    let mut parts = ClientParts::new("self", 256, 256);
    let (mut client, inbox) = parts.observer(broker.addr, b"self/echo", QoS::AtLeastOnce);
    client
        .publish(b"self/echo", b"boomerang", false, QoS::AtLeastOnce)
        .unwrap();
    let got = inbox.all();
    assert_eq!(got.len(), 1, "the echo was delivered inside publish()");
    assert_eq!(got[0].topic, b"self/echo");
    assert_eq!(got[0].payload, b"boomerang");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    // Nothing is left for wait_msg: it would wait in vain.
    assert_eq!(client.wait_msg_for(500), Ok(false));
    assert_eq!(inbox.len(), 1);
    client.disconnect().unwrap();
}

#[test]
fn batched_qos0_stream_arrives_whole_and_in_order() {
    let Some(broker) = Mosquitto::start("batched_qos0", "") else {
        return;
    };
    let topic = b"batched/stream";
    let mut sub_parts = ClientParts::new("batch-sub", 256, 4096);
    let (mut sub, inbox) = sub_parts.observer(broker.addr, topic, QoS::AtMostOnce);
    let mut pub_parts = ClientParts::new("batch-pub", 1024, 256);
    let mut publisher = pub_parts.client(|o| o.batch_qos0(true));
    publisher.connect(broker.addr).unwrap();
    // Sizes vary so that batches end at different places; every 500th (from the 251st)
    // message is larger than the transmit buffer and goes out on its own.
    let payload_of = |i: u32| -> Vec<u8> {
        let len = if i % 500 == 250 {
            3000
        } else {
            4 + (i % 61) as usize
        };
        let mut p = i.to_be_bytes().to_vec();
        p.resize(len, b'x');
        p
    };
    const COUNT: u32 = 3000;
    for chunk in 0..COUNT / 100 {
        for i in chunk * 100..(chunk + 1) * 100 {
            publisher
                .publish(topic, &payload_of(i), false, QoS::AtMostOnce)
                .unwrap();
        }
        // Keep the subscriber's queue short while the stream runs.
        while sub.check_msg().unwrap() {}
    }
    assert!(
        publisher.pending_messages() > 0,
        "the last batch still waits"
    );
    publisher.flush().unwrap();
    assert_eq!(publisher.pending_messages(), 0);
    assert!(pump_until(&mut sub, WAIT, || inbox.len() >= COUNT as usize));
    let expected: Vec<Vec<u8>> = (0..COUNT).map(payload_of).collect();
    assert_eq!(inbox.payloads(), expected);
    assert_eq!(publisher.dropped_messages(), 0);
    publisher.disconnect().unwrap();
}
