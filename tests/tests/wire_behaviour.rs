//! Exact wire behaviour against scripted fake brokers: the bytes the client
//! puts on the wire (the golden vectors of `wire-vectors.md`), how it reads
//! what arrives (split, merged, oversized, flooded, hostile), and that every
//! hostile input ends in a named error, never a panic or a hang, with a client
//! that can connect again afterwards.
//!
//! Every client runs in its own thread under a time limit
//! ([`run_in_thread_within`] and [`HANG_LIMIT`]), so a hang fails the test
//! instead of blocking the suite.

use std::cell::Cell;
use std::io::{BufReader, ErrorKind, Write};
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::packet::{DecodeError, EncodeError, PacketType};
use umqtt_simple::{Error, Message, Options, QoS, Waiting};
use umqtt_tests::{
    CONNACK_ACCEPTED, ClientParts, FakeBroker, HANG_LIMIT, Received, StdClient, StdClientError,
    WAIT, accept_connect, answer_connect, hex, read_connect, read_packet, run_in_thread_within,
    std_client, to_hex,
};
use umqtt_transports::std_tcp::StdNetError;

/// The client id of every client here, as in the golden vectors.
const CLIENT_ID: &str = "umqtt_client";

// ---------------------------------------------------------------------------
// Private helpers
// ---------------------------------------------------------------------------

/// Length of the fixed header at the start of `packet`.
fn fixed_header_len(packet: &[u8]) -> usize {
    1 + packet[1..]
        .iter()
        .take(4)
        .position(|b| b & 0x80 == 0)
        .expect("remaining length ends")
        + 1
}

/// Reads packets until the client closes the connection (or 20 s pass);
/// returns them.
fn drain(stream: &mut TcpStream) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    while let Ok(p) = read_packet(stream) {
        packets.push(p);
    }
    packets
}

/// The answer a well-behaved broker gives to `packet`, if any.
fn auto_reply(packet: &[u8]) -> Option<Vec<u8>> {
    let h = fixed_header_len(packet);
    match packet[0] >> 4 {
        1 => Some(CONNACK_ACCEPTED.to_vec()),
        3 if (packet[0] >> 1) & 3 == 1 => {
            let topic_len = usize::from(u16::from_be_bytes([packet[h], packet[h + 1]]));
            let pid = &packet[h + 2 + topic_len..h + 4 + topic_len];
            Some([&[0x40, 0x02], pid].concat())
        }
        8 => {
            let mut codes = Vec::new();
            let mut i = h + 2;
            while i < packet.len() {
                let len = usize::from(u16::from_be_bytes([packet[i], packet[i + 1]]));
                codes.push(packet[i + 2 + len]);
                i += 3 + len;
            }
            let mut suback = vec![
                0x90,
                u8::try_from(2 + codes.len()).unwrap(),
                packet[h],
                packet[h + 1],
            ];
            suback.extend(codes);
            Some(suback)
        }
        10 => Some(vec![0xb0, 0x02, packet[h], packet[h + 1]]),
        12 => Some(hex("d000")),
        _ => None,
    }
}

/// A broker that answers every request like a real one and reports each
/// packet it receives, in order, until the client closes the connection.
fn recording_broker() -> (FakeBroker, Receiver<Vec<u8>>) {
    let (tx, rx) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut stream| {
        stream.set_nodelay(true).ok();
        while let Ok(packet) = read_packet(&mut stream) {
            if let Some(reply) = auto_reply(&packet)
                && stream.write_all(&reply).is_err()
            {
                break;
            }
            let _ = tx.send(packet);
        }
    });
    (broker, rx)
}

/// The CONNECT the client sends with `options` (client id `umqtt_client`
/// unless the options say otherwise).
fn connect_bytes(options: Options<'static>) -> Vec<u8> {
    let (broker, packets) = recording_broker();
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(&mut tx, &mut rx, options);
        client.connect(addr).expect("connect");
        client.disconnect().expect("disconnect");
    });
    broker.join();
    let all: Vec<Vec<u8>> = packets.try_iter().collect();
    assert_eq!(
        all.last().map(|p| to_hex(p)),
        Some("e000".into()),
        "DISCONNECT ends the session"
    );
    all.into_iter().next().expect("a CONNECT was received")
}

/// Asserts that the CONNECT the client sends with `options` is
/// `expected_hex` ([`connect_bytes`]).
fn assert_connect_bytes(options: Options<'static>, expected_hex: &str) {
    assert_eq!(to_hex(&connect_bytes(options)), expected_hex);
}

/// A broker whose first connection runs `hostile` (after which it reads until
/// the client closes), and whose second is a normal session.
fn hostile_broker<F>(hostile: F) -> FakeBroker
where
    F: Fn(&mut TcpStream) + Send + 'static,
{
    FakeBroker::start(2, move |i, mut stream| {
        if i == 0 {
            hostile(&mut stream);
        } else {
            accept_connect(&mut stream);
        }
        drain(&mut stream);
    })
}

/// The connect and ack timeouts of [`hostile_options`], in milliseconds.
const HOSTILE_DEADLINE_MS: u32 = 5_000;

/// Allowed lateness of a hostile case's error on top of [`HOSTILE_DEADLINE_MS`].
const SLACK: Duration = Duration::from_secs(2);

/// `options` for hostile tests: deadlines short enough that a missed packet
/// shows as a wrong error rather than a long wait.
fn hostile_options(options: Options<'_>) -> Options<'_> {
    options
        .connect_timeout_ms(HOSTILE_DEADLINE_MS)
        .ack_timeout_ms(HOSTILE_DEADLINE_MS)
}

/// Runs `provoke` on a fresh client against `broker`'s hostile first
/// connection, checks the error with `expected`, then checks that the same
/// client connects again (second connection) and that the message callback
/// never saw anything from the hostile connection beyond `delivered`.
fn hostile_case(
    hostile: impl Fn(&mut TcpStream) + Send + 'static,
    provoke: impl FnOnce(&mut StdClient<'_>, SocketAddr) -> StdClientError + Send + 'static,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    let broker = hostile_broker(hostile);
    let addr = broker.addr;
    let delivered = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let (mut client, inbox) = parts.client_with_inbox(hostile_options);
        let start = Instant::now();
        let err = provoke(&mut client, addr);
        let took = start.elapsed();
        assert!(expected(&err), "unexpected error: {err:?} ({err})");
        assert!(
            took <= Duration::from_millis(u64::from(HOSTILE_DEADLINE_MS)) + SLACK,
            "{err:?} came after {took:?}, past the {HOSTILE_DEADLINE_MS} ms deadline"
        );
        assert!(
            !client.is_connected(),
            "the connection is closed after {err:?}"
        );
        assert!(matches!(client.check_msg(), Err(Error::NotConnected)));
        let start = Instant::now();
        client
            .connect(addr)
            .unwrap_or_else(|e| panic!("connecting again after {err:?}: {e:?}"));
        assert!(
            start.elapsed() < Duration::from_secs(5),
            "reconnect took {:?}",
            start.elapsed()
        );
        assert!(client.is_connected());
        client.disconnect().expect("disconnect");
        inbox.all()
    });
    broker.join();
    delivered
}

/// Reads the CONNECT, answers CONNACK accepted, then writes `bytes`.
fn connack_then(bytes: Vec<u8>) -> impl Fn(&mut TcpStream) + Send + 'static {
    move |stream: &mut TcpStream| {
        accept_connect(stream);
        stream.write_all(&bytes).expect("write hostile bytes");
    }
}

/// Reads the CONNECT and answers with `bytes` instead of a good CONNACK.
fn answer_connect_with(bytes: Vec<u8>) -> impl Fn(&mut TcpStream) + Send + 'static {
    move |stream: &mut TcpStream| {
        answer_connect(stream, &bytes);
    }
}

fn connect_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    match client.connect(addr) {
        Ok(_) => panic!("connect succeeded against a hostile broker"),
        Err(e) => e,
    }
}

fn connect_then_wait_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    for _ in 0..10 {
        match client.wait_msg_for(5_000) {
            Ok(_) => continue,
            Err(e) => return e,
        }
    }
    panic!("wait_msg_for never failed")
}

/// [`hostile_case`] with a broker that answers CONNECT with the bytes of
/// `answer_hex` instead of a good CONNACK: `connect` must fail with an error
/// `expected` accepts.
fn hostile_connect_answer(
    answer_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(answer_connect_with(hex(answer_hex)), connect_err, expected)
}

/// [`hostile_case`] with a broker that sends the bytes of `bytes_hex` after a
/// good CONNACK: `wait_msg_for` must fail with an error `expected` accepts.
fn hostile_after_connack(
    bytes_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(
        connack_then(hex(bytes_hex)),
        connect_then_wait_err,
        expected,
    )
}

/// The QoS 1 PUBLISH of `b"x"` to `t` with packet id 1, as the client sends it.
const PUBLISH_T_X_QOS1: &str = "3206000174000178";
/// The SUBSCRIBE to `t` at QoS 0 with packet id 1, as the client sends it.
const SUBSCRIBE_T_QOS0: &str = "8206000100017400";
/// The UNSUBSCRIBE from `t` with packet id 1, as the client sends it.
const UNSUBSCRIBE_T: &str = "a2050001000174";

/// Reads the CONNECT, answers CONNACK accepted, reads the client's next
/// packet (which must be `request_hex`) and answers it with `answer`.
fn answer_request_with(
    request_hex: &'static str,
    answer: Vec<u8>,
) -> impl Fn(&mut TcpStream) + Send + 'static {
    move |stream: &mut TcpStream| {
        accept_connect(stream);
        let request = read_packet(stream).expect("read the request");
        assert_eq!(to_hex(&request), request_hex, "the client's request");
        stream.write_all(&answer).expect("write the hostile answer");
    }
}

fn publish_qos1_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .publish(b"t", b"x", false, QoS::AtLeastOnce)
        .expect_err("QoS 1 publish succeeded against a hostile broker")
}

fn subscribe_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .subscribe(b"t", QoS::AtMostOnce)
        .expect_err("subscribe succeeded against a hostile broker")
}

fn unsubscribe_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .unsubscribe(b"t")
        .expect_err("unsubscribe succeeded against a hostile broker")
}

/// [`hostile_case`] with a broker that answers the client's QoS 1 PUBLISH
/// ([`PUBLISH_T_X_QOS1`]) with the bytes of `answer_hex`: `publish` must fail
/// with an error `expected` accepts.
fn hostile_answer_to_publish(
    answer_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(
        answer_request_with(PUBLISH_T_X_QOS1, hex(answer_hex)),
        publish_qos1_err,
        expected,
    )
}

/// [`hostile_case`] with a broker that answers the client's SUBSCRIBE
/// ([`SUBSCRIBE_T_QOS0`]) with the bytes of `answer_hex`: `subscribe` must
/// fail with an error `expected` accepts.
fn hostile_answer_to_subscribe(
    answer_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(
        answer_request_with(SUBSCRIBE_T_QOS0, hex(answer_hex)),
        subscribe_err,
        expected,
    )
}

/// [`hostile_case`] with a broker that answers the client's UNSUBSCRIBE
/// ([`UNSUBSCRIBE_T`]) with the bytes of `answer_hex`: `unsubscribe` must
/// fail with an error `expected` accepts.
fn hostile_answer_to_unsubscribe(
    answer_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(
        answer_request_with(UNSUBSCRIBE_T, hex(answer_hex)),
        unsubscribe_err,
        expected,
    )
}

/// One test per row, `name: scenario("hex bytes") => error pattern,`: the
/// scenario ([`hostile_connect_answer`], [`hostile_after_connack`] or one of
/// the `hostile_answer_to_*` requests) must end in an error matching the
/// pattern, after which the client connects again.
macro_rules! hostile_input_tests {
    ($($test:ident: $scenario:ident($bytes:literal) => $error:pat,)+) => {$(
        #[test]
        fn $test() {
            $scenario($bytes, |e| matches!(e, $error));
        }
    )+};
}

// ---------------------------------------------------------------------------
// 1. CONNECT golden vectors
// ---------------------------------------------------------------------------

#[test]
fn connect_with_default_keepalive_60_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID),
        "101800044d5154540402003c000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_keepalive_0_matches_minimal_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0),
        "101800044d51545404020000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_user_password_keepalive_30_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID)
            .keepalive(30)
            .user("alice")
            .password(b"secret"),
        "102700044d51545404c2001e000c756d7174745f636c69656e740005616c6963650006736563726574",
    );
}

#[test]
fn connect_with_will_qos0_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0).last_will(
            b"dev/status",
            b"offline",
            false,
            QoS::AtMostOnce,
        ),
        "102d00044d51545404060000000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_with_will_qos1_retained_keepalive_120_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(120).last_will(
            b"dev/status",
            b"offline",
            true,
            QoS::AtLeastOnce,
        ),
        "102d00044d515454042e0078000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_with_will_and_credentials_orders_fields_id_will_user_password() {
    // The golden vector uses will QoS 2 (flags 0xd6), which the port cannot
    // request; with will QoS 1 the flags are 0xce and every byte else is equal.
    assert_connect_bytes(
        Options::new(CLIENT_ID)
            .keepalive(65535)
            .user("u")
            .password(b"p")
            .last_will(b"w", b"x", false, QoS::AtLeastOnce),
        "102400044d51545404ceffff000c756d7174745f636c69656e74000177000178000175000170",
    );
}

#[test]
fn connect_with_clean_session_false_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0).clean_session(false),
        "101800044d51545404000000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_empty_client_id_matches_golden_vector() {
    assert_connect_bytes(
        Options::new("").keepalive(0),
        "100c00044d515454040200000000",
    );
}

#[test]
fn connect_with_200_byte_client_id_uses_two_byte_remaining_length() {
    let id: &'static str = Box::leak("c".repeat(200).into_boxed_str());
    let got = connect_bytes(Options::new(id).keepalive(0));
    let expected = format!("10d40100044d5154540402000000c8{}", "63".repeat(200));
    assert_eq!(got.len(), 215);
    assert_eq!(to_hex(&got), expected);
}

#[test]
fn connect_with_user_without_password_sends_flags_0x82() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).user("alice"),
        "101f00044d5154540482003c000c756d7174745f636c69656e740005616c696365",
    );
}

#[test]
fn publish_subscribe_unsubscribe_ping_and_disconnect_bytes_match_golden_vectors() {
    let (broker, packets) = recording_broker();
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        // A transmit buffer smaller than the 20 000-byte payload: that PUBLISH
        // goes out in two sends and must still be byte-exact.
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = std_client(&mut tx, &mut rx, Options::new(CLIENT_ID));
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        client
            .publish(b"foo_topic", b"hello", false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"foo_topic", b"hello", true, QoS::AtMostOnce)
            .unwrap();
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce).unwrap(),
            QoS::AtMostOnce
        );
        assert_eq!(
            client.subscribe(b"foo/+/bar", QoS::AtLeastOnce).unwrap(),
            QoS::AtLeastOnce
        );
        client.unsubscribe(b"foo_topic").unwrap();
        client
            .publish(b"foo_topic", b"hello", true, QoS::AtLeastOnce)
            .unwrap();
        client
            .publish(b"foo_topic", b"", false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"t", &[b'x'; 200], false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"t", &[b'y'; 20_000], false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(
                "t/\u{fc}".as_bytes(),
                "\u{e9}".as_bytes(),
                false,
                QoS::AtMostOnce,
            )
            .unwrap();
        client.ping().unwrap();
        client.disconnect().unwrap();
    });
    broker.join();
    let got: Vec<String> = packets.try_iter().map(|p| to_hex(&p)).collect();
    let expected = [
        "101800044d5154540402003c000c756d7174745f636c69656e74".to_string(),
        "30100009666f6f5f746f70696368656c6c6f".into(),
        "31100009666f6f5f746f70696368656c6c6f".into(),
        "820e00010009666f6f5f746f70696300".into(),
        "820e00020009666f6f2f2b2f62617201".into(),
        "a20d00030009666f6f5f746f706963".into(),
        // Shared counter: the QoS 1 publish after SUBSCRIBE 1, 2 and UNSUBSCRIBE 3 is 4.
        "33120009666f6f5f746f706963000468656c6c6f".into(),
        "300b0009666f6f5f746f706963".into(),
        format!("30cb01000174{}", "78".repeat(200)),
        format!("30a39c01000174{}", "79".repeat(20_000)),
        // Lengths count bytes: topic "t/ü" is 4 bytes, "é" 2.
        "30080004742fc3bcc3a9".into(),
        "c000".into(),
        "e000".into(),
    ];
    assert_eq!(got.len(), expected.len(), "packets received: {got:?}");
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(g, e, "packet {i}");
    }
}

// ---------------------------------------------------------------------------
// 2. Anchor 7: an unexpected packet while waiting for PUBACK
// ---------------------------------------------------------------------------

#[test]
fn incoming_qos1_publish_while_awaiting_puback_is_delivered_acked_and_stream_stays_in_sync() {
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        let first = read_packet(&mut s).unwrap();
        assert_eq!(
            to_hex(&first),
            "32120009666f6f5f746f706963000168656c6c6f",
            "first QoS 1 PUBLISH"
        );
        // Before answering: a QoS 1 message from the broker.
        s.write_all(&hex("320b0005696e2f71311234 6869")).unwrap();
        let ack = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&ack), "40021234", "PUBACK for the broker's message");
        s.write_all(&hex("40020001")).unwrap();
        let second = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&second), "32120009666f6f5f746f7069630002616761696e");
        s.write_all(&hex("40020002")).unwrap();
        let rest = drain(&mut s);
        assert_eq!(rest, vec![hex("e000")]);
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let mut during_publish = Vec::new();
        let (mut client, inbox) = parts.client_with_inbox(|o| o.ack_timeout_ms(5_000));
        client.connect(addr).unwrap();
        client
            .publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce)
            .expect("first QoS 1 publish");
        during_publish.extend(inbox.all());
        client
            .publish(b"foo_topic", b"again", false, QoS::AtLeastOnce)
            .expect("second QoS 1 publish");
        client.disconnect().unwrap();
        assert_eq!(
            during_publish,
            vec![Received {
                topic: b"in/q1".to_vec(),
                payload: b"hi".to_vec(),
                qos: QoS::AtLeastOnce,
                retain: false
            }],
            "the message arrives in the callback inside publish()"
        );
        assert_eq!(inbox.len(), 1);
    });
    broker.join();
}

// ---------------------------------------------------------------------------
// 3. SUBSCRIBE bytes and a refused subscription
// ---------------------------------------------------------------------------

#[test]
fn suback_0x80_is_subscribe_refused_and_connection_stays_usable() {
    let broker = FakeBroker::start(1, |_, mut s| {
        accept_connect(&mut s);
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820e00010009666f6f5f746f70696300");
        s.write_all(&hex("9003000180")).unwrap();
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820e00020009666f6f5f746f70696300");
        s.write_all(&hex("9003000200")).unwrap();
        // Two filters, the second refused.
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820a00030001610000016201");
        s.write_all(&hex("900400030180")).unwrap();
        let publish = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&publish), "3206000174000478");
        s.write_all(&hex("40020004")).unwrap();
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = std_client(&mut tx, &mut rx, hostile_options(Options::new(CLIENT_ID)));
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce),
            Err(Error::SubscribeRefused { index: 0 })
        );
        assert!(
            client.is_connected(),
            "a refused subscription keeps the connection"
        );
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce),
            Ok(QoS::AtMostOnce)
        );
        let mut granted = [None, None];
        let result = client.subscribe_many(
            &[(&b"a"[..], QoS::AtMostOnce), (&b"b"[..], QoS::AtLeastOnce)],
            &mut granted,
        );
        assert_eq!(result, Err(Error::SubscribeRefused { index: 1 }));
        assert_eq!(granted, [Some(QoS::AtLeastOnce), None]);
        assert!(client.is_connected());
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("publish after refusals");
        client.disconnect().unwrap();
    });
    broker.join();
}

// ---------------------------------------------------------------------------
// 4. Segmentation: many packets in one segment, one byte per segment
// ---------------------------------------------------------------------------

#[test]
fn connack_and_several_publishes_in_one_segment_are_all_delivered() {
    let broker = FakeBroker::start(1, |_, mut s| {
        let burst = hex("20020000\
             3008 0003 612f31 6f6e65\
             3008 0003 612f32 74776f\
             310a 0003 612f33 7468726565\
             320b 0003 612f34 0007 666f7572");
        answer_connect(&mut s, &burst);
        assert_eq!(
            to_hex(&read_packet(&mut s).unwrap()),
            "40020007",
            "PUBACK of the QoS 1 message"
        );
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let (mut client, inbox) = parts.client_with_inbox(|o| o);
        client
            .connect(addr)
            .expect("CONNACK at the front of a burst");
        for i in 0..4 {
            assert_eq!(
                client.wait_msg_for(5_000),
                Ok(true),
                "message {i} of the burst"
            );
        }
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    let summary: Vec<(Vec<u8>, Vec<u8>, QoS, bool)> = got
        .into_iter()
        .map(|m| (m.topic, m.payload, m.qos, m.retain))
        .collect();
    assert_eq!(
        summary,
        vec![
            (b"a/1".to_vec(), b"one".to_vec(), QoS::AtMostOnce, false),
            (b"a/2".to_vec(), b"two".to_vec(), QoS::AtMostOnce, false),
            (b"a/3".to_vec(), b"three".to_vec(), QoS::AtMostOnce, true),
            (b"a/4".to_vec(), b"four".to_vec(), QoS::AtLeastOnce, false),
        ]
    );
}

#[test]
fn broker_writing_one_byte_per_segment_still_works() {
    fn trickle(s: &mut TcpStream, bytes: &[u8]) {
        for b in bytes {
            s.write_all(&[*b]).unwrap();
            s.flush().unwrap();
            thread::sleep(Duration::from_millis(3));
        }
    }
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        read_connect(&mut s);
        trickle(&mut s, &hex("20020100")); // session present
        trickle(&mut s, &hex("320b0005696e2f71311234 6869"));
        assert_eq!(to_hex(&read_packet(&mut s).unwrap()), "40021234");
        let publish = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&publish), "3206000174000178");
        trickle(&mut s, &hex("40020001"));
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let (mut client, inbox) =
            parts.client_with_inbox(|o| hostile_options(o).clean_session(false));
        assert_eq!(
            client.connect(addr),
            Ok(true),
            "session present read from a trickled CONNACK"
        );
        assert_eq!(client.wait_msg_for(5_000), Ok(true));
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("PUBACK trickled byte by byte");
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"in/q1".to_vec(),
            payload: b"hi".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: false
        }]
    );
}

// ---------------------------------------------------------------------------
// 5. A message larger than the receive buffer
// ---------------------------------------------------------------------------

/// A PUBLISH of `payload` to `topic`: QoS 1 with packet id `pid` if there is
/// one, else QoS 0.
fn publish_packet(topic: &[u8], pid: Option<u16>, payload: &[u8]) -> Vec<u8> {
    let remaining = 2 + topic.len() + if pid.is_some() { 2 } else { 0 } + payload.len();
    let mut p = vec![if pid.is_some() { 0x32 } else { 0x30 }];
    let mut n = remaining;
    loop {
        let mut byte = u8::try_from(n % 128).unwrap();
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        p.push(byte);
        if n == 0 {
            break;
        }
    }
    p.extend(u16::try_from(topic.len()).unwrap().to_be_bytes());
    p.extend(topic);
    if let Some(pid) = pid {
        p.extend(pid.to_be_bytes());
    }
    p.extend(payload);
    p
}

/// A QoS 1 PUBLISH of `payload` to `topic` with packet id `pid`.
fn qos1_publish(topic: &[u8], pid: u16, payload: &[u8]) -> Vec<u8> {
    publish_packet(topic, Some(pid), payload)
}

#[test]
fn message_larger_than_rx_buffer_is_drained_acked_and_the_next_one_arrives() {
    let big = qos1_publish(b"big", 0x0101, &[0xab; 5000]);
    let big_len = big.len();
    let broker = FakeBroker::start(1, move |_, mut s| {
        accept_connect(&mut s);
        // The big one and a small one in one write: the small one starts in
        // the same segment as the big one's tail.
        let mut both = big.clone();
        both.extend(hex("3009 0005 736d616c6c 6f6b"));
        s.write_all(&both).unwrap();
        assert_eq!(
            to_hex(&read_packet(&mut s).unwrap()),
            "40020101",
            "PUBACK for the skipped message"
        );
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 256, 256);
        let (mut client, inbox) = parts.client_with_inbox(hostile_options);
        client.connect(addr).unwrap();
        assert_eq!(
            client.wait_msg_for(5_000),
            Err(Error::MessageTooLarge {
                size: big_len,
                capacity: 256
            })
        );
        assert!(
            client.is_connected(),
            "a skipped message keeps the connection"
        );
        assert_eq!(client.skipped_messages(), 1);
        assert_eq!(
            client.wait_msg_for(5_000),
            Ok(true),
            "the small message after the big one"
        );
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"small".to_vec(),
            payload: b"ok".to_vec(),
            qos: QoS::AtMostOnce,
            retain: false
        }]
    );
}

#[test]
fn flood_of_messages_larger_than_rx_buffer_each_is_too_large_qos1_acked_then_small_one_arrives() {
    const BIG: u16 = 200;
    const RX: usize = 512;
    // QoS 0 and QoS 1 mixed: every third message is QoS 0.
    fn packet_id(i: u16) -> Option<u16> {
        (i % 3 != 2).then_some(0x0100 + i)
    }
    fn big(i: u16) -> Vec<u8> {
        publish_packet(
            b"big",
            packet_id(i),
            &[u8::try_from(i % 256).unwrap(); 2_000],
        )
    }
    let sizes: Vec<usize> = (0..BIG).map(|i| big(i).len()).collect();
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // About 400 KB in one write, the small message right behind the last
        // big one: far more than the client's 512-byte receive buffer.
        let mut flood: Vec<u8> = (0..BIG).flat_map(big).collect();
        flood.extend(hex("3009 0005 736d616c6c 6f6b"));
        s.write_all(&flood).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        for i in (0..BIG).filter(|&i| packet_id(i).is_some()) {
            let pid = packet_id(i).unwrap();
            assert_eq!(
                to_hex(&read_packet(&mut reader).unwrap()),
                format!("4002{pid:04x}"),
                "PUBACK of skipped message {i}, in order"
            );
        }
        // The stream is still in sync: a QoS 1 publish after the flood.
        assert_eq!(to_hex(&read_packet(&mut reader).unwrap()), PUBLISH_T_X_QOS1);
        s.write_all(&hex("40020001")).unwrap();
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| read_packet(&mut reader).ok()).collect();
        assert_eq!(rest, vec![hex("e000")], "nothing but DISCONNECT after that");
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        // The client's whole memory for the flood: these two fixed buffers.
        let mut parts = ClientParts::with_id(CLIENT_ID, 256, RX);
        let (mut client, inbox) = parts.client_with_inbox(hostile_options);
        client.connect(addr).unwrap();
        for (i, size) in sizes.into_iter().enumerate() {
            assert_eq!(
                client.wait_msg(),
                Err(Error::MessageTooLarge { size, capacity: RX }),
                "big message {i}"
            );
            assert!(client.is_connected(), "connected after big message {i}");
        }
        assert_eq!(client.skipped_messages(), u32::from(BIG));
        assert!(inbox.is_empty(), "no big message reached the callback");
        client
            .wait_msg()
            .expect("the small message after the flood");
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("QoS 1 publish after the flood");
        assert!(client.is_connected());
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"small".to_vec(),
            payload: b"ok".to_vec(),
            qos: QoS::AtMostOnce,
            retain: false
        }]
    );
}

// ---------------------------------------------------------------------------
// 6. Hostile input: named errors, never a panic or hang, reconnect works
// ---------------------------------------------------------------------------

hostile_input_tests! {
    connack_with_wrong_length_is_protocol_invalid_length_then_reconnect_works:
        hostile_connect_answer("2003000000")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::ConnAck, len: 3 }),
    connack_unknown_code_6_is_protocol_error_then_reconnect_works:
        hostile_connect_answer("20020006") => Error::Protocol(DecodeError::UnknownConnackCode(6)),
    connack_with_reserved_flag_bits_is_protocol_error_then_reconnect_works:
        hostile_connect_answer("20020200") => Error::Protocol(DecodeError::InvalidConnackFlags(2)),
    puback_that_nothing_waits_for_is_unexpected_packet_then_reconnect_works:
        hostile_after_connack("40020001") => Error::UnexpectedPacket(PacketType::PubAck),
    packet_type_0_is_protocol_reserved_packet_type_then_reconnect_works:
        hostile_after_connack("0000") => Error::Protocol(DecodeError::ReservedPacketType(0)),
    packet_type_15_is_protocol_reserved_packet_type_then_reconnect_works:
        hostile_after_connack("f000") => Error::Protocol(DecodeError::ReservedPacketType(15)),
    remaining_length_with_five_bytes_is_protocol_remaining_length_too_long_then_reconnect_works:
        hostile_after_connack("30ffffffff7f") => Error::Protocol(DecodeError::RemainingLengthTooLong),
    second_connack_after_connect_is_unexpected_packet_then_reconnect_works:
        hostile_after_connack("20020000") => Error::UnexpectedPacket(PacketType::ConnAck),
}

// A length field longer than the packet, a wrong remaining length, an
// acknowledgement for another packet id or with the wrong number of return
// codes, a reserved packet type while a request waits: each while the call
// that meets it waits for its acknowledgement, where the stream matters most.
hostile_input_tests! {
    publish_whose_topic_length_runs_past_its_remaining_length_is_protocol_truncated_then_reconnect_works:
        hostile_after_connack("3005 0009 666f6f")
        => Error::Protocol(DecodeError::Truncated { packet: PacketType::Publish }),
    qos1_publish_too_short_for_its_packet_id_is_protocol_truncated_then_reconnect_works:
        hostile_after_connack("3203 0001 74")
        => Error::Protocol(DecodeError::Truncated { packet: PacketType::Publish }),
    puback_with_remaining_length_3_is_protocol_invalid_length_then_reconnect_works:
        hostile_answer_to_publish("4003 0001 00")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::PubAck, len: 3 }),
    puback_with_remaining_length_1_is_protocol_invalid_length_then_reconnect_works:
        hostile_answer_to_publish("4001 00")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::PubAck, len: 1 }),
    puback_whose_remaining_length_runs_past_the_bytes_sent_times_out_waiting_puback_then_reconnect_works:
        hostile_answer_to_publish("4004 0001") => Error::Timeout(Waiting::PubAck),
    suback_without_return_codes_is_protocol_invalid_length_then_reconnect_works:
        hostile_answer_to_subscribe("9002 0001")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::SubAck, len: 2 }),
    unsuback_with_remaining_length_3_is_protocol_invalid_length_then_reconnect_works:
        hostile_answer_to_unsubscribe("b003 0001 00")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::UnsubAck, len: 3 }),
    suback_larger_than_rx_buffer_is_packet_too_large_then_reconnect_works:
        hostile_answer_to_subscribe("90ff7f 0001 00")
        => Error::PacketTooLarge { packet: PacketType::SubAck, size: 16_386, capacity: 1024 },
    suback_with_unknown_packet_id_is_unexpected_packet_id_then_reconnect_works:
        hostile_answer_to_subscribe("9003 0007 00")
        => Error::UnexpectedPacketId { packet: PacketType::SubAck, expected: 1, received: 7 },
    unsuback_with_unknown_packet_id_is_unexpected_packet_id_then_reconnect_works:
        hostile_answer_to_unsubscribe("b002 0007")
        => Error::UnexpectedPacketId { packet: PacketType::UnsubAck, expected: 1, received: 7 },
    suback_with_two_return_codes_for_one_filter_is_protocol_invalid_length_then_reconnect_works:
        hostile_answer_to_subscribe("9004 0001 0000")
        => Error::Protocol(DecodeError::InvalidLength { packet: PacketType::SubAck, len: 4 }),
    packet_type_0_while_awaiting_puback_is_protocol_reserved_packet_type_then_reconnect_works:
        hostile_answer_to_publish("0000") => Error::Protocol(DecodeError::ReservedPacketType(0)),
    packet_type_15_while_awaiting_puback_is_protocol_reserved_packet_type_then_reconnect_works:
        hostile_answer_to_publish("f000") => Error::Protocol(DecodeError::ReservedPacketType(15)),
}

#[test]
fn suback_with_one_return_code_for_two_filters_is_protocol_invalid_length_then_reconnect_works() {
    hostile_case(
        answer_request_with("820a00010001610000016201", hex("9003 0001 00")),
        |client, addr| {
            client.connect(addr).expect("connect to the hostile broker");
            let mut granted = [None, None];
            client
                .subscribe_many(
                    &[(&b"a"[..], QoS::AtMostOnce), (&b"b"[..], QoS::AtLeastOnce)],
                    &mut granted,
                )
                .expect_err("subscribe_many succeeded with one return code for two filters")
        },
        |e| {
            *e == Error::Protocol(DecodeError::InvalidLength {
                packet: PacketType::SubAck,
                len: 3,
            })
        },
    );
}

#[test]
fn oversized_publish_whose_topic_length_runs_past_its_remaining_length_is_protocol_truncated() {
    // A 2 003-byte PUBLISH (more than the 1 024-byte receive buffer) whose
    // topic length, 65 535, runs past its remaining length of 2 000: the same
    // malformation as the small one above, on the path that skips messages
    // too large to buffer.
    let mut bytes = hex("30 d00f ffff");
    bytes.resize(3 + 2_000, b'x');
    let delivered = hostile_case(connack_then(bytes), connect_then_wait_err, |e| {
        matches!(
            e,
            Error::Protocol(DecodeError::Truncated {
                packet: PacketType::Publish
            })
        )
    });
    assert!(delivered.is_empty(), "{delivered:?}");
}

#[test]
fn connack_refusal_codes_1_to_5_map_to_distinct_refused_variants_then_connect_works() {
    let broker = FakeBroker::start(6, |i, mut s| {
        if i < 5 {
            let code = u8::try_from(i + 1).unwrap();
            answer_connect(&mut s, &[0x20, 0x02, 0x00, code]);
        } else {
            accept_connect(&mut s);
        }
        drain(&mut s);
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(&mut tx, &mut rx, hostile_options(Options::new(CLIENT_ID)));
        let expected: [StdClientError; 5] = [
            Error::RefusedProtocolVersion,
            Error::RefusedIdentifier,
            Error::RefusedServerUnavailable,
            Error::RefusedBadCredentials,
            Error::RefusedNotAuthorized,
        ];
        for (i, want) in expected.into_iter().enumerate() {
            assert_eq!(client.connect(addr), Err(want), "CONNACK code {}", i + 1);
            assert!(!client.is_connected());
        }
        assert_eq!(
            client.connect(addr),
            Ok(false),
            "accepted after five refusals"
        );
        client.disconnect().unwrap();
    });
    broker.join();
}

#[test]
fn publish_before_connack_is_unexpected_packet_and_not_delivered() {
    // MQTT-3.2.0-1: the first packet from the broker must be CONNACK. A
    // message before it comes from a session that was never accepted.
    let delivered = hostile_connect_answer("3007 0001 74 6c6f7374 20020000", |e| {
        matches!(e, Error::UnexpectedPacket(PacketType::Publish))
    });
    assert!(
        delivered.is_empty(),
        "message delivered before CONNACK: {delivered:?}"
    );
}

#[test]
fn puback_with_another_packet_id_is_unexpected_packet_id_then_reconnect_works() {
    let hostile = |s: &mut TcpStream| {
        accept_connect(s);
        let publish = read_packet(s).unwrap();
        assert_eq!(to_hex(&publish), "3206000174000178");
        s.write_all(&hex("40020002")).unwrap();
    };
    hostile_case(
        hostile,
        |client, addr| {
            client.connect(addr).unwrap();
            client
                .publish(b"t", b"x", false, QoS::AtLeastOnce)
                .unwrap_err()
        },
        |e| {
            *e == Error::UnexpectedPacketId {
                packet: PacketType::PubAck,
                expected: 1,
                received: 2,
            }
        },
    );
}

/// A QoS 2 PUBLISH to `in/q2` with packet id 0x1234 and payload `hi`
/// (`34` for the first sending, `3c` with DUP).
const QOS2_PUBLISH: &str = "0b 0005 696e2f7132 1234 6869";

#[test]
fn incoming_qos2_is_delivered_exactly_once_with_pubrec_and_pubcomp_on_the_wire() {
    let (sent, answers) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut s| {
        accept_connect(&mut s);
        let mut exchange = |bytes: &str| {
            s.write_all(&hex(bytes)).unwrap();
            to_hex(&read_packet(&mut s).unwrap())
        };
        let answers = vec![
            exchange(&format!("34{QOS2_PUBLISH}")),
            // The broker sends it again (DUP) before releasing it: a copy.
            exchange(&format!("3c{QOS2_PUBLISH}")),
            exchange("62021234"),
            // Released: the same id is a new message now.
            exchange(&format!("34{QOS2_PUBLISH}")),
        ];
        sent.send(answers).unwrap();
        drain(&mut s);
    });
    let addr = broker.addr;
    let delivered = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 256, 256);
        let (mut client, inbox) = parts.client_with_inbox(|o| o);
        client.connect(addr).unwrap();
        let start = Instant::now();
        // Four packets in, one answer each; then a moment for anything more.
        let mut handled = 0;
        while handled < 4 && start.elapsed() < WAIT {
            handled += usize::from(client.wait_msg_for(100).unwrap());
        }
        client.wait_msg_for(200).unwrap();
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        answers.recv().unwrap(),
        ["50021234", "50021234", "70021234", "50021234"],
        "PUBREC, PUBREC for the copy, PUBCOMP for the PUBREL, PUBREC"
    );
    assert_eq!(
        delivered.len(),
        2,
        "the copy was not delivered: {delivered:?}"
    );
    assert!(
        delivered
            .iter()
            .all(|m| m.qos == QoS::ExactlyOnce && m.payload == b"hi")
    );
}

#[test]
fn broker_closing_mid_packet_is_network_or_closed_then_reconnect_works() {
    let hostile = |s: &mut TcpStream| {
        accept_connect(s);
        // Half a PUBLISH, then the broker goes away.
        s.write_all(&hex("30100009666f6f")).unwrap();
        s.flush().unwrap();
        thread::sleep(Duration::from_millis(50));
        s.shutdown(std::net::Shutdown::Both).ok();
    };
    let delivered = hostile_case(hostile, connect_then_wait_err, |e| {
        matches!(
            e,
            Error::Closed | Error::Network(StdNetError::Closed | StdNetError::Reset)
        )
    });
    assert!(delivered.is_empty(), "half a message must not be delivered");
}

#[test]
fn broker_closing_while_awaiting_connack_is_network_or_closed_then_reconnect_works() {
    let hostile = |s: &mut TcpStream| {
        read_packet(s).unwrap();
        s.write_all(&hex("2002")).unwrap();
        s.shutdown(std::net::Shutdown::Both).ok();
    };
    hostile_case(hostile, connect_err, |e| {
        matches!(
            e,
            Error::Closed | Error::Network(StdNetError::Closed | StdNetError::Reset)
        )
    });
}

// ---------------------------------------------------------------------------
// 7. Packet id wrap
// ---------------------------------------------------------------------------

#[test]
fn packet_id_after_65535_is_1_on_the_wire() {
    const PUBLISHES: u32 = 65_536;
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // Buffered: read_packet's byte-wise reads of the socket itself would
        // be slow for 65 536 publishes.
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        let mut expected: u16 = 1;
        let mut seen = Vec::new();
        for n in 0..PUBLISHES {
            let p = read_packet(&mut reader).unwrap();
            assert_eq!(p[..5], hex("3206000174")[..], "publish {n}");
            let pid = u16::from_be_bytes([p[5], p[6]]);
            assert_eq!(pid, expected, "packet id of publish {n}");
            assert_ne!(pid, 0, "packet id 0 is forbidden");
            if n >= PUBLISHES - 3 {
                seen.push(to_hex(&p));
            }
            s.write_all(&[0x40, 0x02, p[5], p[6]]).unwrap();
            expected = if expected == u16::MAX {
                1
            } else {
                expected + 1
            };
        }
        // The last three on the wire: 65534, 65535, then 1.
        assert_eq!(
            seen,
            vec!["3206000174fffe61", "3206000174ffff61", "3206000174000161"]
        );
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| read_packet(&mut reader).ok()).collect();
        assert_eq!(rest, vec![hex("e000")]);
    });
    let addr = broker.addr;
    let elapsed = run_in_thread_within(Duration::from_secs(120), move || {
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let mut client = std_client(&mut tx, &mut rx, hostile_options(Options::new(CLIENT_ID)));
        client.connect(addr).unwrap();
        let start = Instant::now();
        for n in 0..PUBLISHES {
            client
                .publish(b"t", b"a", false, QoS::AtLeastOnce)
                .unwrap_or_else(|e| {
                    panic!("publish {n} (packet id {}): {e:?}", client.next_packet_id())
                });
        }
        let elapsed = start.elapsed();
        assert_eq!(client.next_packet_id(), 2);
        client.disconnect().unwrap();
        elapsed
    });
    broker.join();
    eprintln!("65 536 QoS 1 publishes took {elapsed:?}");
}

// ---------------------------------------------------------------------------
// 8. Password without user
// ---------------------------------------------------------------------------

#[test]
fn password_without_user_is_invalid_before_any_connection_is_made() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(
            &mut tx,
            &mut rx,
            Options::new(CLIENT_ID).password(b"secret"),
        );
        assert_eq!(
            client.connect(addr),
            Err(Error::Invalid(EncodeError::PasswordWithoutUsername))
        );
        assert!(!client.is_connected());
    });
    // Give a stray connection time to land in the backlog, then check none did.
    thread::sleep(Duration::from_millis(100));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => panic!("accept failed: {e}"),
        Ok((_, peer)) => panic!("the client connected ({peer}) although its options were invalid"),
    }
}

// ---------------------------------------------------------------------------
// 9. A burst of small messages while the client publishes QoS 1
// ---------------------------------------------------------------------------

#[test]
fn burst_of_100_000_messages_while_publishing_qos1_loses_none_keeps_order_and_every_publish_succeeds()
 {
    const MESSAGES: u32 = 100_000;
    const CHUNK: u32 = 1_000;
    const CHUNKS: u32 = MESSAGES / CHUNK;
    const PUBLISHES: u16 = 100;
    /// QoS 0 message `n`: topic `n`, payload `n` as four bytes, 9 bytes in all.
    fn numbered(n: u32) -> Vec<u8> {
        publish_packet(b"n", None, &n.to_be_bytes())
    }
    /// Messages `c * CHUNK ..` of chunk `c`, for one write.
    fn chunk(c: u32) -> Vec<u8> {
        (c * CHUNK..(c + 1) * CHUNK).flat_map(numbered).collect()
    }
    /// The client's QoS 1 publish `k`: topic `q1`, payload `k`, packet id `k + 1`.
    fn client_publish(k: u16) -> Vec<u8> {
        qos1_publish(b"q1", k + 1, &k.to_be_bytes())
    }

    let (report_tx, report) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // The client's packets are read in a thread of their own, so that
        // this one can write floods meanwhile.
        let (packets_tx, packets) = mpsc::channel::<Vec<u8>>();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let reader_thread = thread::spawn(move || {
            while let Ok(p) = read_packet(&mut reader) {
                if packets_tx.send(p).is_err() {
                    break;
                }
            }
        });
        let answered = Cell::new(0u16);
        let puback = |p: Vec<u8>| {
            let k = answered.get();
            assert_eq!(
                to_hex(&p),
                to_hex(&client_publish(k)),
                "the client's publish {k}"
            );
            answered.set(k + 1);
            // 32 08, topic 0002 "q1", then the packet id.
            [0x40, 0x02, p[6], p[7]]
        };
        let (mut acks_between, mut acks_behind) = (0u32, 0u32);
        // The first 50 000: each PUBLISH that arrived is answered at once,
        // before the next chunk.
        for c in 0..CHUNKS / 2 {
            let mut out = Vec::new();
            for p in packets.try_iter() {
                out.extend(puback(p));
                acks_between += 1;
            }
            out.extend(chunk(c));
            s.write_all(&out).unwrap();
        }
        // The next 49 000: each PUBLISH is answered only behind one more
        // chunk, so the PUBACK reaches the client after 1 000 messages.
        for c in CHUNKS / 2..CHUNKS - 1 {
            let mut waiting: Vec<Vec<u8>> = packets.try_iter().collect();
            if waiting.is_empty() && answered.get() < PUBLISHES {
                waiting.push(
                    packets
                        .recv_timeout(WAIT)
                        .expect("the client's next publish"),
                );
            }
            let mut out = chunk(c);
            for p in waiting {
                out.extend(puback(p));
                acks_behind += 1;
            }
            s.write_all(&out).unwrap();
        }
        // Publishes still to come are answered as they arrive.
        while answered.get() < PUBLISHES {
            let p = packets
                .recv_timeout(WAIT)
                .expect("the client's next publish");
            s.write_all(&puback(p)).unwrap();
        }
        // The last chunk comes after every PUBACK: only wait_msg takes it in.
        s.write_all(&chunk(CHUNKS - 1)).unwrap();
        let rest: Vec<Vec<u8>> = packets.iter().collect();
        assert_eq!(rest, vec![hex("e000")], "nothing but DISCONNECT after that");
        reader_thread.join().unwrap();
        report_tx.send((acks_between, acks_behind)).unwrap();
    });
    let addr = broker.addr;
    let (after_publishes, received, elapsed) = run_in_thread_within(HANG_LIMIT, move || {
        let next = Cell::new(0u32);
        let mut on_message = |m: Message<'_>| {
            assert_eq!((m.topic, m.qos), (&b"n"[..], QoS::AtMostOnce));
            let n = u32::from_be_bytes(m.payload.try_into().expect("a 4-byte number"));
            assert_eq!(n, next.get(), "message numbers strictly increase by one");
            next.set(n + 1);
        };
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let options = Options::new(CLIENT_ID).ack_timeout_ms(10_000);
        let mut client = std_client(&mut tx, &mut rx, options);
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        let start = Instant::now();
        for k in 0..PUBLISHES {
            client
                .publish(b"q1", &k.to_be_bytes(), false, QoS::AtLeastOnce)
                .unwrap_or_else(|e| panic!("publish {k}, after {} messages: {e:?}", next.get()));
        }
        let after_publishes = next.get();
        while next.get() < MESSAGES {
            client
                .wait_msg()
                .unwrap_or_else(|e| panic!("wait_msg after {} messages: {e:?}", next.get()));
        }
        let elapsed = start.elapsed();
        assert!(client.is_connected());
        client.disconnect().unwrap();
        (after_publishes, next.get(), elapsed)
    });
    broker.join();
    let (acks_between, acks_behind) = report.recv().expect("the broker's report");
    eprintln!(
        "{MESSAGES} messages and {PUBLISHES} QoS 1 publishes in {elapsed:?}; \
         PUBACKs between chunks: {acks_between}, behind a chunk: {acks_behind}"
    );
    assert_eq!(received, MESSAGES, "every message arrived");
    // The client has one publish in flight at a time, so at most one PUBACK
    // goes out between two of the first 50 chunks, and each of the next 49
    // chunks waits for a publish and carries its PUBACK behind it.
    assert_eq!(acks_behind, CHUNKS / 2 - 1, "PUBACKs behind a chunk");
    // The last PUBACK comes after chunk 98 and before chunk 99: the last
    // publish returns with exactly 99 000 messages delivered.
    assert_eq!(after_publishes, MESSAGES - CHUNK);
}
