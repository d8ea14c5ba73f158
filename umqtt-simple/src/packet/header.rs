//! The fixed header: packet type, flags and the variable-length remaining length.

use core::fmt;

use super::codec::Writer;
use super::error::{DecodeError, EncodeError};

/// The largest remaining length MQTT can express in four bytes: 268 435 455.
pub const MAX_REMAINING_LENGTH: usize = 268_435_455;

/// The fourteen MQTT 3.1.1 control packet types.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[allow(missing_docs)]
pub enum PacketType {
    Connect = 1,
    ConnAck = 2,
    Publish = 3,
    PubAck = 4,
    PubRec = 5,
    PubRel = 6,
    PubComp = 7,
    Subscribe = 8,
    SubAck = 9,
    Unsubscribe = 10,
    UnsubAck = 11,
    PingReq = 12,
    PingResp = 13,
    Disconnect = 14,
}

impl PacketType {
    /// The type in the high nibble of a fixed header's first byte.
    pub fn from_nibble(nibble: u8) -> Result<PacketType, DecodeError> {
        Ok(match nibble {
            1 => PacketType::Connect,
            2 => PacketType::ConnAck,
            3 => PacketType::Publish,
            4 => PacketType::PubAck,
            5 => PacketType::PubRec,
            6 => PacketType::PubRel,
            7 => PacketType::PubComp,
            8 => PacketType::Subscribe,
            9 => PacketType::SubAck,
            10 => PacketType::Unsubscribe,
            11 => PacketType::UnsubAck,
            12 => PacketType::PingReq,
            13 => PacketType::PingResp,
            14 => PacketType::Disconnect,
            other => return Err(DecodeError::ReservedPacketType(other)),
        })
    }

    /// The flag bits MQTT 3.1.1 requires for this type, or `None` for PUBLISH,
    /// whose flags carry DUP, QoS and RETAIN.
    pub const fn required_flags(self) -> Option<u8> {
        match self {
            PacketType::Publish => None,
            PacketType::PubRel | PacketType::Subscribe | PacketType::Unsubscribe => Some(0b0010),
            _ => Some(0),
        }
    }
}

impl fmt::Display for PacketType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PacketType::Connect => "CONNECT",
            PacketType::ConnAck => "CONNACK",
            PacketType::Publish => "PUBLISH",
            PacketType::PubAck => "PUBACK",
            PacketType::PubRec => "PUBREC",
            PacketType::PubRel => "PUBREL",
            PacketType::PubComp => "PUBCOMP",
            PacketType::Subscribe => "SUBSCRIBE",
            PacketType::SubAck => "SUBACK",
            PacketType::Unsubscribe => "UNSUBSCRIBE",
            PacketType::UnsubAck => "UNSUBACK",
            PacketType::PingReq => "PINGREQ",
            PacketType::PingResp => "PINGRESP",
            PacketType::Disconnect => "DISCONNECT",
        })
    }
}

/// The first bytes of every packet: its type, flags and the length of the rest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedHeader {
    /// The packet type.
    pub packet_type: PacketType,
    /// The low nibble of the first byte.
    pub flags: u8,
    /// How many bytes follow the fixed header.
    pub remaining_length: usize,
}

impl FixedHeader {
    /// Parses a fixed header from the start of `bytes`.
    ///
    /// Returns `Ok(None)` when `bytes` ends before the header does (read more
    /// and call again), or the header and the number of bytes it took (2 to 5).
    /// Flags are checked against the packet type.
    ///
    /// ```
    /// use umqtt_simple::packet::{FixedHeader, PacketType};
    ///
    /// let (header, len) = FixedHeader::parse(&[0x30, 0xcb, 0x01]).unwrap().unwrap();
    /// assert_eq!(header.packet_type, PacketType::Publish);
    /// assert_eq!(header.remaining_length, 203);
    /// assert_eq!(len, 3);
    /// assert_eq!(FixedHeader::parse(&[0x30, 0xcb]), Ok(None));
    /// ```
    pub fn parse(bytes: &[u8]) -> Result<Option<(FixedHeader, usize)>, DecodeError> {
        let Some(&first) = bytes.first() else {
            return Ok(None);
        };
        let packet_type = PacketType::from_nibble(first >> 4)?;
        let flags = first & 0x0f;
        if let Some(required) = packet_type.required_flags()
            && flags != required
        {
            return Err(DecodeError::InvalidFlags {
                packet: packet_type,
                flags,
            });
        }
        let mut remaining_length = 0usize;
        for (i, &byte) in bytes.iter().skip(1).take(4).enumerate() {
            remaining_length |= usize::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                let header = FixedHeader {
                    packet_type,
                    flags,
                    remaining_length,
                };
                return Ok(Some((header, i + 2)));
            }
        }
        if bytes.len() >= 5 {
            Err(DecodeError::RemainingLengthTooLong)
        } else {
            Ok(None)
        }
    }

    /// Encodes the header alone (first byte and remaining length) into
    /// `buf`; returns the bytes written (2 to 5).
    ///
    /// For a packet whose body is streamed rather than held in one buffer
    /// (the stack conformance check sends a large PUBLISH this way); for
    /// whole packets use [`Packet::encode`](super::Packet::encode).
    ///
    /// ```
    /// use umqtt_simple::packet::{FixedHeader, PacketType};
    ///
    /// let header = FixedHeader { packet_type: PacketType::Publish, flags: 0, remaining_length: 203 };
    /// let mut buf = [0u8; 5];
    /// assert_eq!(header.encode(&mut buf), Ok(3));
    /// assert_eq!(&buf[..3], &[0x30, 0xcb, 0x01]);
    /// ```
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        // As written byte by byte: the first byte that does not fit, or,
        // once the first byte is in, a length MQTT cannot express.
        let available = buf.len();
        let too_small = EncodeError::BufferTooSmall {
            needed: available + 1,
            available,
        };
        if available == 0 {
            return Err(too_small);
        }
        check_remaining_length(self.remaining_length)?;
        if self.len() > available {
            return Err(too_small);
        }
        let mut w = Writer::new(buf);
        self.write_to(&mut w);
        w.finish(self.len())
    }

    /// Writes the header: first byte and remaining length.
    #[cfg(test)]
    pub(crate) fn write(&self, w: &mut Writer<'_>) -> Result<(), EncodeError> {
        check_remaining_length(self.remaining_length)?;
        self.write_to(w);
        Ok(())
    }

    /// Writes the header: first byte and remaining length (a failure is
    /// the writer's to report).
    pub(crate) fn write_to(&self, w: &mut Writer<'_>) {
        w.u8(self.first_byte());
        write_remaining_length(w, self.remaining_length);
    }

    /// The header's first byte: the packet type and its flags.
    pub(crate) fn first_byte(&self) -> u8 {
        ((self.packet_type as u8) << 4) | (self.flags & 0x0f)
    }

    /// Bytes this header takes on the wire.
    pub fn len(&self) -> usize {
        1 + remaining_length_len(self.remaining_length)
    }

    /// Always false: a fixed header is at least two bytes.
    pub fn is_empty(&self) -> bool {
        false
    }
}

/// How many bytes the variable-length encoding of `len` takes (1 to 4; lengths
/// above [`MAX_REMAINING_LENGTH`] count as 4 and are refused when encoded).
pub const fn remaining_length_len(len: usize) -> usize {
    match len {
        0..=127 => 1,
        128..=16_383 => 2,
        16_384..=2_097_151 => 3,
        _ => 4,
    }
}

/// Fails if `len` is more than a remaining length can express.
pub(crate) fn check_remaining_length(len: usize) -> Result<(), EncodeError> {
    if len > MAX_REMAINING_LENGTH {
        Err(EncodeError::PacketTooLarge {
            remaining_length: len,
        })
    } else {
        Ok(())
    }
}

/// Writes `len` (checked: at most [`MAX_REMAINING_LENGTH`]).
// Out of line for code size: CONNECT, SUBSCRIBE and PUBLISH headers.
#[inline(never)]
fn write_remaining_length(w: &mut Writer<'_>, mut len: usize) {
    loop {
        // `len % 128` always fits in a byte.
        let mut byte = (len % 128) as u8;
        len /= 128;
        if len > 0 {
            byte |= 0x80;
        }
        w.u8(byte);
        if len == 0 {
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_len(len: usize) -> ([u8; 5], usize) {
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        FixedHeader {
            packet_type: PacketType::Publish,
            flags: 0,
            remaining_length: len,
        }
        .write(&mut w)
        .unwrap();
        let n = w.position();
        (buf, n)
    }

    #[test]
    fn remaining_length_boundaries_round_trip() {
        for len in [
            0,
            127,
            128,
            16_383,
            16_384,
            2_097_151,
            2_097_152,
            MAX_REMAINING_LENGTH,
        ] {
            let (buf, n) = encode_len(len);
            assert_eq!(n, 1 + remaining_length_len(len), "length {len}");
            let (header, used) = FixedHeader::parse(&buf[..n]).unwrap().unwrap();
            assert_eq!(header.remaining_length, len);
            assert_eq!(used, n);
        }
    }

    #[test]
    fn remaining_length_over_the_limit_is_refused() {
        let mut buf = [0u8; 5];
        let mut w = Writer::new(&mut buf);
        let header = FixedHeader {
            packet_type: PacketType::Publish,
            flags: 0,
            remaining_length: MAX_REMAINING_LENGTH + 1,
        };
        assert_eq!(
            header.write(&mut w),
            Err(EncodeError::PacketTooLarge {
                remaining_length: MAX_REMAINING_LENGTH + 1
            })
        );
    }

    #[test]
    fn five_length_bytes_are_an_error() {
        assert_eq!(
            FixedHeader::parse(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x01]),
            Err(DecodeError::RemainingLengthTooLong)
        );
    }

    #[test]
    fn partial_header_asks_for_more() {
        assert_eq!(FixedHeader::parse(&[]), Ok(None));
        assert_eq!(FixedHeader::parse(&[0x30]), Ok(None));
        assert_eq!(FixedHeader::parse(&[0x30, 0xff, 0xff, 0xff]), Ok(None));
    }

    #[test]
    fn reserved_types_and_wrong_flags_are_errors() {
        assert_eq!(
            FixedHeader::parse(&[0x00, 0x00]),
            Err(DecodeError::ReservedPacketType(0))
        );
        assert_eq!(
            FixedHeader::parse(&[0xf0, 0x00]),
            Err(DecodeError::ReservedPacketType(15))
        );
        assert_eq!(
            FixedHeader::parse(&[0x21, 0x02]),
            Err(DecodeError::InvalidFlags {
                packet: PacketType::ConnAck,
                flags: 1
            })
        );
        assert_eq!(
            FixedHeader::parse(&[0x80, 0x02]),
            Err(DecodeError::InvalidFlags {
                packet: PacketType::Subscribe,
                flags: 0
            })
        );
    }
}
