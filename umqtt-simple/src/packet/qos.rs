//! Quality of service: how hard the client and broker try to deliver a
//! message.

/// Quality of service of a message: how hard the client and broker try to deliver it.
///
/// The client publishes with QoS 0 or 1 (publishing with QoS 2 is refused
/// before anything is sent, as in the original umqtt.simple); it subscribes
/// and receives with all three: a QoS 2 message is delivered exactly once.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
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
