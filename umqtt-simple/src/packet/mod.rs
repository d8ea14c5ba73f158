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
mod qos;
mod subscribe;
mod summary;
mod validate;

pub(crate) use codec::Writer;
pub use connect::{ConnAck, Connect, ConnectReturnCode, LastWill};
pub use error::{DecodeError, EncodeError, Field};
pub use header::{FixedHeader, MAX_REMAINING_LENGTH, PacketType, remaining_length_len};
pub(crate) use packets::{Outgoing, header_of};
pub use packets::{Packet, Publish};
pub use qos::QoS;
pub use subscribe::{
    SubAck, SubAckCode, Subscribe, SubscribeFilters, Unsubscribe, UnsubscribeFilters,
};
pub use summary::PACKET_LOG;
pub(crate) use summary::SkippedPublish;
pub use validate::{validate_filter, validate_topic_name};

#[cfg(test)]
mod wire_vectors;

#[cfg(test)]
mod round_trips;

#[cfg(test)]
mod fuzz_regressions;
