//! The core on its own: bytes and times in, events and bytes out. No
//! socket, no clock: hostile brokers are byte strings.

use std::borrow::ToOwned;
use std::format;
use std::vec;
use std::vec::Vec;

use super::*;
use crate::packet::DecodeError;

const CONNACK: [u8; 4] = [0x20, 2, 0, 0];
const CONNACK_PRESENT: [u8; 4] = [0x20, 2, 1, 0];

fn feed(session: &mut Session<'_>, bytes: &[u8]) {
    let room = session.receive_space(0);
    room[..bytes.len()].copy_from_slice(bytes);
    session.received(bytes.len());
}

/// A session that sent CONNECT at time 0 and got its CONNACK.
fn connected<'a>(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>) -> Session<'a> {
    let mut session = Session::new(tx, rx, options, 0);
    session.encode_connect().unwrap();
    session.opened(0);
    session.sent(0);
    feed(&mut session, &CONNACK);
    let event = session.poll(0).unwrap();
    assert_eq!(
        event,
        Some(Event::ConnAck {
            session_present: false
        })
    );
    assert_eq!(session.reply(), None);
    session
}

/// What the session encodes for `packet`, as bytes.
fn encoded(session: &mut Session<'_>, packet: Packet<'_>) -> Vec<u8> {
    let Ok(Encoded::Send(len)) = session.encode(&packet) else {
        panic!("not encoded");
    };
    let bytes = session.tx(len).to_vec();
    session.sent(0);
    bytes
}

#[test]
fn connect_is_encoded_and_connack_ends_the_handshake() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = Session::new(&mut tx, &mut rx, Options::new("c").keepalive(0), 0);
    let len = session.encode_connect().unwrap();
    let connect = session.tx(len);
    assert_eq!(connect[0], 0x10);
    assert_eq!(&connect[len - 3..], b"\0\x01c");
    session.opened(0);
    assert!(session.is_connecting());
    assert_eq!(session.next_deadline(), None, "no keepalive before CONNACK");
    feed(&mut session, &CONNACK[..3]);
    assert_eq!(session.poll(1), Ok(None), "half a CONNACK");
    feed(&mut session, &CONNACK[3..]);
    let event = session.poll(2).unwrap();
    assert_eq!(
        event,
        Some(Event::ConnAck {
            session_present: false
        })
    );
    assert!(!session.is_connecting());
    assert_eq!(session.packets_received(), 0, "CONNACK is not counted");
}

#[test]
fn a_broker_that_keeps_a_clean_session_is_refused() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = Session::new(&mut tx, &mut rx, Options::new("c"), 0);
    session.opened(0);
    feed(&mut session, &CONNACK_PRESENT);
    let refused = session.poll(0).map(|e| e.is_some());
    assert_eq!(refused, Err(Error::SessionPresentOnCleanSession));
}

#[test]
fn anything_but_connack_first_is_refused() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = Session::new(&mut tx, &mut rx, Options::new("c"), 0);
    session.opened(0);
    feed(&mut session, &[0xd0, 0]); // PINGRESP
    let refused = session.poll(0).map(|e| e.is_some());
    assert_eq!(refused, Err(Error::UnexpectedPacket(PacketType::PingResp)));
    // A refusal code is the broker's refusal.
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = Session::new(&mut tx, &mut rx, Options::new("c"), 0);
    session.opened(0);
    feed(&mut session, &[0x20, 2, 0, 5]);
    let refusal = session.poll(0).map(|e| e.is_some());
    assert_eq!(refusal, Err(Error::RefusedNotAuthorized));
}

#[test]
fn a_qos1_message_in_pieces_is_delivered_then_acknowledged() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    let publish = [0x32, 8, 0, 1, b't', 0, 7, b'h', b'i', b'!'];
    feed(&mut session, &publish[..5]);
    assert_eq!(session.poll(10), Ok(None));
    feed(&mut session, &publish[5..]);
    match session.poll(10).unwrap() {
        Some(Event::Message(m)) => {
            assert_eq!(
                (m.topic, m.payload, m.qos),
                (&b"t"[..], &b"hi!"[..], QoS::AtLeastOnce)
            );
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(session.reply(), Some(Packet::PubAck(7)));
    assert_eq!(session.reply(), None, "owed once");
    assert_eq!(session.packets_received(), 1);
}

#[test]
fn a_declined_message_is_not_acknowledged() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    feed(&mut session, &[0x32, 5, 0, 1, b't', 0, 9]);
    match session.poll(0).unwrap() {
        Some(Event::Message(m)) => m.decline(),
        other => panic!("{other:?}"),
    }
    assert_eq!(session.reply(), None);
}

#[test]
fn a_qos2_copy_is_acknowledged_again_not_delivered_twice() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    let publish = [0x34, 5, 0, 1, b't', 0, 3];
    feed(&mut session, &publish);
    assert!(matches!(session.poll(0), Ok(Some(Event::Message(_)))));
    assert_eq!(session.reply(), Some(Packet::PubRec(3)));
    feed(&mut session, &publish);
    assert_eq!(session.poll(0), Ok(Some(Event::Copy)));
    assert_eq!(session.reply(), Some(Packet::PubRec(3)));
    feed(&mut session, &[0x62, 2, 0, 3]);
    assert_eq!(session.poll(0), Ok(Some(Event::PubRel)));
    assert_eq!(session.reply(), Some(Packet::PubComp(3)));
    // Released: the same id is a new message now.
    feed(&mut session, &publish);
    assert!(matches!(session.poll(0), Ok(Some(Event::Message(_)))));
}

#[test]
fn only_the_awaited_acknowledgement_is_accepted() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.expect(Some((Waiting::PubAck, 5)));
    feed(&mut session, &[0x40, 2, 0, 5]);
    assert_eq!(session.poll(0), Ok(Some(Event::Acked)));
    // Nothing awaited any more: a second PUBACK ends the connection.
    feed(&mut session, &[0x40, 2, 0, 5]);
    let unexpected = session.poll(0).map(|e| e.is_some());
    assert_eq!(unexpected, Err(Error::UnexpectedPacket(PacketType::PubAck)));

    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.expect(Some((Waiting::SubAck, 1)));
    feed(&mut session, &[0x90, 3, 0, 2, 0]);
    let wrong_id = session.poll(0).map(|e| e.is_some());
    let expected = Error::UnexpectedPacketId {
        packet: PacketType::SubAck,
        expected: 1,
        received: 2,
    };
    assert_eq!(wrong_id, Err(expected));
}

#[test]
fn the_suback_stays_readable_after_its_event() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.expect(Some((Waiting::SubAck, 1)));
    feed(&mut session, &[0x90, 4, 0, 1, 1, 0x80]);
    assert_eq!(session.poll(0), Ok(Some(Event::Acked)));
    let suback = session.last_suback().unwrap();
    assert_eq!(suback.return_codes, &[1, 0x80]);
}

#[test]
fn an_oversize_message_drains_and_is_reported_with_its_topic_start() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 32]);
    let options = Options::new("c").acknowledge_undelivered(true);
    let mut session = connected(&mut tx, &mut rx, options);
    // QoS 1, topic "abcd", id 0x0102, 58 bytes of payload: 68 bytes.
    let mut publish = vec![0x32, 66, 0, 4, b'a', b'b', b'c', b'd', 1, 2];
    publish.extend([b'x'; 58]);
    for chunk in publish.chunks(7) {
        feed(&mut session, chunk);
        if let Some(event) = session.poll(5).unwrap() {
            let Event::Skipped(report) = event else {
                panic!("{event:?}");
            };
            assert_eq!(report.topic, b"abcd");
            assert_eq!(
                (report.topic_len, report.size, report.capacity),
                (4, 68, 32)
            );
            assert_eq!((report.packet_id, report.qos), (0x0102, QoS::AtLeastOnce));
            assert!(report.acknowledged);
            assert_eq!(session.reply(), Some(Packet::PubAck(0x0102)));
            assert_eq!(session.skipped_messages(), 1);
            return;
        }
        assert_eq!(session.reply(), None);
    }
    panic!("never reported");
}

#[test]
fn the_packet_after_an_oversize_message_is_whole() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 16]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    let mut bytes = vec![0x30, 30, 0, 1, b't'];
    bytes.extend([b'x'; 27]);
    bytes.extend([0xd0, 0]); // PINGRESP right behind
    let mut events = Vec::new();
    for chunk in bytes.chunks(5) {
        feed(&mut session, chunk);
        while let Some(event) = session.poll(0).unwrap() {
            events.push(format!("{event:?}").split('(').next().unwrap().to_owned());
        }
    }
    assert_eq!(events, ["Skipped", "PingResp"]);
}

#[test]
fn hostile_sizes_end_the_connection() {
    // Anything but a PUBLISH too large for the buffer.
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 16]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    feed(&mut session, &[0x90, 40, 0, 1]);
    let too_large = session.poll(0).map(|e| e.is_some());
    let expected = Error::PacketTooLarge {
        packet: PacketType::SubAck,
        size: 42,
        capacity: 16,
    };
    assert_eq!(too_large, Err(expected));
    // A topic longer than its whole PUBLISH is malformed, not large.
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 16]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    feed(&mut session, &[0x30, 40, 0xff, 0xff, b't']);
    let malformed = session.poll(0).map(|e| e.is_some());
    let truncated = DecodeError::Truncated {
        packet: PacketType::Publish,
    };
    assert_eq!(malformed, Err(Error::Protocol(truncated)));
}

#[test]
fn keepalive_pings_when_idle_and_gives_up_on_a_silent_broker() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let options = Options::new("c").keepalive(10).ping_timeout_ms(2_000);
    let mut session = connected(&mut tx, &mut rx, options);
    assert_eq!(session.keep_alive(9_999, true), Ok(false));
    assert_eq!(session.next_deadline(), Some(10_000));
    assert_eq!(session.keep_alive(10_000, true), Ok(true));
    assert_eq!(encoded(&mut session, Packet::PingReq), [0xc0, 0]);
    session.ping_sent(10_000);
    assert!(session.read_due(10_000), "a pending PINGRESP is read for");
    assert_eq!(session.keep_alive(11_999, true), Ok(false));
    // Not judged while unread data may hold the answer.
    assert_eq!(session.keep_alive(12_000, false), Ok(false));
    let silent = session.keep_alive(12_000, true);
    assert_eq!(silent, Err(Error::Timeout(Waiting::PingResp)));
}

#[test]
fn batched_qos0_messages_leave_with_the_next_packet_or_first_when_full() {
    let (mut tx, mut rx) = ([0u8; 24], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c").batch_qos0(true));
    let publish = Publish::new(b"t", b"12345", QoS::AtMostOnce); // 10 bytes
    assert_eq!(session.encode_publish(&publish), Ok(Encoded::Batched));
    assert_eq!(session.encode_publish(&publish), Ok(Encoded::Batched));
    assert_eq!((session.pending_messages(), session.pending_len()), (2, 20));
    // A third would overflow: the batch leaves first.
    assert_eq!(
        session.encode_publish(&publish),
        Ok(Encoded::FlushFirst(20))
    );
    // A PINGREQ fits behind it and takes the batch along.
    assert_eq!(session.encode(&Packet::PingReq), Ok(Encoded::Send(22)));
    assert_eq!(&session.tx(22)[20..], [0xc0, 0]);
    session.sent(0);
    assert_eq!(session.pending_messages(), 0);
    // Closing drops and counts what was not sent.
    assert_eq!(session.encode_publish(&publish), Ok(Encoded::Batched));
    session.closed();
    assert_eq!(
        (session.pending_messages(), session.dropped_messages()),
        (0, 1)
    );
}

#[test]
fn a_payload_larger_than_the_buffer_follows_the_header() {
    let (mut tx, mut rx) = ([0u8; 16], [0u8; 64]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    let payload = [7u8; 40];
    let publish = Publish::new(b"t", &payload, QoS::AtMostOnce);
    assert_eq!(
        session.encode_publish(&publish),
        Ok(Encoded::SendWithPayload(5))
    );
    assert_eq!(session.tx(5), [0x30, 43, 0, 1, b't']);
}

#[test]
fn packet_ids_are_taken_in_turn() {
    let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
    let mut session = Session::new(&mut tx, &mut rx, Options::new("c"), 0);
    assert_eq!(session.next_packet_id(), 1);
    assert_eq!(session.take_packet_id(), 1);
    assert_eq!(session.take_packet_id(), 2);
}

#[test]
fn windowed_pubacks_are_matched_in_any_order_once_each_and_ids_in_flight_are_skipped() {
    let (mut tx, mut rx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 3]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.set_window(&mut slots);
    assert_eq!(session.window_capacity(), 3);
    let ids: Vec<u16> = (0..3).map(|_| session.take_packet_id()).collect();
    for &id in &ids {
        assert!(session.send_windowed(id));
    }
    assert_eq!((session.in_flight(), session.window_room()), (3, 0));
    assert!(!session.send_windowed(9), "a full window takes no more");
    // Acknowledged last first.
    feed(&mut session, &[0x40, 2, 0, ids[2] as u8]);
    assert_eq!(session.poll(0), Ok(Some(Event::PubAcked(ids[2]))));
    feed(&mut session, &[0x40, 2, 0, ids[0] as u8]);
    assert_eq!(session.poll(0), Ok(Some(Event::PubAcked(ids[0]))));
    assert_eq!((session.in_flight(), session.window_room()), (1, 2));
    assert!(session.is_in_flight(ids[1]) && !session.is_in_flight(ids[0]));
    // A second PUBACK for the same id (a copy sent by `republish` while the
    // first was in flight) frees nothing and reports nothing.
    feed(&mut session, &[0x40, 2, 0, ids[0] as u8]);
    assert_eq!(session.poll(0), Ok(Some(Event::Ignored)));
    assert_eq!(session.in_flight(), 1);
}

#[test]
fn a_new_packet_id_never_equals_one_in_flight_after_the_ids_wrap() {
    let (mut tx, mut rx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.set_window(&mut slots);
    let first = session.take_packet_id();
    assert!(session.send_windowed(first));
    for _ in 0..65_534 {
        session.take_packet_id();
    }
    // The counter is back at `first`, which is still in flight.
    assert_eq!(session.next_packet_id(), first);
    assert_eq!(session.take_packet_id(), first + 1);
}

#[test]
fn a_new_connection_forgets_what_was_in_flight_on_the_old_one() {
    let (mut tx, mut rx, mut slots) = ([0u8; 64], [0u8; 64], [0u16; 2]);
    let mut session = connected(&mut tx, &mut rx, Options::new("c"));
    session.set_window(&mut slots);
    assert!(session.send_windowed(5));
    session.closed();
    assert!(
        session.is_in_flight(5),
        "still known until the next connection"
    );
    session.opened(10);
    assert_eq!(session.in_flight(), 0);
}

#[test]
fn a_packet_only_a_client_sends_is_refused_as_unexpected_without_being_decoded() {
    // Well-formed or not, each is refused the same way: the client never
    // decodes what only a client sends.
    let cases: [(&[u8], PacketType); 6] = [
        (&[0xC0, 0], PacketType::PingReq),
        (&[0xE0, 0], PacketType::Disconnect),
        (&[0xE0, 1, 0xFF], PacketType::Disconnect),
        (&[0x82, 3, 0, 1, 0xFF], PacketType::Subscribe),
        (&[0xA2, 2, 0, 0], PacketType::Unsubscribe),
        (&[0x10, 2, 0xFF, 0xFF], PacketType::Connect),
    ];
    for (bytes, packet) in cases {
        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let mut session = connected(&mut tx, &mut rx, Options::new("c"));
        feed(&mut session, bytes);
        assert_eq!(
            session.poll(1),
            Err(Error::UnexpectedPacket(packet)),
            "{bytes:02x?}"
        );
    }
}
