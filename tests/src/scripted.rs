//! Scripted fake brokers for exact wire behaviour and hostile input: a
//! broker that answers like a real one and records what it receives, a
//! broker whose first connection is hostile, and the hostile cases built on
//! it (each checks the named error, the deadline, and that the same client
//! connects again). Used by `wire_sent.rs`, `wire_received.rs` and
//! `wire_hostile.rs`.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use umqtt_simple::{Error, Options, QoS};

use crate::{
    CONNACK_ACCEPTED, ClientParts, FakeBroker, HANG_LIMIT, Received, StdClient, StdClientError,
    accept_connect, answer_connect, hex, read_packet, run_in_thread_within, std_client, to_hex,
};

/// The client id of every client here, as in the golden vectors.
pub const CLIENT_ID: &str = "umqtt_client";

/// Length of the fixed header at the start of `packet`.
pub fn fixed_header_len(packet: &[u8]) -> usize {
    1 + packet[1..]
        .iter()
        .take(4)
        .position(|b| b & 0x80 == 0)
        .expect("remaining length ends")
        + 1
}

/// Reads packets until the client closes the connection (or 20 s pass);
/// returns them.
pub fn drain(stream: &mut TcpStream) -> Vec<Vec<u8>> {
    let mut packets = Vec::new();
    while let Ok(p) = read_packet(stream) {
        packets.push(p);
    }
    packets
}

/// The answer a well-behaved broker gives to `packet`, if any.
pub fn auto_reply(packet: &[u8]) -> Option<Vec<u8>> {
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
pub fn recording_broker() -> (FakeBroker, Receiver<Vec<u8>>) {
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
pub fn connect_bytes(options: Options<'static>) -> Vec<u8> {
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
pub fn assert_connect_bytes(options: Options<'static>, expected_hex: &str) {
    assert_eq!(to_hex(&connect_bytes(options)), expected_hex);
}

/// A broker whose first connection runs `hostile` (after which it reads until
/// the client closes), and whose second is a normal session.
pub fn hostile_broker<F>(hostile: F) -> FakeBroker
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
pub const HOSTILE_DEADLINE_MS: u32 = 5_000;

/// Allowed lateness of a hostile case's error on top of [`HOSTILE_DEADLINE_MS`].
pub const SLACK: Duration = Duration::from_secs(2);

/// `options` for hostile tests: deadlines short enough that a missed packet
/// shows as a wrong error rather than a long wait.
pub fn hostile_options(options: Options<'_>) -> Options<'_> {
    options
        .connect_timeout_ms(HOSTILE_DEADLINE_MS)
        .ack_timeout_ms(HOSTILE_DEADLINE_MS)
}

/// Runs `provoke` on a fresh client against `broker`'s hostile first
/// connection, checks the error with `expected`, then checks that the same
/// client connects again (second connection) and that the message callback
/// never saw anything from the hostile connection beyond `delivered`.
pub fn hostile_case(
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
pub fn connack_then(bytes: Vec<u8>) -> impl Fn(&mut TcpStream) + Send + 'static {
    move |stream: &mut TcpStream| {
        accept_connect(stream);
        stream.write_all(&bytes).expect("write hostile bytes");
    }
}

/// Reads the CONNECT and answers with `bytes` instead of a good CONNACK.
pub fn answer_connect_with(bytes: Vec<u8>) -> impl Fn(&mut TcpStream) + Send + 'static {
    move |stream: &mut TcpStream| {
        answer_connect(stream, &bytes);
    }
}

pub fn connect_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    match client.connect(addr) {
        Ok(_) => panic!("connect succeeded against a hostile broker"),
        Err(e) => e,
    }
}

pub fn connect_then_wait_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
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
pub fn hostile_connect_answer(
    answer_hex: &str,
    expected: impl FnOnce(&StdClientError) -> bool + Send + 'static,
) -> Vec<Received> {
    hostile_case(answer_connect_with(hex(answer_hex)), connect_err, expected)
}

/// [`hostile_case`] with a broker that sends the bytes of `bytes_hex` after a
/// good CONNACK: `wait_msg_for` must fail with an error `expected` accepts.
pub fn hostile_after_connack(
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
pub const PUBLISH_T_X_QOS1: &str = "3206000174000178";
/// The SUBSCRIBE to `t` at QoS 0 with packet id 1, as the client sends it.
pub const SUBSCRIBE_T_QOS0: &str = "8206000100017400";
/// The UNSUBSCRIBE from `t` with packet id 1, as the client sends it.
pub const UNSUBSCRIBE_T: &str = "a2050001000174";

/// Reads the CONNECT, answers CONNACK accepted, reads the client's next
/// packet (which must be `request_hex`) and answers it with `answer`.
pub fn answer_request_with(
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

pub fn publish_qos1_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .publish(b"t", b"x", false, QoS::AtLeastOnce)
        .expect_err("QoS 1 publish succeeded against a hostile broker")
}

pub fn subscribe_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .subscribe(b"t", QoS::AtMostOnce)
        .expect_err("subscribe succeeded against a hostile broker")
}

pub fn unsubscribe_err(client: &mut StdClient<'_>, addr: SocketAddr) -> StdClientError {
    client.connect(addr).expect("connect to the hostile broker");
    client
        .unsubscribe(b"t")
        .expect_err("unsubscribe succeeded against a hostile broker")
}

/// [`hostile_case`] with a broker that answers the client's QoS 1 PUBLISH
/// ([`PUBLISH_T_X_QOS1`]) with the bytes of `answer_hex`: `publish` must fail
/// with an error `expected` accepts.
pub fn hostile_answer_to_publish(
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
pub fn hostile_answer_to_subscribe(
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
pub fn hostile_answer_to_unsubscribe(
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
#[macro_export]
macro_rules! hostile_input_tests {
    ($($test:ident: $scenario:ident($bytes:literal) => $error:pat,)+) => {$(
        #[test]
        fn $test() {
            $scenario($bytes, |e| matches!(e, $error));
        }
    )+};
}

/// A PUBLISH of `payload` to `topic`: QoS 1 with packet id `pid` if there is
/// one, else QoS 0.
pub fn publish_packet(topic: &[u8], pid: Option<u16>, payload: &[u8]) -> Vec<u8> {
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
pub fn qos1_publish(topic: &[u8], pid: u16, payload: &[u8]) -> Vec<u8> {
    publish_packet(topic, Some(pid), payload)
}
