//! Why a packet could not be encoded or decoded.

use core::fmt;

use super::header::PacketType;

/// A length-prefixed field of a packet, named in errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum Field {
    /// The client identifier of CONNECT.
    ClientId,
    /// A topic name (PUBLISH, will).
    Topic,
    /// A topic filter (SUBSCRIBE, UNSUBSCRIBE).
    TopicFilter,
    /// The will message.
    WillMessage,
    /// The user name.
    Username,
    /// The password.
    Password,
    /// The protocol name of CONNECT.
    ProtocolName,
}

impl fmt::Display for Field {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Field::ClientId => "client id",
            Field::Topic => "topic",
            Field::TopicFilter => "topic filter",
            Field::WillMessage => "will message",
            Field::Username => "user name",
            Field::Password => "password",
            Field::ProtocolName => "protocol name",
        })
    }
}

/// Why a packet could not be encoded. Nothing is written to the network when
/// encoding fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum EncodeError {
    /// The buffer cannot hold the packet.
    BufferTooSmall {
        /// Bytes the packet (or the part that must be buffered) needs.
        needed: usize,
        /// Bytes the buffer has.
        available: usize,
    },
    /// A topic or filter is empty; MQTT requires at least one byte.
    Empty(Field),
    /// A length-prefixed field is longer than MQTT's 65 535 bytes.
    TooLong {
        /// The field.
        field: Field,
        /// Its length in bytes.
        len: usize,
    },
    /// A topic name (of a PUBLISH or will) contains `+` or `#`, which only filters may.
    WildcardInTopic,
    /// A filter uses `+` or `#` other than as a whole level (`#` only last).
    InvalidWildcard,
    /// A text field (topic, filter, client id, user name) is not valid
    /// UTF-8 or contains U+0000.
    InvalidUtf8(Field),
    /// A password was given without a user name, which MQTT 3.1.1 forbids.
    PasswordWithoutUsername,
    /// The packet's remaining length would exceed MQTT's 268 435 455 bytes.
    PacketTooLarge {
        /// The remaining length the packet would need.
        remaining_length: usize,
    },
    /// A QoS 1 PUBLISH, SUBSCRIBE, UNSUBSCRIBE or PUBACK needs a packet id of 1 to 65 535.
    ZeroPacketId,
    /// A SUBSCRIBE or UNSUBSCRIBE needs at least one filter.
    NoFilters,
    /// An empty client id is only allowed with a clean session.
    EmptyClientIdNeedsCleanSession,
    /// DUP set on a QoS 0 PUBLISH, which MQTT-3.3.1-2 forbids.
    DupWithQoS0,
    /// The client publishes with QoS 0 or 1 only (it receives QoS 2).
    PublishQoS2NotSupported,
}

impl fmt::Display for EncodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            EncodeError::BufferTooSmall { needed, available } => write!(
                f,
                "packet needs {needed} bytes but the buffer holds {available}"
            ),
            EncodeError::Empty(field) => write!(f, "{field} is empty; MQTT requires at least one byte"),
            EncodeError::TooLong { field, len } => {
                write!(f, "{field} is {len} bytes; MQTT allows 65535")
            }
            EncodeError::WildcardInTopic => {
                f.write_str("topic name contains a wildcard ('+' or '#'); only subscriptions may")
            }
            EncodeError::InvalidWildcard => f.write_str(
                "topic filter uses '+' or '#' inside a level; '#' must be last and both must stand alone",
            ),
            EncodeError::InvalidUtf8(field) => {
                write!(f, "{field} is not valid UTF-8 or contains a NUL character")
            }
            EncodeError::PasswordWithoutUsername => {
                f.write_str("a password needs a user name; MQTT 3.1.1 forbids a password alone")
            }
            EncodeError::PacketTooLarge { remaining_length } => write!(
                f,
                "packet body is {remaining_length} bytes; MQTT allows 268435455"
            ),
            EncodeError::ZeroPacketId => f.write_str("packet id 0 is not allowed"),
            EncodeError::NoFilters => f.write_str("at least one topic filter is required"),
            EncodeError::EmptyClientIdNeedsCleanSession => {
                f.write_str("an empty client id requires clean session")
            }
            EncodeError::DupWithQoS0 => {
                f.write_str("DUP set on a QoS 0 PUBLISH; MQTT allows it on QoS 1 and 2 only")
            }
            EncodeError::PublishQoS2NotSupported => {
                f.write_str("publishing with QoS 2 is not supported; use QoS 1 (QoS 2 is received)")
            }
        }
    }
}

impl core::error::Error for EncodeError {}

/// Why bytes received from the broker are not a valid packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum DecodeError {
    /// The remaining length uses more than 4 bytes.
    RemainingLengthTooLong,
    /// Packet type 0 or 15, which MQTT 3.1.1 reserves.
    ReservedPacketType(u8),
    /// The fixed header's flag bits are wrong for this packet type.
    InvalidFlags {
        /// The packet type.
        packet: PacketType,
        /// The flag bits received.
        flags: u8,
    },
    /// The packet's remaining length is wrong for its type.
    InvalidLength {
        /// The packet type.
        packet: PacketType,
        /// The remaining length received.
        len: usize,
    },
    /// A field's length runs past the end of the packet.
    Truncated {
        /// The packet type.
        packet: PacketType,
    },
    /// Bytes left over after the last field of a packet that has no payload.
    TrailingBytes {
        /// The packet type.
        packet: PacketType,
    },
    /// A PUBLISH with both QoS bits set (QoS 3).
    InvalidQoS,
    /// A packet id of 0 where MQTT requires 1 to 65 535.
    ZeroPacketId,
    /// A CONNACK return code above 5.
    UnknownConnackCode(u8),
    /// CONNACK's reserved bits in the acknowledge flags are set.
    InvalidConnackFlags(u8),
    /// A SUBACK return code other than 0, 1, 2 or 0x80.
    InvalidSubAckCode(u8),
    /// CONNECT with a protocol other than MQTT 3.1.1.
    UnsupportedProtocol,
    /// CONNECT flags are inconsistent (reserved bit, will flags, password without user).
    InvalidConnectFlags(u8),
    /// A text field is not valid UTF-8.
    InvalidUtf8,
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DecodeError::RemainingLengthTooLong => {
                f.write_str("remaining length uses more than 4 bytes")
            }
            DecodeError::ReservedPacketType(t) => write!(f, "reserved packet type {t}"),
            DecodeError::InvalidFlags { packet, flags } => {
                write!(f, "invalid fixed-header flags {flags:#06b} for {packet}")
            }
            DecodeError::InvalidLength { packet, len } => {
                write!(f, "{packet} with invalid remaining length {len}")
            }
            DecodeError::Truncated { packet } => {
                write!(f, "{packet} field runs past the end of the packet")
            }
            DecodeError::TrailingBytes { packet } => {
                write!(f, "{packet} has bytes after its last field")
            }
            DecodeError::InvalidQoS => f.write_str("PUBLISH with QoS 3"),
            DecodeError::ZeroPacketId => f.write_str("packet id 0"),
            DecodeError::UnknownConnackCode(c) => write!(f, "unknown CONNACK return code {c}"),
            DecodeError::InvalidConnackFlags(b) => {
                write!(
                    f,
                    "CONNACK acknowledge flags {b:#04x} have reserved bits set"
                )
            }
            DecodeError::InvalidSubAckCode(c) => write!(f, "invalid SUBACK return code {c:#04x}"),
            DecodeError::UnsupportedProtocol => f.write_str("CONNECT is not MQTT 3.1.1"),
            DecodeError::InvalidConnectFlags(b) => write!(f, "invalid CONNECT flags {b:#04x}"),
            DecodeError::InvalidUtf8 => f.write_str("text field is not valid UTF-8"),
        }
    }
}

impl core::error::Error for DecodeError {}
