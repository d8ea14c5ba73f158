//! Hostile input from a scripted broker: every malformed, unexpected or
//! truncated packet ends in a named error within the deadline, never a panic
//! or a hang, and the same client connects again afterwards.
//!
//! Every client runs in its own thread under a time limit
//! ([`run_in_thread_within`](umqtt_tests::run_in_thread_within) and
//! [`HANG_LIMIT`](umqtt_tests::HANG_LIMIT)), so a hang fails the test
//! instead of blocking the suite. The scripted brokers are in the support
//! crate (`tests/src/scripted.rs`).

use std::io::Write;
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::packet::{DecodeError, PacketType};
use umqtt_simple::{Error, Options, QoS, Waiting};
use umqtt_tests::*;
use umqtt_transports::std_tcp::StdNetError;

// ---------------------------------------------------------------------------
// 1. Hostile input: named errors, never a panic or hang, reconnect works
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
