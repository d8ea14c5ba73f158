//! What the core hands the driver: the events of received packets, and
//! the messages and reports among them.

use core::cell::Cell;

use crate::packet::QoS;

/// A message delivered to the callback.
///
/// The topic and payload borrow the client's receive buffer; copy what you
/// need to keep.
///
/// Topics are bytes, as the broker sent them: [`Message::topic_str`] gives
/// the text when it is what MQTT requires. A topic that is not (invalid
/// UTF-8, U+0000) is delivered rather than refused, although MQTT-1.5.3-1
/// tells the receiver to close the connection: the broker would send the
/// same message again after every reconnect of a persistent session, and a
/// client that closes on it would never receive anything again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'m> {
    /// The topic the message was published to.
    pub topic: &'m [u8],
    /// The message itself.
    pub payload: &'m [u8],
    /// The QoS it was delivered with.
    pub qos: QoS,
    /// Set when the broker sends a retained message on subscribe.
    pub retain: bool,
    /// Set when the broker sends it again after a reconnect.
    pub dup: bool,
    /// Set by [`Message::decline`]; `None` for a message made by hand.
    pub(crate) declined: Option<&'m Cell<bool>>,
}

impl<'m> Message<'m> {
    /// A message made by hand (e.g. to test a callback): not retained, not
    /// a duplicate; [`Message::decline`] does nothing on it.
    pub const fn new(topic: &'m [u8], payload: &'m [u8], qos: QoS) -> Self {
        Message {
            topic,
            payload,
            qos,
            retain: false,
            dup: false,
            declined: None,
        }
    }

    /// The topic as text, if it is what MQTT requires of a topic: UTF-8
    /// without U+0000.
    pub fn topic_str(&self) -> Option<&'m str> {
        core::str::from_utf8(self.topic)
            .ok()
            .filter(|topic| !topic.contains('\0'))
    }

    /// Leaves the message with the broker: the client does not acknowledge
    /// it (no PUBACK for QoS 1, no PUBREC for QoS 2), so the broker keeps it
    /// and sends it again after the next reconnect of a persistent session.
    /// For an application that stops taking messages (`umqtt sub -C N`
    /// declines every message after the N-th), so that none is acknowledged
    /// that it did not take. A QoS 0 message has nothing to decline.
    ///
    /// The broker does not send a declined message again on the same
    /// connection, and it counts against its in-flight limit (mosquitto: 20)
    /// until the client reconnects: decline when about to stop.
    pub fn decline(&self) {
        if let Some(declined) = self.declined {
            declined.set(true);
        }
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for Message<'_> {
    fn format(&self, f: defmt::Formatter<'_>) {
        defmt::write!(
            f,
            "Message {{ topic: {=[u8]:a}, payload: {} bytes, qos: {}, retain: {=bool}, dup: {=bool} }}",
            self.topic,
            self.payload.len(),
            self.qos,
            self.retain,
            self.dup
        );
    }
}

/// A message the client could not deliver because it is larger than the
/// receive buffer: read to its end and thrown away, then reported with what
/// the client saw of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub struct Undelivered<'m> {
    /// The start of the topic: all of it when it fits in half the receive
    /// buffer (`topic.len() == topic_len`), else as much as does.
    pub topic: &'m [u8],
    /// The topic's whole length in bytes.
    pub topic_len: usize,
    /// The PUBLISH packet's size in bytes.
    pub size: usize,
    /// The receive buffer's size.
    pub capacity: usize,
    /// The QoS it was sent with.
    pub qos: QoS,
    /// Its packet id (0 for QoS 0).
    pub packet_id: u16,
    /// Set for a retained message.
    pub retain: bool,
    /// Set when the broker sent it again.
    pub dup: bool,
    /// Whether the client acknowledged it, so the broker dropped it
    /// ([`Options::acknowledge_undelivered`](crate::Options::acknowledge_undelivered)); always `false` for QoS 0.
    pub acknowledged: bool,
}

/// What one handled packet was.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event<'s> {
    /// The CONNACK that accepted the connection.
    ConnAck {
        session_present: bool,
    },
    /// A message to deliver (then call [`super::Session::reply`]).
    Message(Message<'s>),
    /// A QoS 2 message delivered before and not released yet: acknowledged
    /// again ([`super::Session::reply`]), not delivered twice.
    Copy,
    /// The acknowledgement awaited ([`super::Session::expect`]).
    Acked,
    /// The PUBACK of a message in the QoS 1 window: its packet id.
    PubAcked(u16),
    /// With a window, a PUBACK for nothing in flight: the second of a
    /// message sent twice under one id.
    Ignored,
    PingResp,
    /// A PUBREL, to answer with PUBCOMP ([`super::Session::reply`]).
    PubRel,
    /// A message too large for the receive buffer, read and thrown away
    /// (then call [`super::Session::reply`]).
    Skipped(Undelivered<'s>),
}
