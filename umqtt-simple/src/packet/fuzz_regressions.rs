//! Inputs found by the `decode` fuzz target (fuzz/, see fuzz/README.md),
//! kept as tests. The fuzzer found no decoder crash; these are corpus inputs
//! at the edges it reached: what the decoder accepts that the encoder
//! refuses, non-minimal remaining lengths, lengths that promise more than
//! arrived, and one input per error. Each asserts the outcome by name and
//! the round-trip contract the target checks.

use std::vec;

use super::*;

/// Bytes from hex text.
fn hex(text: &str) -> std::vec::Vec<u8> {
    assert!(text.len().is_multiple_of(2), "odd hex {text:?}");
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

/// What the `decode` target checks of a packet that decoded: the header
/// agrees on its length, every proper prefix asks for more bytes, and if it
/// encodes, it decodes again to the same packet. Returns the encoder's
/// verdict.
fn decode_target_checks(bytes: &[u8]) -> Result<std::vec::Vec<u8>, EncodeError> {
    let (packet, used) = Packet::decode(bytes).unwrap().unwrap();
    let (header, header_len) = FixedHeader::parse(bytes).unwrap().unwrap();
    assert_eq!(used, header_len + header.remaining_length);
    for cut in 1..used {
        assert_eq!(Packet::decode(&bytes[..cut]), Ok(None), "prefix {cut}");
    }
    let mut buf = vec![0u8; packet.encoded_len()];
    let n = packet.encode(&mut buf)?;
    assert_eq!(Packet::decode(&buf[..n]), Ok(Some((packet, n))));
    Ok(buf[..n].to_vec())
}

#[test]
fn publish_topics_the_encoder_refuses_still_decode() {
    // QoS 1, topic "\xddt/" (not UTF-8), packet id 0x7807, payload "hi".
    let bytes = hex("32090003dd742f78076869");
    let Ok(Some((Packet::Publish(p), 11))) = Packet::decode(&bytes) else {
        panic!("{:?}", Packet::decode(&bytes));
    };
    assert_eq!(
        (p.topic, p.packet_id, p.payload),
        (&b"\xddt/"[..], 0x7807, &b"hi"[..])
    );
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::InvalidUtf8(Field::Topic))
    );

    // Topic "a/+" (QoS 1, packet id 0x0100).
    let bytes = hex("32090003612f2b01000000");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::WildcardInTopic)
    );

    // An empty topic, behind a non-minimal (3-byte) remaining length of 5.
    let bytes = hex("308580000000fd0000");
    assert!(
        matches!(Packet::decode(&bytes), Ok(Some((Packet::Publish(p), 9))) if p.topic.is_empty())
    );
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::Empty(Field::Topic))
    );
}

#[test]
fn connect_fields_the_encoder_refuses_still_decode() {
    // Empty client id without clean session.
    let bytes = hex("100c00044d515454040002000000");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::EmptyClientIdNeedsCleanSession)
    );
    // A will topic with '#'.
    let bytes = hex("102200044d5154540424003c0006636c69656e74000b3f5723742e236254761475000170");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::WildcardInTopic)
    );
}

#[test]
fn subscribe_filters_the_encoder_refuses_still_decode() {
    // SUBSCRIBE id 1: an empty filter at QoS 0.
    let bytes = hex("82050001000000");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::Empty(Field::TopicFilter))
    );
    // SUBSCRIBE id 3: "a-+" at QoS 1, then "#" at QoS 0.
    let bytes = hex("820c00030003612d2b0100012300");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::InvalidWildcard)
    );
    // UNSUBSCRIBE id 1: "a#".
    let bytes = hex("a206000100026123");
    assert_eq!(
        decode_target_checks(&bytes),
        Err(EncodeError::InvalidWildcard)
    );
}

#[test]
fn non_minimal_remaining_lengths_decode_and_re_encode_minimally() {
    for (input, minimal) in [
        ("d08000", "d000"),
        ("d0808000", "d000"),
        ("d080808000", "d000"),
        ("b08200ff03", "b002ff03"),
        ("b082808000ff03", "b002ff03"),
    ] {
        let bytes = hex(input);
        assert_eq!(decode_target_checks(&bytes), Ok(hex(minimal)), "{input}");
    }
    // What follows the packet is not part of it.
    let bytes = hex("d0808000ffffac00");
    assert_eq!(Packet::decode(&bytes), Ok(Some((Packet::PingResp, 4))));
}

#[test]
fn lengths_that_promise_more_than_arrived_ask_for_more() {
    for input in [
        "39",
        "3d5d",
        "31ffff",
        "30ff0700d0e0ff10",
        "9080",
        "90ffff80",
        "b002",
    ] {
        assert_eq!(Packet::decode(&hex(input)), Ok(None), "{input}");
    }
}

#[test]
fn corpus_inputs_that_fail_fail_by_name() {
    for (input, error) in [
        ("82ffffffff076100", DecodeError::RemainingLengthTooLong),
        ("0000000010000054", DecodeError::ReservedPacketType(0)),
        ("20020600", DecodeError::InvalidConnackFlags(6)),
        (
            "101a0004ffffffffffffffffffffffffffffffffffffffffffffff70",
            DecodeError::UnsupportedProtocol,
        ),
        (
            // CONNECT without will or user flags, and bytes after its client id.
            "102200044d5154540400013c0006636c69656e740003772f74da03620065750075000170",
            DecodeError::TrailingBytes {
                packet: PacketType::Connect,
            },
        ),
    ] {
        assert_eq!(Packet::decode(&hex(input)), Err(error), "{input}");
    }
}
