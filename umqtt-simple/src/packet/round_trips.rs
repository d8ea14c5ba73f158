//! Property tests with a small deterministic generator (no extra crates):
//! arbitrary bytes never make the decoder panic, and every valid packet
//! survives encode → decode unchanged.

use super::*;

/// xorshift64*: deterministic, so a failure reproduces with its seed.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn bytes<'b>(&mut self, buf: &'b mut [u8], max: usize) -> &'b [u8] {
        let len = self.below(max.min(buf.len()) + 1);
        for b in buf[..len].iter_mut() {
            *b = self.next() as u8;
        }
        &buf[..len]
    }

    /// A valid topic name: 1 to 20 bytes of printable ASCII without wildcards.
    fn topic<'b>(&mut self, buf: &'b mut [u8]) -> &'b [u8] {
        let len = 1 + self.below(20);
        for b in buf[..len].iter_mut() {
            *b = b"abcxyz/_-0123456789"[self.below(19)];
        }
        &buf[..len]
    }

    fn qos(&mut self) -> QoS {
        match self.below(3) {
            0 => QoS::AtMostOnce,
            1 => QoS::AtLeastOnce,
            _ => QoS::ExactlyOnce,
        }
    }

    fn id(&mut self) -> u16 {
        1 + self.below(65_535) as u16
    }
}

#[test]
fn decoding_arbitrary_bytes_never_panics() {
    let mut rng = Rng(0x5eed_1234_abcd_0001);
    let mut buf = [0u8; 64];
    for _ in 0..200_000 {
        let bytes = rng.bytes(&mut buf, 64);
        let _ = FixedHeader::parse(bytes);
        if let Ok(Some((packet, used))) = Packet::decode(bytes) {
            assert!(used <= bytes.len());
            // What decodes re-encodes to a packet of the same length,
            // except where the encoder is stricter than the decoder.
            let mut out = [0u8; 128];
            if let Ok(n) = packet.encode(&mut out) {
                assert_eq!(n, packet.encoded_len());
            }
        }
    }
}

#[test]
fn packets_with_a_valid_header_and_random_body_never_panic() {
    let mut rng = Rng(0x0dd_ba11);
    let mut buf = [0u8; 80];
    for _ in 0..200_000 {
        let first = ((1 + rng.below(14) as u8) << 4) | (rng.next() as u8 & 0x0f);
        let body_len = rng.below(70);
        buf[0] = first;
        buf[1] = body_len as u8;
        for b in buf[2..2 + body_len].iter_mut() {
            *b = rng.next() as u8;
        }
        let _ = Packet::decode(&buf[..2 + body_len]);
    }
}

#[track_caller]
fn assert_round_trip(packet: Packet<'_>) {
    let mut out = [0u8; 512];
    let n = packet
        .encode(&mut out)
        .unwrap_or_else(|e| panic!("{packet:?}: {e}"));
    assert_eq!(n, packet.encoded_len());
    let (decoded, used) = Packet::decode(&out[..n]).unwrap().unwrap();
    assert_eq!(used, n);
    assert_eq!(decoded, packet);
    // Every strict prefix is "need more bytes", never an error or a panic.
    for cut in 0..n {
        assert_eq!(
            Packet::decode(&out[..cut]),
            Ok(None),
            "{packet:?} cut at {cut}"
        );
    }
}

#[test]
fn every_packet_type_round_trips() {
    let mut rng = Rng(42);
    for _ in 0..5_000 {
        let (mut t1, mut t2, mut p1, mut p2, mut p3) =
            ([0u8; 20], [0u8; 20], [0u8; 40], [0u8; 40], [0u8; 40]);
        let topic = rng.topic(&mut t1);
        let other = rng.topic(&mut t2);
        let payload = rng.bytes(&mut p1, 40);
        // A user name is an MQTT string: a topic's alphabet will do.
        let user = rng.topic(&mut p2);
        let password = rng.bytes(&mut p3, 10);
        let qos = rng.qos();
        let will = (rng.next() & 1 == 0).then_some(LastWill {
            topic: other,
            message: payload,
            qos: rng.qos(),
            retain: rng.next() & 1 == 0,
        });
        let has_user = rng.next() & 1 == 0;
        assert_round_trip(Packet::Connect(Connect {
            client_id: topic,
            keepalive: rng.next() as u16,
            clean_session: rng.next() & 1 == 0,
            will,
            username: has_user.then_some(user),
            password: (has_user && rng.next() & 1 == 0).then_some(password),
        }));
        let code = ConnectReturnCode::from_u8(rng.below(6) as u8).unwrap();
        assert_round_trip(Packet::ConnAck(ConnAck {
            session_present: rng.next() & 1 == 0,
            code,
        }));
        let mut publish = Publish::new(topic, payload, qos).with_retain(rng.next() & 1 == 0);
        if qos.has_packet_id() {
            publish = publish.with_packet_id(rng.id());
            publish.dup = rng.next() & 1 == 0;
        }
        assert_round_trip(Packet::Publish(publish));
        assert_round_trip(Packet::PubAck(rng.id()));
        assert_round_trip(Packet::PubRec(rng.id()));
        assert_round_trip(Packet::PubRel(rng.id()));
        assert_round_trip(Packet::PubComp(rng.id()));
        let filters = [(topic, qos), (other, rng.qos())];
        let count = 1 + rng.below(2);
        assert_round_trip(Packet::Subscribe(Subscribe {
            packet_id: rng.id(),
            filters: SubscribeFilters::List(&filters[..count]),
        }));
        let codes = [0u8, 1, 2, 0x80];
        assert_round_trip(Packet::SubAck(SubAck {
            packet_id: rng.id(),
            return_codes: &codes[..1 + rng.below(4)],
        }));
        let unsub = [topic, other];
        assert_round_trip(Packet::Unsubscribe(Unsubscribe {
            packet_id: rng.id(),
            filters: UnsubscribeFilters::List(&unsub[..count]),
        }));
        assert_round_trip(Packet::UnsubAck(rng.id()));
    }
    assert_round_trip(Packet::PingReq);
    assert_round_trip(Packet::PingResp);
    assert_round_trip(Packet::Disconnect);
}
