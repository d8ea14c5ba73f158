//! The MQTT 3.1.1 codec: every packet a client sends or receives, as pure
//! functions over byte slices.
//!
//! Nothing here touches a socket, a clock or a buffer it does not own, so it can
//! be tested (and fuzzed) on its own. Each packet is a small representation type
//! that borrows its topics and payloads from the caller:
//!
//! - encoding: [`Packet::encode`] writes the whole packet into a buffer, after
//!   checking every field ([`EncodeError`] names what is wrong);
//! - decoding: [`FixedHeader::parse`] reads the type and remaining length (and
//!   says when more bytes are needed), then [`Packet::decode_body`] validates
//!   the body. [`Packet::decode`] does both for a complete packet.
//!
//! ```
//! use umqtt_simple::packet::{Packet, Publish, QoS};
//!
//! let publish = Publish::new(b"foo_topic", b"hello", QoS::AtMostOnce);
//! let mut buf = [0u8; 32];
//! let len = Packet::Publish(publish).encode(&mut buf).unwrap();
//! assert_eq!(&buf[..len], b"\x30\x10\x00\x09foo_topichello");
//!
//! let (decoded, used) = Packet::decode(&buf[..len]).unwrap().unwrap();
//! assert_eq!(used, len);
//! assert_eq!(decoded, Packet::Publish(publish));
//! ```

mod codec;
mod connect;
mod error;
mod header;
mod packets;
mod subscribe;
mod validate;

pub use connect::{ConnAck, Connect, ConnectReturnCode, LastWill};
pub use error::{DecodeError, EncodeError, Field};
pub use header::{FixedHeader, MAX_REMAINING_LENGTH, PacketType, remaining_length_len};
pub use packets::{Packet, Publish};
pub use subscribe::{
    SubAck, SubAckCode, Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeFilters,
};
pub use validate::{validate_filter, validate_topic_name};

/// Quality of service of a message: how hard the client and broker try to deliver it.
///
/// The client publishes with QoS 0 or 1 (publishing with QoS 2 is refused
/// before anything is sent, as in the original umqtt.simple); it subscribes
/// and receives with all three: a QoS 2 message is delivered exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub enum QoS {
    /// QoS 0: fire and forget; the message may be lost.
    #[default]
    AtMostOnce = 0,
    /// QoS 1: acknowledged with PUBACK; the message arrives at least once.
    AtLeastOnce = 1,
    /// QoS 2: acknowledged with PUBREC, released with PUBREL, completed with
    /// PUBCOMP; the message arrives exactly once. Received and subscribed
    /// to only.
    ExactlyOnce = 2,
}

impl QoS {
    /// The QoS for a wire value of 0, 1 or 2; `None` for anything else.
    pub const fn from_u8(value: u8) -> Option<QoS> {
        match value {
            0 => Some(QoS::AtMostOnce),
            1 => Some(QoS::AtLeastOnce),
            2 => Some(QoS::ExactlyOnce),
            _ => None,
        }
    }

    /// Whether a PUBLISH of this QoS carries a packet id (QoS 1 and 2).
    pub const fn has_packet_id(self) -> bool {
        !matches!(self, QoS::AtMostOnce)
    }
}

#[cfg(test)]
mod wire_vectors;

#[cfg(test)]
mod properties;

#[cfg(test)]
mod fuzz_regressions;
