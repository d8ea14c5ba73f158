//! The few MQTT 3.1.1 packets the check speaks (CONNECT, PINGREQ, one QoS 0
//! PUBLISH, DISCONNECT) and the replies it expects (CONNACK, PINGRESP), all
//! encoded and decoded by umqtt-simple's codec.

use core::fmt;

use umqtt_simple::packet::{
    ConnAck, Connect, ConnectReturnCode, DecodeError, EncodeError, FixedHeader,
    MAX_REMAINING_LENGTH, Packet, PacketType, Publish, QoS,
};

/// The topic of the burst PUBLISH.
pub(crate) const BURST_TOPIC: &[u8] = b"umqtt/conformance/burst";
/// The check's client id.
pub(crate) const CLIENT_ID: &[u8] = b"umqtt-conformance";

/// CONNECT with a clean session, keepalive 60 s and the check's client id.
pub(crate) const CONNECT: Packet<'static> = Packet::Connect(Connect {
    keepalive: 60,
    ..Connect::new(CLIENT_ID)
});

/// What the broker answers [`CONNECT`] with: accepted, no session (it is a
/// clean one).
pub(crate) const CONNACK_ACCEPTED: Packet<'static> = Packet::ConnAck(ConnAck {
    session_present: false,
    code: ConnectReturnCode::Accepted,
});

/// Room for any packet the check sends whole (CONNECT is the largest).
pub(crate) const MAX_PACKET: usize = 64;

/// Room for any reply the check expects (CONNACK is the largest).
pub(crate) const MAX_REPLY: usize = 8;

/// Room for the burst's fixed header and topic.
pub(crate) const BURST_HEADER_MAX: usize = 5 + 2 + BURST_TOPIC.len();

/// The largest payload the burst can announce: what the remaining length
/// holds besides the topic.
pub(crate) const MAX_BURST: usize = MAX_REMAINING_LENGTH - 2 - BURST_TOPIC.len();

/// Why a packet could not be built, or a reply was not the one expected.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CodecError {
    /// The codec refused to encode a packet.
    Encode(EncodeError),
    /// The bytes that arrived are not a valid packet.
    Decode(DecodeError),
    /// A valid packet of another type (or larger than expected) arrived.
    Unexpected(PacketType),
    /// The broker refused the connection.
    Refused(ConnectReturnCode),
}

impl fmt::Display for CodecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodecError::Encode(e) => write!(f, "cannot encode: {e}"),
            CodecError::Decode(e) => write!(f, "malformed reply: {e}"),
            CodecError::Unexpected(packet) => write!(f, "unexpected {packet}"),
            CodecError::Refused(code) => write!(f, "CONNACK: {code}"),
        }
    }
}

/// Encodes `packet` into `buf`; returns the bytes used.
pub(crate) fn encode(packet: &Packet<'_>, buf: &mut [u8]) -> Result<usize, CodecError> {
    packet.encode(buf).map_err(CodecError::Encode)
}

/// Encodes the fixed header and topic of a QoS 0 PUBLISH to [`BURST_TOPIC`]
/// whose `payload_len` payload bytes are sent after it, from elsewhere;
/// returns the bytes used.
pub(crate) fn burst_header(
    payload_len: usize,
    buf: &mut [u8; BURST_HEADER_MAX],
) -> Result<usize, CodecError> {
    // The codec encodes the PUBLISH with no payload; only its remaining
    // length then grows by the payload that follows.
    let mut empty = [0u8; BURST_HEADER_MAX];
    let publish = Publish::new(BURST_TOPIC, &[], QoS::AtMostOnce);
    let used = publish
        .encode_header(&mut empty)
        .map_err(CodecError::Encode)?;
    let encoded = empty.get(..used).unwrap_or_default();
    let (header, header_len) = match FixedHeader::parse(encoded) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Err(CodecError::Unexpected(PacketType::Publish)),
        Err(e) => return Err(CodecError::Decode(e)),
    };
    let topic = encoded.get(header_len..).unwrap_or_default();
    let header = FixedHeader {
        remaining_length: header.remaining_length.saturating_add(payload_len),
        ..header
    };
    let n = header.encode(buf).map_err(CodecError::Encode)?;
    let end = n + topic.len();
    let dst = buf
        .get_mut(n..end)
        .ok_or(CodecError::Encode(EncodeError::BufferTooSmall {
            needed: end,
            available: BURST_HEADER_MAX,
        }))?;
    dst.copy_from_slice(topic);
    Ok(end)
}

/// Whether `bytes`, what has arrived so far, is the reply `expected`:
/// `Ok(true)` when it is complete, `Ok(false)` when more must come.
///
/// Fails as soon as the fixed header shows another packet type, or a packet
/// larger than [`MAX_REPLY`].
pub(crate) fn check_reply(bytes: &[u8], expected: &Packet<'_>) -> Result<bool, CodecError> {
    let (header, header_len) = match FixedHeader::parse(bytes) {
        Ok(Some(parsed)) => parsed,
        Ok(None) => return Ok(false),
        Err(e) => return Err(CodecError::Decode(e)),
    };
    let packet_type = expected.packet_type();
    if header.packet_type != packet_type
        || header_len.saturating_add(header.remaining_length) > MAX_REPLY
    {
        return Err(CodecError::Unexpected(header.packet_type));
    }
    let got = match Packet::decode(bytes) {
        Ok(Some((packet, _))) => packet,
        Ok(None) => return Ok(false),
        Err(e) => return Err(CodecError::Decode(e)),
    };
    match got {
        _ if got == *expected => Ok(true),
        Packet::ConnAck(ack) if ack.code != ConnectReturnCode::Accepted => {
            Err(CodecError::Refused(ack.code))
        }
        _ => Err(CodecError::Unexpected(packet_type)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_is_what_the_check_always_sent() {
        let mut buf = [0u8; MAX_PACKET];
        let n = encode(&CONNECT, &mut buf).unwrap();
        let mut want = std::vec::Vec::from(&b"\x10\x1d\x00\x04MQTT\x04\x02\x00\x3c\x00\x11"[..]);
        want.extend_from_slice(CLIENT_ID);
        assert_eq!(&buf[..n], &want[..]);
    }

    #[test]
    fn burst_header_announces_the_streamed_payload() {
        let mut buf = [0u8; BURST_HEADER_MAX];
        let n = burst_header(256 * 1024, &mut buf).unwrap();
        // 2 + 23 + 262 144 = 262 169 needs three length bytes.
        let (header, len) = FixedHeader::parse(&buf[..n]).unwrap().unwrap();
        assert_eq!(header.packet_type, PacketType::Publish);
        assert_eq!(header.flags, 0);
        assert_eq!(header.remaining_length, 2 + BURST_TOPIC.len() + 256 * 1024);
        assert_eq!(len, 4);
        assert_eq!(&buf[len..len + 2], &[0, BURST_TOPIC.len() as u8]);
        assert_eq!(&buf[len + 2..n], BURST_TOPIC);

        let n = burst_header(0, &mut buf).unwrap();
        assert_eq!(&buf[..2], &[0x30, (2 + BURST_TOPIC.len()) as u8]);
        assert_eq!(n, 2 + 2 + BURST_TOPIC.len());
        assert!(burst_header(MAX_BURST, &mut buf).is_ok());
        assert!(matches!(
            burst_header(MAX_BURST + 1, &mut buf),
            Err(CodecError::Encode(EncodeError::PacketTooLarge { .. }))
        ));
    }

    #[test]
    fn replies_are_checked_as_they_arrive() {
        let connack = [0x20, 0x02, 0x00, 0x00];
        for end in 0..connack.len() {
            assert_eq!(check_reply(&connack[..end], &CONNACK_ACCEPTED), Ok(false));
        }
        assert_eq!(check_reply(&connack, &CONNACK_ACCEPTED), Ok(true));
        assert_eq!(check_reply(&[0xd0, 0x00], &Packet::PingResp), Ok(true));
        assert_eq!(
            check_reply(&[0x30, 0x05], &Packet::PingResp),
            Err(CodecError::Unexpected(PacketType::Publish))
        );
        assert_eq!(
            check_reply(&[0x20, 0x02, 0x00, 0x05], &CONNACK_ACCEPTED),
            Err(CodecError::Refused(ConnectReturnCode::NotAuthorized))
        );
        assert_eq!(
            check_reply(&[0x20, 0x02, 0x01, 0x00], &CONNACK_ACCEPTED),
            Err(CodecError::Unexpected(PacketType::ConnAck))
        );
        assert_eq!(
            check_reply(&[0xd0, 0x7f], &Packet::PingResp),
            Err(CodecError::Unexpected(PacketType::PingResp))
        );
        assert!(matches!(
            check_reply(&[0x00], &Packet::PingResp),
            Err(CodecError::Decode(_))
        ));
    }
}
