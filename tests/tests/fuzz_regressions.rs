//! Inputs found by the `client` and `robust` fuzz targets (fuzz/, see
//! fuzz/README.md), replayed as plain tests on the in-memory stack and
//! virtual time. Each feeds the broker bytes the fuzzer found, asserts that
//! nothing panics, that every call returns within its deadline, and the
//! named error it ends in.
//!
//! The fuzzer's input format is a script (fuzz/harness/src/script.rs); the hex in
//! each test is the broker's side of it, and the comment gives the input.

use std::cell::RefCell;
use std::net::SocketAddr;

use umqtt_robust::{Backoff, RobustClient, RobustError, RobustOptions};
use umqtt_simple::packet::{DecodeError, Packet, PacketType};
use umqtt_simple::{Client, Error, Message, Options, QoS, Waiting};
use umqtt_tests::{hex, to_hex};
use umqtt_transports::Clock;
use umqtt_transports::memory::{MemoryError, MemoryStack, VirtualClock, VirtualWait};

type Memory<'a> = Client<'a, MemoryStack, VirtualClock, VirtualWait>;

const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// The fuzzed clients' deadlines (fuzz/harness/src/wire.rs).
const CONNECT_MS: u32 = 4_000;
const ACK_MS: u32 = 3_000;

fn broker() -> SocketAddr {
    "127.0.0.1:1883".parse().unwrap()
}

/// The fuzz targets' rig: an in-memory stack whose far end the test plays,
/// on a clock that moves only through the client's own waits.
struct Rig {
    net: MemoryStack,
    clock: VirtualClock,
    waiter: VirtualWait,
}

impl Rig {
    fn new() -> Self {
        let clock = VirtualClock::starting_at(1_000);
        Rig {
            net: MemoryStack::new(),
            waiter: VirtualWait::new(&clock),
            clock,
        }
    }

    fn options() -> Options<'static> {
        Options::new("fuzz")
            .keepalive(0)
            .connect_timeout_ms(CONNECT_MS)
            .ack_timeout_ms(ACK_MS)
            .send_timeout_ms(2_000)
    }

    /// A client connected with a valid CONNACK, its sent bytes cleared.
    fn connected<'a>(&self, tx: &'a mut [u8], rx: &'a mut [u8]) -> Memory<'a> {
        let mut client = Client::new(
            self.net.clone(),
            self.clock.clone(),
            tx,
            rx,
            Self::options(),
        )
        .with_waiter(self.waiter.clone());
        self.net.answer(0x10, CONNACK);
        assert_eq!(client.connect(broker()), Ok(false));
        self.net.take_sent();
        client
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    /// The packets the client sent since the last call, as hex.
    fn sent_packets(&self) -> Vec<String> {
        let bytes = self.net.take_sent();
        let mut rest = &bytes[..];
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (_, n) = Packet::decode(rest)
                .expect("the client sends valid packets")
                .expect("the client sends whole packets");
            out.push(to_hex(&rest[..n]));
            rest = &rest[n..];
        }
        out
    }
}

/// Records what the callback receives: (topic, payload length, QoS).
#[derive(Default)]
struct Inbox(RefCell<Vec<(Vec<u8>, usize, QoS)>>);

impl Inbox {
    fn push(&self, m: Message<'_>) {
        self.0
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.len(), m.qos));
    }

    fn take(&self) -> Vec<(Vec<u8>, usize, QoS)> {
        self.0.take()
    }
}

/// `client` seed "oversize-message-drained", and the corpus inputs grown
/// from it: a QoS 1 message larger than a 16-byte receive buffer arrives in
/// pieces over several calls (input `0000 350c <head> 3525 <tail> 350e
/// <next>`). It is read to its end and thrown away, acknowledged, reported
/// once as `MessageTooLarge`; the next message is delivered whole.
#[test]
fn oversize_message_in_pieces_is_drained_acknowledged_and_the_next_delivered() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 16]);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let mut client = rig.connected(&mut tx, &mut rx);
    client.set_callback(&mut on_message);

    // PUBLISH QoS 1, topic "t/x", packet id 5, 40 payload bytes: 49 bytes.
    let big = hex(&format!("322f0003742f780005{}", "6d".repeat(40)));
    let (head, tail) = big.split_at(12);
    rig.net.feed(head);
    let start = rig.now();
    assert_eq!(client.wait_msg_for(1_000), Ok(false), "only part arrived");
    assert_eq!(rig.now() - start, 1_000);
    rig.net.feed(tail);
    assert_eq!(
        client.wait_msg_for(1_000),
        Err(Error::MessageTooLarge {
            size: 49,
            capacity: 16
        })
    );
    assert_eq!(
        rig.sent_packets(),
        ["40020005"],
        "PUBACK for the skipped id"
    );
    assert!(
        client.is_connected(),
        "a skipped message keeps the connection"
    );
    assert_eq!(client.skipped_messages(), 1);
    assert!(inbox.take().is_empty());

    rig.net.feed(&hex("320c0003742f78000968656c6c6f"));
    assert_eq!(client.wait_msg_for(1_000), Ok(true));
    assert_eq!(inbox.take(), [(b"t/x".to_vec(), 5, QoS::AtLeastOnce)]);
    assert_eq!(rig.sent_packets(), ["40020009"]);
}

/// Corpus input of the `client` target: a QoS 1 message whose topic alone
/// is longer than the 16-byte receive buffer. Its packet id cannot be read,
/// so it is drained and reported without a PUBACK (the broker sends it
/// again), and the connection stays usable.
#[test]
fn oversize_message_whose_topic_exceeds_the_buffer_is_drained_and_acknowledged_with_its_id() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 16]);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let mut client = rig.connected(&mut tx, &mut rx);
    client.set_callback(&mut on_message);

    // PUBLISH QoS 1, a 30-byte topic, packet id 7, payload "x": 37 bytes.
    let topic = "61".repeat(30);
    rig.net.feed(&hex(&format!("3223001e{topic}000778")));
    assert_eq!(
        client.wait_msg_for(1_000),
        Err(Error::MessageTooLarge {
            size: 37,
            capacity: 16
        })
    );
    // The id is read as the message drains past (MQTT-4.3.2-2: it must be
    // acknowledged, or the broker holds it in flight).
    assert_eq!(rig.sent_packets(), ["40020007"]);
    assert!(client.is_connected());

    rig.net.feed(&hex("d000"));
    assert_eq!(client.wait_msg_for(1_000), Ok(true), "still reading");
}

/// Corpus inputs of the `client` target: a packet other than PUBLISH that
/// does not fit the receive buffer ends the connection with
/// `PacketTooLarge` (it cannot be skipped safely), however large it claims
/// to be, and even while a request waits for its answer.
#[test]
fn oversize_packets_other_than_publish_end_the_connection_by_name() {
    for (input, waiting_for_suback, packet, size) in [
        // PINGRESP claiming 52 428 787 bytes, with an answer pending or not.
        ("d0f3ffff18", false, PacketType::PingResp, 52_428_792),
        // A 100-byte SUBACK answering a SUBSCRIBE.
        ("9064", true, PacketType::SubAck, 102),
        // A CONNACK of 51 bytes after the connection is up.
        ("2033", false, PacketType::ConnAck, 53),
    ] {
        let rig = Rig::new();
        let (mut tx, mut rx) = ([0u8; 48], [0u8; 16]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = rig.connected(&mut tx, &mut rx);
        client.set_callback(&mut on_message);
        let bytes = hex(input);
        let start = rig.now();
        let result = if waiting_for_suback {
            rig.net.answer(0x82, &bytes);
            client.subscribe(b"t/#", QoS::AtLeastOnce).map(|_| false)
        } else {
            rig.net.feed(&bytes);
            client.check_msg()
        };
        assert_eq!(
            result,
            Err(Error::PacketTooLarge {
                packet,
                size,
                capacity: 16
            }),
            "{input}"
        );
        assert_eq!(rig.now(), start, "{input}: found at once");
        assert!(!client.is_connected(), "{input}");
    }
}

/// Corpus input of the `client` target: the header of a message too large
/// for the buffer carries QoS 3. It is refused as it arrives, by name,
/// instead of being drained.
#[test]
fn oversize_message_with_qos_3_is_a_protocol_error_not_a_skip() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 16]);
    let mut client = rig.connected(&mut tx, &mut rx);
    rig.net.feed(&hex("3664000174000100"));
    assert_eq!(
        client.wait_msg_for(1_000),
        Err(Error::Protocol(DecodeError::InvalidQoS))
    );
    assert!(!client.is_connected());
}

/// The first "crash" of the `client` target (a check of the harness that was
/// too strict, not a library bug): a QoS 1 message that was already in the
/// receive buffer when the connection died is delivered, and the PUBACK
/// that cannot be sent any more ends the call with the stack's error (the
/// broker sends the message again). The input (352 bytes, in
/// fuzz/README.md's terms): several QoS 1 messages fed at once, one
/// `wait_msg_for`, the broker's end closed, `wait_msg_for`; minimised here.
#[test]
fn message_buffered_before_the_connection_died_is_delivered_then_the_loss_reported() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 76]);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let mut client = rig.connected(&mut tx, &mut rx);
    client.set_callback(&mut on_message);

    let message = "320c0003742f78000968656c6c6f";
    rig.net.feed(&hex(&format!("{message}{message}")));
    assert_eq!(client.wait_msg_for(120_000), Ok(true));
    assert_eq!(rig.sent_packets(), ["40020009"]);
    rig.net.close_connection();
    let start = rig.now();
    assert_eq!(
        client.wait_msg_for(120_000),
        Err(Error::Network(MemoryError::Closed))
    );
    assert_eq!(rig.now(), start);
    assert_eq!(inbox.take().len(), 2, "both messages reached the callback");
    assert!(
        rig.sent_packets().is_empty(),
        "the second PUBACK was not sent"
    );
    assert!(!client.is_connected());
}

/// Corpus input of the `client` target: a keepalive of 1 s with a PINGRESP
/// deadline of 0 ms. The PINGREQ goes out when due and, with nothing to
/// read, the very next look finds it unanswered: `Timeout(PingResp)`, within
/// the call's own deadline, never a spin.
#[test]
fn ping_timeout_of_zero_ends_the_wait_at_once_by_name() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 64]);
    let options = Rig::options().keepalive(1).ping_timeout_ms(0);
    let mut client = Client::new(
        rig.net.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        options,
    )
    .with_waiter(rig.waiter.clone());
    rig.net.answer(0x10, CONNACK);
    assert_eq!(client.connect(broker()), Ok(false));
    rig.net.take_sent();
    let start = rig.now();
    assert_eq!(
        client.wait_msg_for(5_000),
        Err(Error::Timeout(Waiting::PingResp))
    );
    assert_eq!(
        rig.now() - start,
        1_000,
        "the keepalive, then no wait at all"
    );
    assert_eq!(rig.sent_packets(), ["c000"]);
}

type Robust<'a> = RobustClient<'a, MemoryStack, VirtualClock, VirtualWait>;
type RobustResult = Result<bool, umqtt_robust::RobustClientError<MemoryStack>>;

/// Finding R1 of the `robust` target (fuzz/README.md). The input (45 bytes,
/// config, then steps of op, length, chunk): `0000 | 0000 |
/// 0010 102c06000a008c044000001010000625 | 0000 | 0000 | 0000 |
/// 0004 02090420 | 0201 00 | 0600 | 0a7e 20020000`: QoS 0 publishes feeding
/// garbage, a subscribe to `t/#` (reads it, loses the connection, fails to
/// reconnect: remembered, `Offline`), `check_msg`, then `connect`
/// answered with CONNACK 20020000 and no SUBACK. Minimised here: a robust
/// client subscribed to `t/#` loses its connection; `connect` is answered
/// with a CONNACK without session, but the SUBACK of the resubscription
/// never comes. Runs `check` with the rig, the client, that `connect`'s
/// result and its virtual duration.
fn robust_connect_losing_the_suback(check: impl FnOnce(&Rig, &mut Robust<'_>, RobustResult, u64)) {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 64]);
    let mut on_message = |_: Message<'_>| {};
    let inner = Client::new(
        rig.net.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        Rig::options(),
    )
    .with_waiter(rig.waiter.clone());
    let mut client = RobustClient::from_client(inner);
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 100,
            max_ms: 1_600,
            max_attempts: None,
        },
        call_timeout_ms: 10_000,
    });
    client.set_callback(&mut on_message);
    rig.net.answer(0x10, CONNACK);
    assert_eq!(client.connect(broker()), Ok(false));
    rig.net.answer(0x82, &hex("9003000101"));
    assert_eq!(
        client.subscribe(b"t/#", QoS::AtLeastOnce),
        Ok(QoS::AtLeastOnce)
    );

    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    let start = rig.now();
    let result = client.connect(broker());
    let elapsed = rig.now() - start;
    check(&rig, &mut client, result, elapsed);
}

/// Finding R1 of the `robust` target, fixed since (commit 3a6302a, "a loss
/// while resubscribing is a failed attempt"): `connect` returned `Ok(false)`
/// although the connection had been lost while restoring the subscription.
/// Now it fails by name, within the SUBACK deadline, and the next call
/// reconnects and succeeds.
#[test]
fn robust_connect_whose_resubscription_times_out_fails_by_name_and_recovers() {
    robust_connect_losing_the_suback(|rig, client, result, elapsed| {
        assert_eq!(
            result,
            Err(RobustError::Client(Error::Timeout(Waiting::SubAck)))
        );
        assert!(!client.is_connected(), "an error, and no connection");
        assert_eq!(elapsed, u64::from(ACK_MS), "the SUBACK deadline, once");
        // Packet ids: 1 the first SUBSCRIBE, 2 the lost one, 3 the next.
        rig.net.answer(0x10, CONNACK);
        rig.net.answer(0x82, &hex("9003000301"));
        assert_eq!(
            client.publish(b"t/x", b"", false, QoS::AtMostOnce),
            Ok(()),
            "the next call reconnects"
        );
        assert!(client.is_connected());
    });
}

/// Finding R2 of the `robust` target (seed "keepalive-no-pingresp" with
/// friendly reconnects, `0970 c500 3500`): keepalive 1 s, PINGRESP deadline
/// 250 ms, a broker that never answers PINGREQ and accepts one reconnect.
/// `wait_msg_for(5_000)` loses the link at 1.25 s, reconnects, loses it
/// again at 2.5 s, and then starts an attempt with the whole connect
/// timeout (4 s) although only 2.5 s of the call are left. A due attempt is
/// never cut short (documented on `RobustClient::wait_msg_for`), so the
/// bound is the call's timeout plus one connect timeout.
#[test]
fn robust_wait_msg_for_returns_within_its_timeout_plus_one_connect_timeout() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 48], [0u8; 64]);
    let options = Rig::options().keepalive(1).ping_timeout_ms(250);
    let inner = Client::new(
        rig.net.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        options,
    )
    .with_waiter(rig.waiter.clone());
    let mut client: Robust<'_> = RobustClient::from_client(inner);
    rig.net.answer(0x10, CONNACK);
    assert_eq!(client.connect(broker()), Ok(false));
    rig.net.answer(0x10, CONNACK);
    let start = rig.now();
    let result = client.wait_msg_for(5_000);
    let elapsed = rig.now() - start;
    assert_eq!(result, Ok(false));
    let connect_timeout = u64::from(client.client().options().connect_timeout());
    assert!(
        elapsed <= 5_000 + connect_timeout,
        "wait_msg_for(5000) took {elapsed} ms with a {connect_timeout} ms connect timeout"
    );
}
