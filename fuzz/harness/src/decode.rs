//! The `decode` target: arbitrary bytes through the codec.
//!
//! Checks, for any input:
//! - `FixedHeader::parse`, `Packet::decode` and `Publish::decode_body` never
//!   panic, and every error formats;
//! - a header that parses took 2 to 5 bytes, and `Packet::decode` agrees with
//!   it on the packet's length;
//! - decoding is streaming-safe: every proper prefix of a decoded packet is
//!   "need more bytes" (`Ok(None)`), never an error or another packet, which
//!   is what the client's receive loop relies on;
//! - a decoded packet that encodes (`encode` may refuse what `decode`
//!   accepts, e.g. a wildcard topic) encodes to exactly `encoded_len` bytes,
//!   decodes again to the same packet, and, when the input's remaining
//!   length was minimally encoded, to the input's very bytes (but for DUP
//!   on a QoS 0 PUBLISH, which the decoder accepts and drops: D2 of
//!   docs/CONFORMANCE.md).

use core::fmt::{self, Write};

use umqtt_simple::packet::{FixedHeader, Packet, Publish, QoS, remaining_length_len};

/// The DUP bit of a PUBLISH's first byte.
const DUP_FLAG: u8 = 0x08;

/// A `fmt::Write` that throws the text away: Display impls run, nothing is kept.
struct Sink;

impl Write for Sink {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

fn format<T: fmt::Display + fmt::Debug>(value: &T) {
    let _ = write!(Sink, "{value} {value:?}");
}

/// Runs every check on `data`; panics on a violation.
pub fn check(data: &[u8]) {
    let header = FixedHeader::parse(data);
    match &header {
        Ok(Some((h, len))) => {
            assert!((2..=5).contains(len), "header length {len}");
            assert!(*len <= data.len());
            assert!(h.len() <= *len, "minimal header is not longer");
            format(&h.packet_type);
        }
        Ok(None) => assert!(data.len() < 5, "Ok(None) with {} bytes", data.len()),
        Err(e) => format(e),
    }

    // The body decoder the client uses for a message it cannot buffer whole.
    if let (Some(&first), Some(rest)) = (data.first(), data.get(1..)) {
        match Publish::decode_body(first & 0x0f, rest) {
            Ok(p) => assert!(p.topic.len() + p.payload.len() <= rest.len()),
            Err(e) => format(&e),
        }
    }

    let decoded = match Packet::decode(data) {
        Ok(Some(decoded)) => decoded,
        Ok(None) => {
            assert!(
                header.is_ok(),
                "decode says more bytes but the header failed"
            );
            return;
        }
        Err(e) => {
            format(&e);
            return;
        }
    };
    let (packet, used) = decoded;
    let Ok(Some((h, header_len))) = header else {
        panic!("a packet decoded but its header did not: {header:?}");
    };
    assert_eq!(used, header_len + h.remaining_length, "decoded length");
    assert_eq!(packet.packet_type(), h.packet_type);
    touch(&packet);

    // Streaming: a prefix never decodes to anything but "need more".
    for cut in [used.saturating_sub(1), header_len, 1] {
        if cut < used {
            assert_eq!(
                Packet::decode(&data[..cut]),
                Ok(None),
                "prefix of {cut} of a {used}-byte packet"
            );
        }
    }

    // Round trip.
    let mut buf = vec![0u8; packet.encoded_len() + 8];
    let n = match packet.encode(&mut buf) {
        Ok(n) => n,
        Err(e) => {
            format(&e);
            return;
        }
    };
    assert_eq!(n, packet.encoded_len(), "encoded_len agrees with encode");
    let again = Packet::decode(&buf[..n]);
    assert_eq!(
        again,
        Ok(Some((packet, n))),
        "re-encoded packet decodes to the same"
    );
    if header_len == 1 + remaining_length_len(h.remaining_length) {
        let mut canonical = data[..used].to_vec();
        // The one flag the decoder drops on purpose: DUP on a QoS 0
        // PUBLISH (docs/CONFORMANCE.md, D2), which the encoder refuses.
        if let (Packet::Publish(p), Some(first)) = (&packet, canonical.first_mut())
            && p.qos == QoS::AtMostOnce
        {
            assert!(!p.dup, "a QoS 0 PUBLISH decoded with DUP");
            *first &= !DUP_FLAG;
        }
        assert_eq!(
            &buf[..n],
            &canonical[..],
            "canonical input re-encodes to itself"
        );
    }
}

/// Reads every borrowed field of a decoded packet, through the public
/// iterators the client uses.
fn touch(packet: &Packet<'_>) {
    match packet {
        Packet::Subscribe(s) => {
            let count = s.filters.iter().count();
            assert!(count > 0, "a decoded SUBSCRIBE has filters");
        }
        Packet::Unsubscribe(u) => {
            let count = u.filters.iter().count();
            assert!(count > 0, "a decoded UNSUBSCRIBE has filters");
        }
        Packet::SubAck(s) => {
            assert_eq!(
                s.codes().count(),
                s.return_codes.len(),
                "every SUBACK code decoded"
            );
        }
        Packet::ConnAck(c) => format(&c.code),
        _ => {}
    }
}
