//! Acknowledgements both ways: the packet ids the client takes, the
//! acknowledgement it waits for and whether an arriving one matches, and the
//! answers it owes the broker (PUBACK, PUBREC, PUBCOMP).

use crate::error::{CoreError, Error, Waiting};
use crate::packet::{Packet, PacketType, QoS};

use super::released::AwaitingRelease;

/// Packet ids, 1 to 65 535 and round again (never 0).
#[derive(Debug, Clone, Copy)]
pub(crate) struct PacketIds {
    next: u16,
}

impl PacketIds {
    pub(crate) const fn new() -> Self {
        PacketIds { next: 1 }
    }

    /// The id [`PacketIds::take`] gives next.
    pub(crate) fn peek(&self) -> u16 {
        self.next
    }

    // Out of line for code size (measured).
    #[inline(never)]
    pub(crate) fn take(&mut self) -> u16 {
        let id = self.next;
        self.next = match id.wrapping_add(1) {
            0 => 1,
            next => next,
        };
        id
    }
}

/// The acknowledgement the client waits for, if any.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Awaited(Option<(Waiting, u16)>);

impl Awaited {
    pub(crate) fn set(&mut self, awaited: Option<(Waiting, u16)>) {
        self.0 = awaited;
    }

    /// Whether the wait is for `kind` with `id`.
    pub(crate) fn is(&self, kind: Waiting, id: u16) -> bool {
        self.0 == Some((kind, id))
    }

    /// Checks an arriving acknowledgement: the one awaited ends the wait,
    /// any other ends the connection.
    pub(crate) fn arrived(
        &mut self,
        kind: Waiting,
        packet: PacketType,
        id: u16,
    ) -> Result<(), CoreError> {
        match self.0 {
            Some((waiting, expected)) if waiting == kind => {
                if id != expected {
                    return Err(Error::UnexpectedPacketId {
                        packet,
                        expected,
                        received: id,
                    });
                }
                self.0 = None;
                Ok(())
            }
            _ => Err(Error::UnexpectedPacket(packet)),
        }
    }
}

/// An answer owed to the broker for the packet handled last.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Owed {
    /// An acknowledgement for a delivered message, unless it was declined.
    Delivered(QoS, u16),
    /// An acknowledgement, declined or not (a copy, a skipped message).
    Ack(QoS, u16),
    PubComp(u16),
}

impl Owed {
    /// The packet that pays it, if any; `declined` tells whether the
    /// application declined the message. Remembers a QoS 2 id until its
    /// PUBREL.
    pub(crate) fn answer(
        self,
        declined: bool,
        released: &mut AwaitingRelease,
    ) -> Option<Packet<'static>> {
        let (qos, id) = match self {
            Owed::PubComp(id) => return Some(Packet::PubComp(id)),
            Owed::Delivered(_, id) if declined => {
                log::debug!("message {id} declined: left unacknowledged with the broker");
                return None;
            }
            Owed::Delivered(qos, id) | Owed::Ack(qos, id) => (qos, id),
        };
        match qos {
            QoS::AtMostOnce => None,
            QoS::AtLeastOnce => Some(Packet::PubAck(id)),
            QoS::ExactlyOnce => {
                if !released.insert(id) {
                    log::warn!(
                        "QoS 2 message {id}: {} messages already await their release; \
                         a copy sent again before its PUBREL would be delivered twice",
                        crate::AWAITING_RELEASE
                    );
                }
                Some(Packet::PubRec(id))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packet_ids_skip_zero() {
        let mut ids = PacketIds { next: u16::MAX };
        assert_eq!(ids.take(), u16::MAX);
        assert_eq!(ids.take(), 1);
        assert_eq!(ids.peek(), 2);
    }

    #[test]
    fn only_the_awaited_ack_matches() {
        let mut awaited = Awaited::default();
        let unexpected = awaited.arrived(Waiting::PubAck, PacketType::PubAck, 1);
        assert_eq!(unexpected, Err(Error::UnexpectedPacket(PacketType::PubAck)));
        awaited.set(Some((Waiting::PubAck, 7)));
        let wrong_kind = awaited.arrived(Waiting::SubAck, PacketType::SubAck, 7);
        assert_eq!(wrong_kind, Err(Error::UnexpectedPacket(PacketType::SubAck)));
        assert_eq!(
            awaited.arrived(Waiting::PubAck, PacketType::PubAck, 8),
            Err(Error::UnexpectedPacketId {
                packet: PacketType::PubAck,
                expected: 7,
                received: 8
            })
        );
        assert_eq!(
            awaited.arrived(Waiting::PubAck, PacketType::PubAck, 7),
            Ok(())
        );
        // Matched once: a second copy is unexpected.
        assert!(
            awaited
                .arrived(Waiting::PubAck, PacketType::PubAck, 7)
                .is_err()
        );
    }

    #[test]
    fn a_declined_message_owes_nothing_a_copy_owes_its_ack() {
        let mut released = AwaitingRelease::default();
        assert_eq!(
            Owed::Delivered(QoS::AtLeastOnce, 3).answer(true, &mut released),
            None
        );
        assert_eq!(
            Owed::Ack(QoS::ExactlyOnce, 4).answer(true, &mut released),
            Some(Packet::PubRec(4))
        );
        assert!(released.contains(4));
    }
}
