//! A packet in one line, as mosquitto's clients print it with `-d`:
//! `PUBLISH (d0, q1, r0, m7, 'a/b', ... (5 bytes))`, `PUBACK (Mid: 7)`.
//! The client logs every packet it sends and receives this way, at debug
//! level under the target [`PACKET_LOG`].

use core::fmt;

use super::{Packet, PacketType};

/// The log target of the per-packet lines (`log` crate): a logger can pick
/// them out (`umqtt -d` prints them as mosquitto_sub does).
pub const PACKET_LOG: &str = "umqtt_simple::packet";

/// Text when it is UTF-8, else its length.
struct Text<'a>(&'a [u8]);

impl fmt::Display for Text<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match core::str::from_utf8(self.0) {
            Ok(text) => write!(f, "'{text}'"),
            Err(_) => write!(f, "<{} bytes, not UTF-8>", self.0.len()),
        }
    }
}

impl fmt::Display for Packet<'_> {
    /// ```
    /// use umqtt_simple::packet::{Packet, Publish};
    /// use umqtt_simple::QoS;
    ///
    /// let publish = Publish::new(b"a/b", b"hello", QoS::AtLeastOnce).with_packet_id(7);
    /// assert_eq!(
    ///     Packet::Publish(publish).to_string(),
    ///     "PUBLISH (d0, q1, r0, m7, 'a/b', ... (5 bytes))"
    /// );
    /// assert_eq!(Packet::PubAck(7).to_string(), "PUBACK (Mid: 7)");
    /// ```
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.packet_type();
        match self {
            Packet::Connect(connect) => write!(
                f,
                "{kind} (c{}, k{}, u{}, p{}, w{})",
                u8::from(connect.clean_session),
                connect.keepalive,
                u8::from(connect.username.is_some()),
                u8::from(connect.password.is_some()),
                u8::from(connect.will.is_some()),
            ),
            Packet::ConnAck(connack) => write!(
                f,
                "{kind} ({}, session present {})",
                connack.code as u8,
                u8::from(connack.session_present)
            ),
            Packet::Publish(p) => write!(
                f,
                "{kind} (d{}, q{}, r{}, m{}, {}, ... ({} bytes))",
                u8::from(p.dup),
                p.qos as u8,
                u8::from(p.retain),
                p.packet_id,
                Text(p.topic),
                p.payload.len()
            ),
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => write!(f, "{kind} (Mid: {id})"),
            Packet::Subscribe(subscribe) => {
                write!(f, "{kind} (Mid: {}", subscribe.packet_id)?;
                for (filter, qos) in subscribe.filters.iter() {
                    write!(f, ", Topic: {}, QoS: {}", Text(filter), qos as u8)?;
                }
                f.write_str(")")
            }
            Packet::SubAck(suback) => {
                write!(f, "{kind} (Mid: {}, codes", suback.packet_id)?;
                for code in suback.return_codes {
                    write!(f, " {code}")?;
                }
                f.write_str(")")
            }
            Packet::Unsubscribe(unsubscribe) => {
                write!(f, "{kind} (Mid: {}", unsubscribe.packet_id)?;
                for filter in unsubscribe.filters.iter() {
                    write!(f, ", Topic: {}", Text(filter))?;
                }
                f.write_str(")")
            }
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => fmt::Display::fmt(&kind, f),
        }
    }
}

/// A PUBLISH too large for the receive buffer, as it is skipped: its
/// header only.
pub(crate) struct SkippedPublish {
    pub(crate) flags: u8,
    pub(crate) packet_id: u16,
    pub(crate) size: usize,
}

impl fmt::Display for SkippedPublish {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} (d{}, q{}, r{}, m{}, ... ({} bytes in all, skipped: larger than the receive buffer))",
            PacketType::Publish,
            (self.flags >> 3) & 1,
            (self.flags >> 1) & 0b11,
            self.flags & 1,
            self.packet_id,
            self.size
        )
    }
}
