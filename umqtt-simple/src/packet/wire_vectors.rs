//! The golden bytes of `shared/wire-vectors.md`: what the original umqtt.simple
//! sends, byte for byte, with the corrections where the original is wrong.

use super::*;

fn hex(s: &str) -> [u8; 512] {
    let mut out = [0u8; 512];
    let digits: heapless_free::Digits = s.into();
    for (i, pair) in digits.pairs().enumerate() {
        out[i] = pair;
    }
    out
}

/// Hex decoding without std or a crate.
mod heapless_free {
    pub struct Digits<'a>(&'a [u8]);
    impl<'a> From<&'a str> for Digits<'a> {
        fn from(s: &'a str) -> Self {
            Digits(s.as_bytes())
        }
    }
    impl<'a> Digits<'a> {
        pub fn pairs(&self) -> impl Iterator<Item = u8> + 'a {
            let nibbles = self
                .0
                .iter()
                .filter(|b| !b.is_ascii_whitespace())
                .map(|&b| match b {
                    b'0'..=b'9' => b - b'0',
                    b'a'..=b'f' => b - b'a' + 10,
                    _ => panic!("not hex: {}", b as char),
                });
            let mut nibbles = nibbles.peekable();
            core::iter::from_fn(move || Some((nibbles.next()? << 4) | nibbles.next()?))
        }
    }
}

fn hex_len(s: &str) -> usize {
    s.bytes().filter(|b| !b.is_ascii_whitespace()).count() / 2
}

/// Encodes `packet` and compares it with the hex `expected`, then decodes it back.
#[track_caller]
fn assert_wire(packet: Packet<'_>, expected: &str) {
    let mut buf = [0u8; 512];
    let n = packet.encode(&mut buf).unwrap();
    let want = hex(expected);
    assert_eq!(
        &buf[..n],
        &want[..hex_len(expected)],
        "encoding of {packet:?}"
    );
    assert_eq!(packet.encoded_len(), n);
    let (decoded, used) = Packet::decode(&buf[..n]).unwrap().unwrap();
    assert_eq!(used, n);
    assert_eq!(decoded, packet);
}

const ID: &[u8] = b"umqtt_client";

#[test]
fn connect_minimal() {
    assert_wire(
        Packet::Connect(Connect::new(ID)),
        "101800044d51545404020000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_keepalive_60() {
    assert_wire(
        Packet::Connect(Connect {
            keepalive: 60,
            ..Connect::new(ID)
        }),
        "101800044d5154540402003c000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_user_and_password() {
    let connect = Connect {
        keepalive: 30,
        username: Some(b"alice"),
        password: Some(b"secret"),
        ..Connect::new(ID)
    };
    assert_wire(
        Packet::Connect(connect),
        "102700044d51545404c2001e000c756d7174745f636c69656e740005616c6963650006736563726574",
    );
}

#[test]
fn connect_will_qos0() {
    let will = LastWill {
        topic: b"dev/status",
        message: b"offline",
        qos: QoS::AtMostOnce,
        retain: false,
    };
    assert_wire(
        Packet::Connect(Connect {
            will: Some(will),
            ..Connect::new(ID)
        }),
        "102d00044d51545404060000000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_will_qos1_retained_keepalive_120() {
    let will = LastWill {
        topic: b"dev/status",
        message: b"offline",
        qos: QoS::AtLeastOnce,
        retain: true,
    };
    assert_wire(
        Packet::Connect(Connect {
            keepalive: 120,
            will: Some(will),
            ..Connect::new(ID)
        }),
        "102d00044d515454042e0078000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_field_order_will_then_user_then_password() {
    // The vector's flags are for a QoS 2 will (0xd6), which this port cannot
    // request; with QoS 1 only bit 4 changes (0xce) and every other byte matches.
    let will = LastWill {
        topic: b"w",
        message: b"x",
        qos: QoS::AtLeastOnce,
        retain: false,
    };
    let connect = Connect {
        keepalive: 65535,
        will: Some(will),
        username: Some(b"u"),
        password: Some(b"p"),
        ..Connect::new(ID)
    };
    assert_wire(
        Packet::Connect(connect),
        "102400044d51545404ceffff000c756d7174745f636c69656e74000177000178000175000170",
    );
}

#[test]
fn connect_persistent_session() {
    assert_wire(
        Packet::Connect(Connect {
            clean_session: false,
            ..Connect::new(ID)
        }),
        "101800044d51545404000000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_empty_client_id() {
    assert_wire(
        Packet::Connect(Connect::new(b"")),
        "100c00044d515454040200000000",
    );
}

#[test]
fn connect_200_byte_client_id_uses_two_length_bytes() {
    let id = [b'c'; 200];
    let mut buf = [0u8; 300];
    let n = Packet::Connect(Connect::new(&id)).encode(&mut buf).unwrap();
    assert_eq!(n, 215);
    assert_eq!(&buf[..15], &hex("10d401 00044d5154540402 0000 00c8")[..15]);
    assert!(buf[15..215].iter().all(|&b| b == 0x63));
}

#[test]
fn connect_user_without_password_is_sent() {
    // The original raises TypeError; MQTT 3.1.1 allows a user name alone.
    let connect = Connect {
        username: Some(b"alice"),
        ..Connect::new(ID)
    };
    assert_wire(
        Packet::Connect(connect),
        "101f00044d51545404820000000c756d7174745f636c69656e740005616c696365",
    );
}

#[test]
fn connect_password_without_user_is_refused() {
    // The original drops the password silently.
    let connect = Connect {
        password: Some(b"secret"),
        ..Connect::new(ID)
    };
    let mut buf = [0u8; 64];
    assert_eq!(
        Packet::Connect(connect).encode(&mut buf),
        Err(EncodeError::PasswordWithoutUsername)
    );
}

#[test]
fn subscribe_qos0_and_qos1() {
    let filters = [(&b"foo_topic"[..], QoS::AtMostOnce)];
    assert_wire(
        Packet::Subscribe(Subscribe {
            packet_id: 1,
            filters: SubscribeFilters::List(&filters),
        }),
        "820e00010009666f6f5f746f70696300",
    );
    let filters = [(&b"foo/+/bar"[..], QoS::AtLeastOnce)];
    assert_wire(
        Packet::Subscribe(Subscribe {
            packet_id: 2,
            filters: SubscribeFilters::List(&filters),
        }),
        "820e00020009666f6f2f2b2f62617201",
    );
}

#[test]
fn subscribe_many_filters_in_one_packet() {
    let filters = [
        (&b"a"[..], QoS::AtMostOnce),
        (&b"b/#"[..], QoS::AtLeastOnce),
    ];
    assert_wire(
        Packet::Subscribe(Subscribe {
            packet_id: 7,
            filters: SubscribeFilters::List(&filters),
        }),
        "820c0007 0001 61 00 0003 622f23 01",
    );
}

#[test]
fn unsubscribe() {
    let filters = [&b"foo_topic"[..]];
    assert_wire(
        Packet::Unsubscribe(Unsubscribe {
            packet_id: 3,
            filters: UnsubscribeFilters::List(&filters),
        }),
        "a20d00030009666f6f5f746f706963",
    );
}

#[test]
fn publish_qos0_retained_qos1() {
    let p = Publish::new(b"foo_topic", b"hello", QoS::AtMostOnce);
    assert_wire(Packet::Publish(p), "30100009666f6f5f746f70696368656c6c6f");
    assert_wire(
        Packet::Publish(p.with_retain(true)),
        "31100009666f6f5f746f70696368656c6c6f",
    );
    let p1 = Publish::new(b"foo_topic", b"hello", QoS::AtLeastOnce);
    assert_wire(
        Packet::Publish(p1.with_packet_id(1)),
        "32120009666f6f5f746f706963000168656c6c6f",
    );
    assert_wire(
        Packet::Publish(p1.with_packet_id(2).with_retain(true)),
        "33120009666f6f5f746f706963000268656c6c6f",
    );
}

#[test]
fn publish_empty_payload() {
    assert_wire(
        Packet::Publish(Publish::new(b"foo_topic", b"", QoS::AtMostOnce)),
        "300b0009666f6f5f746f706963",
    );
}

#[test]
fn publish_200_and_20000_byte_payloads() {
    let mut buf = [0u8; 20_100];
    let payload = [b'x'; 200];
    let n = Packet::Publish(Publish::new(b"t", &payload, QoS::AtMostOnce))
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..6], &hex("30cb01 0001 74")[..6]);
    assert_eq!(n, 206);
    let payload = [b'y'; 20_000];
    let n = Packet::Publish(Publish::new(b"t", &payload, QoS::AtMostOnce))
        .encode(&mut buf)
        .unwrap();
    assert_eq!(&buf[..7], &hex("30a39c01 0001 74")[..7]);
    assert_eq!(n, 20_007);
    assert!(buf[7..n].iter().all(|&b| b == b'y'));
}

#[test]
fn publish_header_alone_for_payloads_larger_than_the_buffer() {
    let payload = [b'y'; 20_000];
    let mut buf = [0u8; 16];
    let n = Publish::new(b"t", &payload, QoS::AtMostOnce)
        .encode_header(&mut buf)
        .unwrap();
    assert_eq!(&buf[..n], &hex("30a39c01 0001 74")[..7]);
}

#[test]
fn ping_and_disconnect() {
    assert_wire(Packet::PingReq, "c000");
    assert_wire(Packet::Disconnect, "e000");
    assert_wire(Packet::PingResp, "d000");
}

#[test]
fn puback_sent_for_a_qos1_message() {
    let bytes = hex("320b0005696e2f71311234 6869");
    let (packet, used) = Packet::decode(&bytes[..13]).unwrap().unwrap();
    assert_eq!(used, 13);
    let Packet::Publish(p) = packet else {
        panic!("{packet:?}")
    };
    assert_eq!(
        (p.topic, p.payload, p.packet_id),
        (&b"in/q1"[..], &b"hi"[..], 0x1234)
    );
    assert_wire(Packet::PubAck(0x1234), "40021234");
}

#[test]
fn packet_id_wrap_skips_zero() {
    // The original sends packet id 0 after 65535; 0 cannot even be encoded here.
    let p = Publish::new(b"t", b"b", QoS::AtLeastOnce);
    assert_wire(
        Packet::Publish(p.with_packet_id(0xffff)),
        "3206000174ffff62",
    );
    let mut buf = [0u8; 16];
    assert_eq!(
        Packet::Publish(p).encode(&mut buf),
        Err(EncodeError::ZeroPacketId)
    );
}

#[test]
fn non_ascii_topic_lengths_count_bytes() {
    // The original counted code points: `3006 0003 742fc3bc c3a9` is malformed.
    let topic = "t/\u{00fc}".as_bytes();
    let payload = "\u{00e9}".as_bytes();
    assert_wire(
        Packet::Publish(Publish::new(topic, payload, QoS::AtMostOnce)),
        "3008 0004 742fc3bc c3a9",
    );
}

#[test]
fn broker_answers_decode() {
    let decode = |s: &str| {
        let bytes = hex(s);
        let n = hex_len(s);
        let (p, used) = Packet::decode(&bytes[..n]).unwrap().unwrap();
        assert_eq!(used, n);
        p.encoded_len()
    };
    assert_eq!(decode("20020000"), 4);
    assert_eq!(decode("90030001 01"), 5);
    assert_eq!(decode("b0020003"), 4);
    assert_eq!(decode("40020001"), 4);
    let bytes = hex("20020105");
    let (p, _) = Packet::decode(&bytes[..4]).unwrap().unwrap();
    assert_eq!(
        p,
        Packet::ConnAck(ConnAck {
            session_present: true,
            code: ConnectReturnCode::NotAuthorized
        })
    );
    let bytes = hex("9004000a0180");
    let (p, _) = Packet::decode(&bytes[..6]).unwrap().unwrap();
    let Packet::SubAck(suback) = p else {
        panic!("{p:?}")
    };
    assert!(
        suback
            .codes()
            .eq([SubAckCode::GrantedQoS1, SubAckCode::Failure])
    );
}

#[test]
fn malformed_broker_packets_are_errors() {
    let err = |s: &str| {
        let bytes = hex(s);
        match Packet::decode(&bytes[..hex_len(s)]) {
            Err(e) => e,
            other => panic!("{s} decoded as {other:?}"),
        }
    };
    assert_eq!(
        err("20030000 00"),
        DecodeError::InvalidLength {
            packet: PacketType::ConnAck,
            len: 3
        }
    );
    assert_eq!(err("20020206"), DecodeError::InvalidConnackFlags(2));
    assert_eq!(err("20020006"), DecodeError::UnknownConnackCode(6));
    assert_eq!(err("360400017400"), DecodeError::InvalidQoS);
    assert_eq!(
        err("3003 0005 74"),
        DecodeError::Truncated {
            packet: PacketType::Publish
        }
    );
    assert_eq!(err("40020000"), DecodeError::ZeroPacketId);
    assert_eq!(
        err("400100"),
        DecodeError::InvalidLength {
            packet: PacketType::PubAck,
            len: 1
        }
    );
    assert_eq!(
        err("d00100"),
        DecodeError::InvalidLength {
            packet: PacketType::PingResp,
            len: 1
        }
    );
    assert_eq!(err("900300010f"), DecodeError::InvalidSubAckCode(0x0f));
    assert_eq!(
        err("90020001"),
        DecodeError::InvalidLength {
            packet: PacketType::SubAck,
            len: 2
        }
    );
    assert_eq!(err("50020000"), DecodeError::ZeroPacketId);
    assert_eq!(
        err("6203000100"),
        DecodeError::InvalidLength {
            packet: PacketType::PubRel,
            len: 3
        }
    );
}

#[test]
fn qos2_flow_packets_encode_and_decode() {
    let bytes = |s: &str| hex(s)[..hex_len(s)].to_vec();
    let decodes_to = |s: &str, expected: Packet<'_>| {
        let bytes = bytes(s);
        let (packet, used) = Packet::decode(&bytes).unwrap().unwrap();
        assert_eq!(used, bytes.len());
        assert_eq!(packet, expected, "{s}");
    };
    let mut publish = Publish::new(b"t", b"x", QoS::ExactlyOnce).with_packet_id(1);
    decodes_to("34060001740001 78", Packet::Publish(publish));
    publish.dup = true;
    decodes_to("3c060001740001 78", Packet::Publish(publish));
    decodes_to("50020001", Packet::PubRec(1));
    decodes_to("62020001", Packet::PubRel(1));
    decodes_to("70020001", Packet::PubComp(1));
    let mut buf = [0u8; 4];
    for (packet, expected) in [
        (Packet::PubRec(0x1234), "50021234"),
        (Packet::PubRel(0x1234), "62021234"),
        (Packet::PubComp(0x1234), "70021234"),
    ] {
        let n = packet.encode(&mut buf).unwrap();
        assert_eq!(buf[..n], bytes(expected));
    }
    assert_eq!(
        Packet::PubComp(0).encode(&mut buf),
        Err(EncodeError::ZeroPacketId)
    );
}

#[test]
fn dup_on_qos0_is_ignored_when_received_and_refused_when_sent() {
    // MQTT-3.3.1-2 binds the sender; brokers have broken it.
    let bytes = hex("38040001747a");
    let (packet, _) = Packet::decode(&bytes[..6]).unwrap().unwrap();
    let Packet::Publish(publish) = packet else {
        panic!("{packet:?}");
    };
    assert_eq!((publish.topic, publish.payload), (&b"t"[..], &b"z"[..]));
    assert!(!publish.dup, "DUP means nothing on QoS 0");
    let mut sent = Publish::new(b"t", b"z", QoS::AtMostOnce);
    sent.dup = true;
    let mut buf = [0u8; 16];
    assert_eq!(
        Packet::Publish(sent).encode(&mut buf),
        Err(EncodeError::DupWithQoS0)
    );
}

#[test]
fn client_id_and_user_name_with_u0000_or_bad_utf8_are_refused_and_an_empty_id_needs_a_clean_session()
 {
    let mut buf = [0u8; 64];
    let encode = |connect: Connect<'_>, buf: &mut [u8]| Packet::Connect(connect).encode(buf);
    assert_eq!(
        encode(Connect::new(b"a\0b"), &mut buf),
        Err(EncodeError::InvalidUtf8(Field::ClientId))
    );
    assert_eq!(
        encode(Connect::new(b"\xff"), &mut buf),
        Err(EncodeError::InvalidUtf8(Field::ClientId))
    );
    let with_user = Connect {
        username: Some(b"u\0"),
        ..Connect::new(b"c")
    };
    assert_eq!(
        encode(with_user, &mut buf),
        Err(EncodeError::InvalidUtf8(Field::Username))
    );
    // MQTT-3.1.3-6: the broker assigns an id; MQTT-3.1.3-7: clean session only.
    let n = encode(Connect::new(b""), &mut buf).unwrap();
    let expected = "100c 0004 4d515454 04 02 0000 0000";
    assert_eq!(buf[..n], hex(expected)[..hex_len(expected)]);
    let persistent = Connect {
        clean_session: false,
        ..Connect::new(b"")
    };
    assert_eq!(
        encode(persistent, &mut buf),
        Err(EncodeError::EmptyClientIdNeedsCleanSession)
    );
}

#[test]
fn encoding_into_a_small_buffer_is_refused() {
    let mut buf = [0u8; 10];
    assert_eq!(
        Packet::Publish(Publish::new(b"foo_topic", b"hello", QoS::AtMostOnce)).encode(&mut buf),
        Err(EncodeError::BufferTooSmall {
            needed: 18,
            available: 10
        })
    );
}

#[test]
fn subscribe_and_unsubscribe_without_filters_are_refused() {
    // MQTT-3.8.3-3, MQTT-3.10.3-2.
    let mut buf = [0u8; 16];
    let subscribe = Subscribe {
        packet_id: 1,
        filters: SubscribeFilters::List(&[]),
    };
    assert_eq!(
        Packet::Subscribe(subscribe).encode(&mut buf),
        Err(EncodeError::NoFilters)
    );
    let unsubscribe = Unsubscribe {
        packet_id: 1,
        filters: UnsubscribeFilters::List(&[]),
    };
    assert_eq!(
        Packet::Unsubscribe(unsubscribe).encode(&mut buf),
        Err(EncodeError::NoFilters)
    );
}
