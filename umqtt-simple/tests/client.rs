//! Client behaviour on virtual time (umqtt_transports::memory): an in-memory
//! stack whose broker side is scripted by the test, a clock that moves only
//! when told to, and a waiter that moves it instead of sleeping. Deadlines are
//! proven exactly, without waiting.

use core::cell::RefCell;
use core::net::{Ipv4Addr, SocketAddr};
use std::vec;
use std::vec::Vec;

use umqtt_simple::Clock;
use umqtt_transports::memory::{MemoryError, MemoryStack, VirtualClock, VirtualWait};

use umqtt_simple::{Client, Error, Message, Options, QoS, Waiting};

const BROKER: SocketAddr = SocketAddr::new(core::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);
const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];

struct Rig {
    pipe: MemoryStack,
    clock: VirtualClock,
    waiter: VirtualWait,
}

impl Rig {
    fn new() -> Self {
        let clock = VirtualClock::starting_at(1_000);
        Rig {
            pipe: MemoryStack::new(),
            waiter: VirtualWait::new(&clock),
            clock,
        }
    }

    fn client<'a>(
        &self,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Client<'a, MemoryStack, VirtualClock, VirtualWait> {
        Client::new(self.pipe.clone(), self.clock.clone(), tx, rx, options)
            .with_waiter(self.waiter.clone())
    }

    /// A client that connected (the CONNACK answered), with what it sent so
    /// far cleared.
    fn connected<'a>(
        &self,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Client<'a, MemoryStack, VirtualClock, VirtualWait> {
        self.pipe.answer(0x10, CONNACK);
        let mut client = self.client(tx, rx, options);
        client.connect(BROKER).unwrap();
        self.pipe.take_sent();
        client
    }

    fn now(&self) -> u64 {
        self.clock.now_ms()
    }
}

#[test]
fn connect_sends_connect_and_returns_session_present() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, &[0x20, 0x02, 0x01, 0x00]);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let options = Options::new("umqtt_client").clean_session(false);
    let mut client = rig.client(&mut tx, &mut rx, options);
    assert_eq!(client.connect(BROKER), Ok(true));
    assert_eq!(
        rig.pipe.sent(),
        b"\x10\x18\x00\x04MQTT\x04\x00\x00\x3c\x00\x0cumqtt_client",
        "default keepalive is 60 s"
    );
}

#[test]
fn session_present_for_a_clean_session_is_a_protocol_error_that_closes_the_connection() {
    // MQTT-3.2.2-1 rules it out; trusting it would skip resubscribing.
    let rig = Rig::new();
    rig.pipe.answer(0x10, &[0x20, 0x02, 0x01, 0x00]);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    assert_eq!(
        client.connect(BROKER),
        Err(Error::SessionPresentOnCleanSession)
    );
    assert!(!client.is_connected());
}

#[test]
fn connack_that_never_comes_times_out_at_the_connect_deadline() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let options = Options::new("c").connect_timeout_ms(3_000).keepalive(1);
    let mut client = rig.client(&mut tx, &mut rx, options);
    let start = rig.now();
    assert_eq!(
        client.connect(BROKER),
        Err(Error::Timeout(Waiting::ConnAck))
    );
    assert_eq!(
        rig.now() - start,
        3_000,
        "one deadline for connect and CONNACK"
    );
    assert!(!client.is_connected());
    assert_eq!(rig.pipe.sent()[0], 0x10, "no PINGREQ before CONNACK");
    assert_eq!(rig.pipe.sent().len(), 15);
}

#[test]
fn idle_wait_msg_sends_pingreq_each_keepalive_and_stays_connected() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").keepalive(2));
    client.connect(BROKER).unwrap();
    let connected_at = rig.now();
    rig.pipe.take_sent();
    for _ in 0..5 {
        rig.pipe.answer(0xc0, &[0xd0, 0x00]);
        // Returns after handling the PINGRESP.
        client.wait_msg().unwrap();
    }
    assert_eq!(rig.pipe.sent(), [0xc0, 0x00].repeat(5));
    assert_eq!(
        rig.now() - connected_at,
        5 * 2_000,
        "one PINGREQ per idle keepalive interval"
    );
    assert!(client.is_connected());
}

#[test]
fn missing_pingresp_ends_the_connection_after_the_ping_timeout() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").keepalive(10));
    client.connect(BROKER).unwrap();
    let connected_at = rig.now();
    assert_eq!(client.wait_msg(), Err(Error::Timeout(Waiting::PingResp)));
    // PINGREQ at 10 s, default ping timeout half the keepalive: 5 s.
    assert_eq!(rig.now() - connected_at, 15_000);
    assert!(!client.is_connected());
    assert_eq!(client.check_msg(), Err(Error::NotConnected));
}

#[test]
fn ping_timeout_is_configured_apart_from_keepalive() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let options = Options::new("c").keepalive(60).ping_timeout_ms(700);
    let mut client = rig.client(&mut tx, &mut rx, options);
    client.connect(BROKER).unwrap();
    let connected_at = rig.now();
    assert_eq!(client.wait_msg(), Err(Error::Timeout(Waiting::PingResp)));
    assert_eq!(rig.now() - connected_at, 60_700);
}

#[test]
fn check_msg_never_waits_but_still_pings_when_keepalive_is_due() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").keepalive(1));
    assert_eq!(client.check_msg(), Ok(false));
    assert!(rig.waiter.waits().is_empty(), "check_msg must not wait");
    rig.clock.advance(1_000);
    rig.pipe.answer(0xc0, &[0xd0, 0x00]);
    assert_eq!(
        client.check_msg(),
        Ok(true),
        "PINGREQ sent, PINGRESP handled"
    );
    assert_eq!(rig.pipe.sent(), [0xc0, 0x00]);
    assert!(rig.waiter.waits().is_empty());
}

#[test]
fn puback_that_never_comes_times_out_and_drops_the_connection() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").ack_timeout_ms(2_500));
    client.connect(BROKER).unwrap();
    let start = rig.now();
    assert_eq!(
        client.publish(b"t", b"x", false, QoS::AtLeastOnce),
        Err(Error::Timeout(Waiting::PubAck))
    );
    assert_eq!(rig.now() - start, 2_500);
    assert!(!client.is_connected());
}

#[test]
fn message_arriving_before_puback_goes_to_the_callback_and_is_acknowledged_after_it() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    // Answer the PUBLISH with an incoming QoS 1 message first, then the PUBACK.
    rig.pipe
        .answer(0x32, b"\x32\x0b\x00\x05in/q1\x12\x34hi\x40\x02\x00\x01");
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| {
        seen.borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    client
        .publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce)
        .unwrap();
    drop(client);
    assert_eq!(
        seen.into_inner(),
        [(b"in/q1".to_vec(), b"hi".to_vec(), QoS::AtLeastOnce)]
    );
    let mut expected = b"\x32\x12\x00\x09foo_topic\x00\x01hello".to_vec();
    expected.extend_from_slice(b"\x40\x02\x12\x34");
    assert_eq!(
        rig.pipe.sent(),
        expected,
        "PUBLISH in one send, then PUBACK of the message"
    );
}

#[test]
fn puback_for_another_packet_id_is_a_named_error() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    rig.pipe.answer(0x32, b"\x40\x02\x00\x07");
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.connect(BROKER).unwrap();
    assert_eq!(
        client.publish(b"t", b"x", false, QoS::AtLeastOnce),
        Err(Error::UnexpectedPacketId {
            packet: umqtt_simple::packet::PacketType::PubAck,
            expected: 1,
            received: 7
        })
    );
    assert!(!client.is_connected());
}

#[test]
fn packet_ids_wrap_from_65535_to_1() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.connect(BROKER).unwrap();
    for expected in 1..=65_535u32 {
        assert_eq!(u32::from(client.next_packet_id()), expected);
        let id = client.next_packet_id().to_be_bytes();
        rig.pipe.answer(0x32, &[0x40, 0x02, id[0], id[1]]);
        client.publish(b"t", b"a", false, QoS::AtLeastOnce).unwrap();
    }
    assert_eq!(client.next_packet_id(), 1);
    rig.pipe.take_sent();
    rig.pipe.answer(0x32, b"\x40\x02\x00\x01");
    client.publish(b"t", b"b", false, QoS::AtLeastOnce).unwrap();
    assert_eq!(rig.pipe.sent(), b"\x32\x06\x00\x01t\x00\x01b");
}

#[test]
fn bad_input_is_refused_before_anything_is_sent() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let on = &mut |_: Message<'_>| {};
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(on);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    use umqtt_simple::packet::{EncodeError, Field};
    let long = std::vec![b'a'; 70_000];
    let cases: [(&[u8], EncodeError); 4] = [
        (b"", EncodeError::Empty(Field::Topic)),
        (b"a/+/b", EncodeError::WildcardInTopic),
        (b"a/#", EncodeError::WildcardInTopic),
        (
            &long,
            EncodeError::TooLong {
                field: Field::Topic,
                len: 70_000,
            },
        ),
    ];
    for (topic, error) in cases {
        assert_eq!(
            client.publish(topic, b"x", false, QoS::AtMostOnce),
            Err(Error::Invalid(error))
        );
        assert_eq!(
            client.publish(topic, b"x", false, QoS::AtLeastOnce),
            Err(Error::Invalid(error))
        );
    }
    assert_eq!(
        client.subscribe(b"a/b#", QoS::AtMostOnce),
        Err(Error::Invalid(EncodeError::InvalidWildcard))
    );
    assert_eq!(
        client.unsubscribe(b""),
        Err(Error::Invalid(EncodeError::Empty(Field::TopicFilter)))
    );
    assert!(rig.pipe.sent().is_empty());
    assert!(
        client.is_connected(),
        "a refused input leaves the connection alone"
    );
    let text = std::format!(
        "{}",
        Error::<MemoryError>::Invalid(EncodeError::TooLong {
            field: Field::Topic,
            len: 70_000
        })
    );
    assert_eq!(text, "topic is 70000 bytes; MQTT allows 65535");
}

#[test]
fn password_without_user_is_refused_before_connecting() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").password(b"secret"));
    assert_eq!(
        client.connect(BROKER),
        Err(Error::Invalid(
            umqtt_simple::packet::EncodeError::PasswordWithoutUsername
        ))
    );
    assert!(rig.pipe.sent().is_empty());
}

#[test]
fn payload_larger_than_the_transmit_buffer_follows_the_header() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 32], [0u8; 32]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    let payload = [b'y'; 20_000];
    client
        .publish(b"t", &payload, false, QoS::AtMostOnce)
        .unwrap();
    let sent = rig.pipe.sent();
    assert_eq!(&sent[..7], b"\x30\xa3\x9c\x01\x00\x01t");
    assert_eq!(sent.len(), 20_007);
}

#[test]
fn oversize_message_is_drained_acknowledged_and_the_next_one_arrives() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push(m.payload.to_vec());
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    // A 300-byte QoS 1 message (id 9) into a 64-byte buffer, then a small one.
    let mut big = std::vec![0x32, 0xae, 0x02, 0x00, 0x01, b't', 0x00, 0x09];
    big.resize(3 + 302, b'z');
    rig.pipe.feed(&big);
    rig.pipe.feed(b"\x30\x04\x00\x01tk");
    assert_eq!(
        client.wait_msg(),
        Err(Error::MessageTooLarge {
            size: 305,
            capacity: 64
        })
    );
    assert!(client.is_connected());
    assert_eq!(
        rig.pipe.sent(),
        b"\x40\x02\x00\x09",
        "the skipped QoS 1 message is acknowledged"
    );
    client.wait_msg().unwrap();
    assert_eq!(client.skipped_messages(), 1);
    drop(client);
    assert_eq!(seen.into_inner(), [b"k".to_vec()]);
}

#[test]
fn connack_refusals_are_distinct_errors() {
    let cases = [
        (1, Error::RefusedProtocolVersion),
        (2, Error::RefusedIdentifier),
        (3, Error::RefusedServerUnavailable),
        (4, Error::RefusedBadCredentials),
        (5, Error::RefusedNotAuthorized),
    ];
    for (code, expected) in cases {
        let rig = Rig::new();
        rig.pipe.answer(0x10, &[0x20, 0x02, 0x00, code]);
        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
        assert_eq!(client.connect(BROKER), Err(expected));
        assert!(!client.is_connected());
    }
}

#[test]
fn publish_before_connack_is_a_protocol_error() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, b"\x30\x03\x00\x01t\x20\x02\x00\x00");
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    assert_eq!(
        client.connect(BROKER),
        Err(Error::UnexpectedPacket(
            umqtt_simple::packet::PacketType::Publish
        ))
    );
}

#[test]
fn publish_only_client_reads_its_pingresp_before_publishing() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").keepalive(1));
    client.connect(BROKER).unwrap();
    rig.pipe.answer(0xc0, &[0xd0, 0x00]);
    client.ping().unwrap();
    // Well past the ping timeout: the PINGRESP has been waiting in the stack.
    rig.clock.advance(900);
    client.publish(b"t", b"x", false, QoS::AtMostOnce).unwrap();
    rig.clock.advance(400);
    client.publish(b"t", b"y", false, QoS::AtMostOnce).unwrap();
    assert!(client.is_connected());
}

#[test]
fn a_subscriber_receiving_a_steady_stream_pings_every_keepalive_even_while_a_pingresp_is_late() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let on = &mut |_: Message<'_>| {};
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").keepalive(1));
    client.set_callback(on);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    for _ in 0..10 {
        rig.pipe.feed(b"\x30\x04\x00\x01tm");
        rig.clock.advance(300);
        client.wait_msg().unwrap();
    }
    let pings = rig
        .pipe
        .sent()
        .chunks(2)
        .filter(|c| *c == [0xc0, 0x00])
        .count();
    // 3 s of messages, keepalive 1 s: the client sends something every
    // keepalive (MQTT-3.1.2-23), although no PINGRESP came; the messages
    // show the link is alive, so the connection stays up.
    assert_eq!(pings, 2, "a PINGREQ at 1.2 s and at 2.4 s");
    assert!(client.is_connected());
}

#[test]
fn partial_sends_are_completed_and_a_send_that_takes_nothing_ends_at_the_send_deadline() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    rig.pipe.limit_sends(Some(3));
    client
        .publish(b"foo_topic", b"hello", false, QoS::AtMostOnce)
        .unwrap();
    assert_eq!(rig.pipe.take_sent(), b"\x30\x10\x00\x09foo_topichello");
    rig.pipe.limit_sends(Some(0));
    let start = rig.now();
    assert_eq!(
        client.publish(b"t", b"x", false, QoS::AtMostOnce),
        Err(Error::Timeout(Waiting::Send))
    );
    assert_eq!(
        rig.now() - start,
        10_000,
        "retried until the default send deadline"
    );
    assert!(
        !client.is_connected(),
        "half a packet may be on the wire: the connection is dropped"
    );
}

#[test]
fn many_packets_per_read_arrive_in_order_across_the_end_of_the_buffer() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push(m.payload.to_vec());
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    client.connect(BROKER).unwrap();
    // 7-byte packets never line up with the 64-byte buffer, so some are split
    // by its end and must be moved to the front to complete.
    for i in 0..200u16 {
        let [hi, lo] = i.to_be_bytes();
        rig.pipe.feed(&[0x30, 0x05, 0x00, 0x01, b't', hi, lo]);
    }
    for _ in 0..200 {
        client.wait_msg().unwrap();
    }
    drop(client);
    let expected: Vec<Vec<u8>> = (0..200u16).map(|i| i.to_be_bytes().to_vec()).collect();
    assert_eq!(seen.into_inner(), expected);
}

#[test]
fn a_publish_after_the_broker_closed_an_idle_connection_fails_instead_of_vanishing() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    rig.clock.advance(5_000);
    rig.pipe.close_by_peer();
    assert_eq!(
        client.publish(b"t", b"lost?", false, QoS::AtMostOnce),
        Err(Error::Network(MemoryError::Closed))
    );
    assert!(
        rig.pipe.sent().is_empty(),
        "nothing was written into the dead connection"
    );
    assert!(!client.is_connected());
}

#[test]
fn a_fast_publisher_reads_at_most_every_100_ms() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.connect(BROKER).unwrap();
    rig.pipe.close_by_peer();
    // Within 100 ms of the last read the publish goes straight out.
    rig.clock.advance(99);
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    rig.clock.advance(1);
    assert!(client.publish(b"t", b"b", false, QoS::AtMostOnce).is_err());
}

/// A QoS 0 PUBLISH of `payload` to topic `t`, as the client encodes it.
fn qos0_packet(payload: &[u8]) -> Vec<u8> {
    let mut packet = vec![0x30, 3 + payload.len() as u8, 0x00, 0x01, b't'];
    packet.extend_from_slice(payload);
    packet
}

#[test]
fn batched_qos0_publishes_wait_in_the_buffer_and_leave_in_one_send_when_it_fills() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    let sends = rig.pipe.sends();
    // Ten bytes each: six fill 60 of the 64 bytes.
    for i in 0..6u8 {
        client
            .publish(b"t", &[i; 5], false, QoS::AtMostOnce)
            .unwrap();
    }
    assert!(rig.pipe.sent().is_empty(), "held in the transmit buffer");
    assert_eq!(client.pending_messages(), 6);
    client
        .publish(b"t", &[6; 5], false, QoS::AtMostOnce)
        .unwrap();
    let first_six: Vec<u8> = (0..6u8).flat_map(|i| qos0_packet(&[i; 5])).collect();
    assert_eq!(rig.pipe.take_sent(), first_six, "in publish order");
    assert_eq!(rig.pipe.sends() - sends, 1, "one send for the six");
    assert_eq!(
        client.pending_messages(),
        1,
        "the seventh starts the next batch"
    );
    client.flush().unwrap();
    assert_eq!(rig.pipe.take_sent(), qos0_packet(&[6; 5]));
    assert_eq!(client.dropped_messages(), 0);
}

#[test]
fn every_other_call_sends_the_batch_first_in_the_same_send() {
    type Call = fn(&mut Client<'_, MemoryStack, VirtualClock, VirtualWait>);
    let calls: [(&str, Call, &[u8]); 5] = [
        ("flush", |c| c.flush().unwrap(), b""),
        ("check_msg", |c| assert_eq!(c.check_msg(), Ok(false)), b""),
        (
            "wait_msg_for",
            |c| assert_eq!(c.wait_msg_for(10), Ok(false)),
            b"",
        ),
        ("ping", |c| c.ping().unwrap(), b"\xc0\x00"),
        ("disconnect", |c| c.disconnect().unwrap(), b"\xe0\x00"),
    ];
    for (name, call, own_packet) in calls {
        let rig = Rig::new();
        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let mut noop = |_: Message<'_>| {};
        let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
        client.set_callback(&mut noop);
        client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
        client.publish(b"t", b"b", false, QoS::AtMostOnce).unwrap();
        let sends = rig.pipe.sends();
        call(&mut client);
        let mut expected = [qos0_packet(b"a"), qos0_packet(b"b")].concat();
        expected.extend_from_slice(own_packet);
        assert_eq!(rig.pipe.take_sent(), expected, "{name}");
        assert_eq!(rig.pipe.sends() - sends, 1, "{name}: one send");
        assert_eq!(client.pending_messages(), 0, "{name}");
        assert_eq!(client.dropped_messages(), 0, "{name}");
    }
}

#[test]
fn qos1_publish_and_subscribe_carry_the_batch_ahead_of_their_own_packet() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut noop = |_: Message<'_>| {};
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    client.set_callback(&mut noop);
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    // The send starts with the batched PUBLISH (0x30); the broker answers it.
    rig.pipe.answer(0x30, &[0x40, 0x02, 0x00, 0x01]);
    client.publish(b"t", b"q", false, QoS::AtLeastOnce).unwrap();
    let qos1 = b"\x32\x06\x00\x01t\x00\x01q";
    assert_eq!(
        rig.pipe.take_sent(),
        [&qos0_packet(b"a")[..], qos1].concat()
    );
    client.publish(b"t", b"b", false, QoS::AtMostOnce).unwrap();
    rig.pipe.answer(0x30, &[0x90, 0x03, 0x00, 0x02, 0x00]);
    assert_eq!(client.subscribe(b"s", QoS::AtMostOnce), Ok(QoS::AtMostOnce));
    let subscribe = b"\x82\x06\x00\x02\x00\x01s\x00";
    assert_eq!(
        rig.pipe.take_sent(),
        [&qos0_packet(b"b")[..], subscribe].concat()
    );
}

#[test]
fn a_lost_connection_drops_the_batch_and_counts_it() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    client.connect(BROKER).unwrap();
    for payload in [b"a", b"b", b"c"] {
        client
            .publish(b"t", payload, false, QoS::AtMostOnce)
            .unwrap();
    }
    rig.pipe.close_connection();
    assert_eq!(client.flush(), Err(Error::Network(MemoryError::Closed)));
    assert!(!client.is_connected());
    assert_eq!(client.dropped_messages(), 3);
    assert_eq!(client.pending_messages(), 0);
    assert_eq!(client.flush(), Err(Error::NotConnected));
    // Connecting again starts empty: nothing of the old batch is sent.
    rig.pipe.answer(0x10, CONNACK);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    client.publish(b"t", b"d", false, QoS::AtMostOnce).unwrap();
    client.flush().unwrap();
    assert_eq!(rig.pipe.take_sent(), qos0_packet(b"d"));
    // A connect over an open connection drops what waits, counted too.
    client.publish(b"t", b"e", false, QoS::AtMostOnce).unwrap();
    rig.pipe.answer(0x10, CONNACK);
    client.connect(BROKER).unwrap();
    assert_eq!(client.dropped_messages(), 4);
    assert_eq!(rig.pipe.sent()[0], 0x10, "only CONNECT went out");
}

#[test]
fn invalid_connect_options_keep_the_batch_of_the_open_connection() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    client.set_options(Options::new("c").password(b"no user").batch_qos0(true));
    assert!(matches!(client.connect(BROKER), Err(Error::Invalid(_))));
    assert!(client.is_connected());
    client.flush().unwrap();
    assert_eq!(rig.pipe.take_sent(), qos0_packet(b"a"));
}

#[test]
fn keepalive_counts_from_the_last_send_not_from_a_batched_publish() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let options = Options::new("c").keepalive(10).batch_qos0(true);
    let mut client = rig.connected(&mut tx, &mut rx, options);
    rig.clock.advance(9_000);
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    rig.clock.advance(1_000);
    // Nothing has left for 10 s: the ping goes, carrying the batch.
    client.publish(b"t", b"b", false, QoS::AtMostOnce).unwrap();
    assert_eq!(
        rig.pipe.take_sent(),
        [&qos0_packet(b"a")[..], b"\xc0\x00"].concat()
    );
    assert_eq!(client.pending_messages(), 1);
}

#[test]
fn batched_message_that_does_not_fit_sends_the_batch_then_itself_as_without_batching() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 32], [0u8; 32]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    let sends = rig.pipe.sends();
    let payload = [b'y'; 20_000];
    client
        .publish(b"t", &payload, false, QoS::AtMostOnce)
        .unwrap();
    let sent = rig.pipe.sent();
    assert_eq!(&sent[..6], qos0_packet(b"a"));
    assert_eq!(&sent[6..13], b"\x30\xa3\x9c\x01\x00\x01t");
    assert_eq!(sent.len(), 6 + 20_007);
    assert_eq!(
        rig.pipe.sends() - sends,
        3,
        "the batch, the header, the payload"
    );
    assert_eq!(client.pending_messages(), 0);
}

#[test]
fn flush_without_a_connection_is_not_connected_like_every_other_call() {
    // Found by the client fuzz target: flush after disconnect returned Ok.
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    assert_eq!(client.flush(), Err(Error::NotConnected), "never connected");
    rig.pipe.answer(0x10, CONNACK);
    client.connect(BROKER).unwrap();
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    client.disconnect().unwrap();
    assert_eq!(client.flush(), Err(Error::NotConnected), "after disconnect");
    assert_eq!(client.dropped_messages(), 0, "disconnect sent the batch");
}

// ------------------------------------------------ receive side (MQTT 3.1.1)

/// A QoS 1 PUBLISH of `size` bytes in all to `topic` with packet id 9
/// (DUP and retain clear), its payload `z`s.
fn big_qos1(topic: &[u8], size: usize) -> Vec<u8> {
    let remaining = size - 3;
    assert!((128..16_384).contains(&remaining), "two length bytes");
    let mut packet = vec![0x32, (remaining as u8) | 0x80, (remaining >> 7) as u8];
    packet.extend_from_slice(&(topic.len() as u16).to_be_bytes());
    packet.extend_from_slice(topic);
    packet.extend_from_slice(&[0x00, 0x09]);
    packet.resize(size, b'z');
    packet
}

type Report = (Vec<u8>, usize, usize, QoS, u16, bool);

#[test]
fn an_oversize_message_inside_publish_is_reported_with_its_topic_size_qos_and_id_and_acknowledged()
{
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let big = big_qos1(b"cmd/7", 300);
    // The PUBLISH is answered with the big message, then the PUBACK.
    let mut answer = big.clone();
    answer.extend_from_slice(b"\x40\x02\x00\x01");
    rig.pipe.answer(0x32, &answer);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let reports = RefCell::new(Vec::<Report>::new());
    let mut on_message = |_: Message<'_>| {};
    let mut on_undelivered = |u: umqtt_simple::Undelivered<'_>| {
        reports.borrow_mut().push((
            u.topic.to_vec(),
            u.topic_len,
            u.size,
            u.qos,
            u.packet_id,
            u.acknowledged,
        ));
    };
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    client.set_undelivered_callback(&mut on_undelivered);
    client.connect(BROKER).unwrap();
    rig.pipe.take_sent();
    client.publish(b"t", b"x", false, QoS::AtLeastOnce).unwrap();
    assert_eq!(
        rig.pipe.take_sent(),
        b"\x32\x06\x00\x01t\x00\x01x\x40\x02\x00\x09",
        "the PUBLISH, then the PUBACK of the skipped message"
    );
    // Reported where the application looks, so the next wait reports nothing.
    assert_eq!(client.check_msg(), Ok(false));
    drop(client);
    assert_eq!(
        reports.into_inner(),
        [(b"cmd/7".to_vec(), 5, 300, QoS::AtLeastOnce, 9, true)]
    );
}

#[test]
fn without_an_undelivered_callback_the_next_wait_reports_a_message_skipped_inside_publish() {
    let rig = Rig::new();
    rig.pipe.answer(0x10, CONNACK);
    let mut answer = big_qos1(b"cmd/7", 300);
    answer.extend_from_slice(b"\x40\x02\x00\x01");
    rig.pipe.answer(0x32, &answer);
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("c"));
    client.connect(BROKER).unwrap();
    client.publish(b"t", b"x", false, QoS::AtLeastOnce).unwrap();
    assert_eq!(
        client.check_msg(),
        Err(Error::MessageTooLarge {
            size: 300,
            capacity: 64
        })
    );
    assert_eq!(client.check_msg(), Ok(false), "reported once");
    assert!(client.is_connected());
}

#[test]
fn an_oversize_message_is_left_unacknowledged_when_the_application_says_so() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let options = Options::new("c").acknowledge_undelivered(false);
    let acknowledged = RefCell::new(None);
    let mut on_undelivered =
        |u: umqtt_simple::Undelivered<'_>| *acknowledged.borrow_mut() = Some(u.acknowledged);
    let mut client = rig.connected(&mut tx, &mut rx, options);
    client.set_undelivered_callback(&mut on_undelivered);
    rig.pipe.feed(&big_qos1(b"cmd/7", 300));
    assert_eq!(
        client.wait_msg_for(1_000),
        Ok(true),
        "reported, not an error"
    );
    assert_eq!(rig.pipe.sent(), b"", "no PUBACK: the broker keeps it");
    drop(client);
    assert_eq!(acknowledged.into_inner(), Some(false));
}

#[test]
fn the_packet_id_of_a_message_whose_topic_does_not_fit_is_found_and_acknowledged() {
    // MQTT-4.3.2-2: a QoS 1 message must be acknowledged, or the broker
    // holds it in flight for ever.
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 32], [0u8; 32]);
    let report = RefCell::new(None);
    let mut on_undelivered = |u: umqtt_simple::Undelivered<'_>| {
        *report.borrow_mut() = Some((u.topic.to_vec(), u.topic_len, u.packet_id));
    };
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_undelivered_callback(&mut on_undelivered);
    let topic = [b'a'; 100];
    rig.pipe.feed(&big_qos1(&topic, 400));
    rig.pipe.feed(b"\x30\x04\x00\x01tk");
    assert_eq!(client.wait_msg_for(1_000), Ok(true));
    assert_eq!(rig.pipe.sent(), b"\x40\x02\x00\x09", "PUBACK with its id");
    drop(client);
    let (kept, topic_len, id) = report.into_inner().unwrap();
    assert_eq!((topic_len, id), (100, 9));
    assert!(
        !kept.is_empty() && kept.len() <= 16 && kept.iter().all(|&b| b == b'a'),
        "the start of the topic, at most half the buffer: {kept:?}"
    );
}

#[test]
fn an_oversize_message_arriving_a_byte_at_a_time_is_skipped_with_its_id() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 16], [0u8; 16]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push(m.payload.to_vec());
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    let mut bytes = big_qos1(b"a/long/topic/name", 200);
    bytes.extend_from_slice(b"\x30\x04\x00\x01tk");
    for b in &bytes {
        rig.pipe.feed(&[*b]);
        let _ = client.check_msg();
    }
    assert_eq!(client.skipped_messages(), 1);
    assert_eq!(rig.pipe.sent(), b"\x40\x02\x00\x09");
    drop(client);
    assert_eq!(seen.into_inner(), [b"k".to_vec()]);
}

#[test]
fn a_declined_message_is_not_acknowledged_and_the_next_one_is() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let taken = RefCell::new(0);
    let mut take_one = |m: Message<'_>| {
        if *taken.borrow() == 1 {
            m.decline();
        } else {
            *taken.borrow_mut() += 1;
        }
    };
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut take_one);
    // Three QoS 1 messages and a QoS 2 one in one read.
    rig.pipe.feed(b"\x32\x05\x00\x01t\x00\x01\x32\x05\x00\x01t\x00\x02\x32\x05\x00\x01t\x00\x03\x34\x05\x00\x01t\x00\x04");
    while client.check_msg().unwrap() {}
    assert_eq!(
        rig.pipe.sent(),
        b"\x40\x02\x00\x01",
        "only the message taken is acknowledged"
    );
}

#[test]
fn dup_on_a_qos0_message_is_ignored_and_the_message_delivered() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push((m.payload.to_vec(), m.dup));
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    rig.pipe.feed(b"\x38\x04\x00\x01tz");
    assert_eq!(client.wait_msg_for(1_000), Ok(true));
    assert!(client.is_connected());
    drop(client);
    assert_eq!(seen.into_inner(), [(b"z".to_vec(), false)]);
}

#[test]
fn a_topic_that_is_not_utf8_is_delivered_as_bytes_and_topic_str_says_so() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| {
        seen.borrow_mut().push((
            m.topic.to_vec(),
            m.topic_str().map(|t| t.as_bytes().to_vec()),
        ))
    };
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    rig.pipe.feed(b"\x30\x05\x00\x02\xff\xfez");
    rig.pipe.feed(b"\x30\x05\x00\x02a\x00z");
    rig.pipe.feed(b"\x30\x05\x00\x02abz");
    while client.check_msg().unwrap() {}
    assert!(client.is_connected());
    drop(client);
    assert_eq!(
        seen.into_inner(),
        [
            (b"\xff\xfe".to_vec(), None),
            (b"a\x00".to_vec(), None),
            (b"ab".to_vec(), Some(b"ab".to_vec()))
        ]
    );
}

#[test]
fn publishing_with_qos2_is_refused_before_anything_is_sent() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    assert_eq!(
        client.publish(b"t", b"x", false, QoS::ExactlyOnce),
        Err(Error::Invalid(
            umqtt_simple::packet::EncodeError::PublishQoS2NotSupported
        ))
    );
    assert_eq!(rig.pipe.sent(), b"");
    assert!(client.is_connected());
}

#[test]
fn a_subscription_granted_qos2_delivers_a_qos2_message_once_and_completes_its_release() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push(m.qos);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    rig.pipe.answer(0x82, b"\x90\x03\x00\x01\x02");
    assert_eq!(
        client.subscribe(b"t", QoS::ExactlyOnce),
        Ok(QoS::ExactlyOnce)
    );
    assert_eq!(rig.pipe.take_sent(), b"\x82\x06\x00\x01\x00\x01t\x02");
    rig.pipe.feed(b"\x34\x05\x00\x01t\x00\x07");
    rig.pipe.feed(b"\x3c\x05\x00\x01t\x00\x07");
    rig.pipe.feed(b"\x62\x02\x00\x07");
    while client.check_msg().unwrap() {}
    assert_eq!(
        rig.pipe.sent(),
        b"\x50\x02\x00\x07\x50\x02\x00\x07\x70\x02\x00\x07"
    );
    drop(client);
    assert_eq!(seen.into_inner(), [QoS::ExactlyOnce]);
}

#[test]
fn text_that_is_not_mqtt_utf8_is_refused_in_will_filters_and_unsubscribe_before_anything_is_sent() {
    // MQTT-3.1.3-10, MQTT-3.8.3-1, MQTT-3.10.3-1; and MQTT-3.8.3-3: a
    // SUBSCRIBE carries at least one filter.
    use umqtt_simple::packet::{EncodeError, Field};
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let on = &mut |_: Message<'_>| {};
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(on);
    let bad_utf8 = Err(Error::Invalid(EncodeError::InvalidUtf8(Field::TopicFilter)));
    for filter in [&b"a/\xff"[..], b"a\x00b"] {
        assert_eq!(
            client.subscribe(filter, QoS::AtMostOnce).map(drop),
            bad_utf8
        );
        assert_eq!(client.unsubscribe(filter), bad_utf8);
    }
    assert_eq!(
        client.subscribe_many(&[], &mut []),
        Err(Error::Invalid(EncodeError::NoFilters))
    );
    assert_eq!(
        client.set_last_will(b"will/\xc3", b"gone", false, QoS::AtMostOnce),
        Err(Error::Invalid(EncodeError::InvalidUtf8(Field::Topic)))
    );
    assert_eq!(rig.pipe.sent(), b"", "nothing was sent");
    assert!(client.is_connected());
}

#[test]
fn a_topic_starting_with_a_byte_order_mark_is_delivered_with_it() {
    // MQTT-1.5.3-3: U+FEFF is not skipped or stripped.
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| seen.borrow_mut().push(m.topic.to_vec());
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(&mut on_message);
    rig.pipe.feed(b"\x30\x07\x00\x04\xef\xbb\xbfaz");
    assert_eq!(client.wait_msg_for(1_000), Ok(true));
    drop(client);
    assert_eq!(seen.into_inner(), [b"\xef\xbb\xbfa".to_vec()]);
}

#[test]
fn qos2_messages_are_acknowledged_in_the_order_they_arrived() {
    // MQTT-4.6.0-3: PUBRECs in the order of the PUBLISHes.
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let on = &mut |_: Message<'_>| {};
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_callback(on);
    for id in [5u8, 3, 9] {
        rig.pipe.feed(&[0x34, 0x05, 0x00, 0x01, b't', 0x00, id]);
    }
    while client.check_msg().unwrap() {}
    assert_eq!(
        rig.pipe.sent(),
        b"\x50\x02\x00\x05\x50\x02\x00\x03\x50\x02\x00\x09"
    );
}

#[test]
fn the_qos2_release_record_lives_as_long_as_the_session() {
    // MQTT-3.1.2-4, MQTT-4.1.0-1: across a reconnect with session present,
    // a QoS 2 message not yet released is still known (its copy is not
    // delivered twice); a new session forgets it.
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let seen = RefCell::new(0);
    let mut on_message = |_: Message<'_>| *seen.borrow_mut() += 1;
    let options = Options::new("c").clean_session(false);
    let mut client = rig.connected(&mut tx, &mut rx, options);
    client.set_callback(&mut on_message);
    let publish = b"\x34\x05\x00\x01t\x00\x07";
    let copy = b"\x3c\x05\x00\x01t\x00\x07";
    rig.pipe.feed(publish);
    assert_eq!(client.check_msg(), Ok(true));
    rig.pipe.close_connection();
    assert!(client.check_msg().is_err(), "the connection is gone");

    // The broker kept the session: it sends the message again.
    rig.pipe.answer(0x10, &[0x20, 0x02, 0x01, 0x00]);
    assert_eq!(client.connect(BROKER), Ok(true));
    rig.pipe.take_sent();
    rig.pipe.feed(copy);
    rig.pipe.feed(b"\x62\x02\x00\x07");
    while client.check_msg().unwrap() {}
    assert_eq!(
        rig.pipe.take_sent(),
        b"\x50\x02\x00\x07\x70\x02\x00\x07",
        "PUBREC for the copy, PUBCOMP for the release"
    );

    // Delivered again, unreleased, then a new session: the record is gone.
    rig.pipe.feed(publish);
    assert_eq!(client.check_msg(), Ok(true));
    rig.pipe.close_connection();
    let _ = client.check_msg();
    rig.pipe.answer(0x10, CONNACK);
    assert_eq!(client.connect(BROKER), Ok(false));
    rig.pipe.feed(copy);
    assert_eq!(client.check_msg(), Ok(true));
    drop(client);
    assert_eq!(
        seen.into_inner(),
        3,
        "first delivery, not its copy, the next one, and the copy in the new session"
    );
}

/// Found by the `window` fuzz target: a PUBACK already in the stream for the
/// id a windowed publish is about to use (a confused broker's) was read by
/// the publish's read-before-send after the id was put in flight, and so
/// acknowledged the message before it was sent: the ack callback heard of
/// it, and umqtt-robust's outbox would have dropped it as delivered.
#[test]
fn a_puback_read_before_a_windowed_publish_is_sent_does_not_acknowledge_it() {
    let rig = Rig::new();
    let (mut tx, mut rx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let acked = RefCell::new(Vec::new());
    let mut on_ack = |id: u16| acked.borrow_mut().push(id);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    let id = client.next_packet_id();
    rig.pipe.feed(&[0x40, 0x02, 0x00, id as u8]);
    // Long enough since the last read that the publish reads first.
    rig.clock.advance(1_000);

    client.publish(b"t", b"m", false, QoS::AtLeastOnce).unwrap();

    assert_eq!(
        *acked.borrow(),
        Vec::<u16>::new(),
        "acknowledged before it was sent"
    );
    assert!(
        client.is_in_flight(id),
        "the message sent waits for its own PUBACK"
    );
    let sent = rig.pipe.take_sent();
    assert_eq!(
        sent.first(),
        Some(&0x32),
        "the PUBLISH went out: {sent:02x?}"
    );
}

/// Found by the `client` fuzz target: a QoS 1 message too large for the
/// receive buffer, with packet id 0, was drained and then answered with a
/// PUBACK the encoder refused (`Invalid(ZeroPacketId)`, as if the caller
/// had passed something wrong), and the connection stayed up; the same
/// message small enough to buffer is a protocol error that closes it.
#[test]
fn an_oversize_qos1_message_with_packet_id_0_is_a_protocol_error_like_a_small_one() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    let mut big = std::vec![0x32, 0xae, 0x02, 0x00, 0x01, b't', 0x00, 0x00];
    big.resize(3 + 302, b'z');
    rig.pipe.feed(&big);

    assert_eq!(
        client.wait_msg(),
        Err(Error::Protocol(
            umqtt_simple::packet::DecodeError::ZeroPacketId
        ))
    );
    assert!(!client.is_connected());
    assert_eq!(rig.pipe.sent(), b"", "no PUBACK for id 0");
}

/// Found by the `async_client` fuzz target (the blocking client did the
/// same): a PUBACK read into the buffer together with the one a full
/// window waited for, for the id the next publish then took, was handled
/// after that PUBLISH went out and acknowledged it, although the broker
/// sent it before it could have seen the message.
#[test]
fn a_puback_buffered_before_a_windowed_publish_is_sent_does_not_acknowledge_it() {
    let rig = Rig::new();
    let (mut tx, mut rx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let acked = RefCell::new(Vec::new());
    let mut on_ack = |id: u16| acked.borrow_mut().push(id);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("c"));
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    client.publish(b"t", b"1", false, QoS::AtLeastOnce).unwrap();
    client.publish(b"t", b"2", false, QoS::AtLeastOnce).unwrap();
    // One read brings the PUBACK the full window waits for and one for the
    // id the next message will take.
    rig.pipe
        .feed(&[0x40, 0x02, 0x00, 0x02, 0x40, 0x02, 0x00, 0x03]);

    client.publish(b"t", b"3", false, QoS::AtLeastOnce).unwrap();
    client.check_msg().unwrap();

    assert_eq!(*acked.borrow(), [2], "only the message the broker had");
    assert!(client.is_in_flight(3), "message 3 waits for its own PUBACK");
}
