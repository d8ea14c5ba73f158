//! What goes through the outbox, decided once for both front-ends (sans-IO):
//! taking a message in (and what a full outbox drops), which message goes
//! out next and with which packet id, which are acknowledged, and what a
//! lost connection leaves to send again.
//!
//! Messages leave in the order they were taken in. On a connection they are
//! sent from the oldest on; a QoS 1 message stays in the outbox until the
//! client's window says its PUBACK came, a QoS 0 one leaves once sent. When
//! the connection is lost, everything not acknowledged is sent again on the
//! next one, from the oldest, a QoS 1 message with DUP and its packet id.

use umqtt_simple::packet::Publish;
use umqtt_simple::{Error, QoS};

use super::{Outbox, OutboxError, Queued, RamOutbox};
use crate::event::Event;

/// Checks a message before it is queued, as the client checks a PUBLISH
/// before sending it: a bad topic or an oversize message is refused now,
/// not found out when it is sent.
pub(crate) fn checked_message<E>(message: &Queued<'_>) -> Result<(), Error<E>> {
    Publish::new(message.topic, message.payload, message.qos)
        .with_retain(message.retain)
        .with_packet_id(1)
        .validate()?;
    if message.qos == QoS::ExactlyOnce {
        return Err(Error::Invalid(
            umqtt_simple::packet::EncodeError::PublishQoS2NotSupported,
        ));
    }
    Ok(())
}

/// What a full outbox does with a new message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum WhenFull {
    /// Refuse it: `publish` returns `RobustError::Outbox` and the message is
    /// not taken.
    #[default]
    Refuse,
    /// Drop the oldest messages until it fits; each drop is counted and
    /// reported (`Event::Dropped`).
    DropOldest,
    /// Wait for room: `publish` (or `queue`) sends what the window allows
    /// and handles PUBACKs, reconnecting as needed, until the message fits
    /// or the call deadline passes (then `RobustError::Outbox(Full)`, or
    /// `TimedOut`/`Offline` during an outage). Nothing is dropped. The
    /// default of a window in RAM (`set_window_in_ram`).
    Wait,
}

/// How the reconnecting client uses its outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct OutboxOptions {
    /// What a full outbox does.
    pub when_full: WhenFull,
    /// Queue QoS 0 messages too (by default they are sent when connected
    /// and lost in an outage, as QoS 0 allows).
    pub queue_qos0: bool,
}

/// The next message to send, with what its PUBLISH needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Next {
    pub(crate) seq: u32,
    pub(crate) qos: QoS,
    /// The packet id it was sent with before: sent again with DUP.
    pub(crate) resend_id: Option<u16>,
}

impl Next {
    /// The packet id it goes out with: the one it was sent with before, else
    /// a new one from `take` (QoS 1); none at QoS 0.
    pub(crate) fn packet_id(&self, take: impl FnOnce() -> u16) -> Option<u16> {
        match (self.qos, self.resend_id) {
            (QoS::AtLeastOnce, Some(id)) => Some(id),
            (QoS::AtLeastOnce, None) => Some(take()),
            _ => None,
        }
    }
}

/// Where the outbox's messages are kept: storage the application lent, or
/// a RAM outbox the client made over a buffer it was given.
enum Storage<'a> {
    Lent(&'a mut dyn Outbox),
    Ram(RamOutbox<'a>),
}

/// The outbox and where the current connection is in it.
pub(crate) struct Flow<'a> {
    storage: Storage<'a>,
    pub(crate) options: OutboxOptions,
    /// The newest message handed to the current connection.
    sent_through: Option<u32>,
    /// Messages dropped by [`WhenFull::DropOldest`] since the client began.
    dropped: u32,
}

impl<'a> Flow<'a> {
    pub(crate) fn new(outbox: &'a mut dyn Outbox, options: OutboxOptions) -> Self {
        Flow {
            storage: Storage::Lent(outbox),
            options,
            sent_through: None,
            dropped: 0,
        }
    }

    /// The storage of `set_window_in_ram`: an outbox in RAM over `buf`
    /// ([`RamOutbox`]), owned by the flow, that waits for room when full.
    pub(crate) fn window_in_ram(buf: &'a mut [u8]) -> Self {
        Flow {
            storage: Storage::Ram(RamOutbox::new(buf)),
            options: OutboxOptions {
                when_full: WhenFull::Wait,
                ..OutboxOptions::default()
            },
            sent_through: None,
            dropped: 0,
        }
    }

    pub(crate) fn outbox(&self) -> &dyn Outbox {
        match &self.storage {
            Storage::Lent(outbox) => &**outbox,
            Storage::Ram(outbox) => outbox,
        }
    }

    fn outbox_mut(&mut self) -> &mut dyn Outbox {
        match &mut self.storage {
            Storage::Lent(outbox) => &mut **outbox,
            Storage::Ram(outbox) => outbox,
        }
    }

    /// Whether a full outbox makes the caller wait for room
    /// ([`WhenFull::Wait`]).
    pub(crate) fn waits_when_full(&self) -> bool {
        self.options.when_full == WhenFull::Wait
    }

    /// Whether a message at `qos` goes through the outbox.
    pub(crate) fn takes(&self, qos: QoS) -> bool {
        qos == QoS::AtLeastOnce || (qos == QoS::AtMostOnce && self.options.queue_qos0)
    }

    /// Takes a message in; returns its sequence number and how many old
    /// ones were dropped to make room (only with [`WhenFull::DropOldest`]).
    pub(crate) fn accept(&mut self, message: &Queued<'_>) -> Result<(u32, u32), OutboxError> {
        let mut dropped = 0;
        let seq = loop {
            match self.outbox_mut().push(message) {
                Ok(seq) => break seq,
                Err(OutboxError::Full { .. }) if self.options.when_full == WhenFull::DropOldest => {
                    let Some(oldest) = self.outbox().first().map(|m| m.seq) else {
                        // Nothing left to drop, yet it does not fit.
                        return self.outbox_mut().push(message).map(|seq| (seq, dropped));
                    };
                    self.outbox_mut().remove(oldest)?;
                    if self.sent_through == Some(oldest) {
                        self.sent_through = None;
                    }
                    dropped += 1;
                }
                Err(e) => return Err(e),
            }
        };
        self.dropped = self.dropped.saturating_add(dropped);
        Ok((seq, dropped))
    }

    /// The next message to hand to the connection, if any.
    pub(crate) fn next(&self) -> Option<Next> {
        let message = match self.sent_through {
            None => self.outbox().first(),
            Some(seq) => self.outbox().next_after(seq),
        }?;
        Some(Next {
            seq: message.seq,
            qos: message.qos,
            resend_id: message.packet_id,
        })
    }

    /// The next message to hand to the connection, unless the client's
    /// window holds it back: a full window (`window_full`) takes no new
    /// QoS 1 message, while one sent again under an id still `in_flight`
    /// takes no new slot.
    pub(crate) fn next_sendable(
        &self,
        window_full: bool,
        in_flight: impl Fn(u16) -> bool,
    ) -> Option<Next> {
        let next = self.next()?;
        let held = next.qos == QoS::AtLeastOnce
            && window_full
            && next.resend_id.is_none_or(|id| !in_flight(id));
        (!held).then_some(next)
    }

    /// The message numbered `seq`, to encode.
    pub(crate) fn get(&self, seq: u32) -> Option<Queued<'_>> {
        match seq.checked_sub(1) {
            Some(before) => self.outbox().next_after(before),
            // An outbox may number its first message 0.
            None => self.outbox().first(),
        }
        .filter(|m| m.seq == seq)
    }

    /// Message `seq` is about to go out with `packet_id` (QoS 1): recorded
    /// first, so a send cut short is sent again as the same message.
    pub(crate) fn sending(&mut self, seq: u32, packet_id: Option<u16>) -> Result<(), OutboxError> {
        if let Some(id) = packet_id {
            self.outbox_mut().mark_sent(seq, id)?;
        }
        Ok(())
    }

    /// Message `seq` went out whole: a QoS 0 one is done.
    pub(crate) fn sent(&mut self, seq: u32, qos: QoS) -> Result<(), OutboxError> {
        self.sent_through = Some(seq);
        if qos == QoS::AtMostOnce {
            self.outbox_mut().remove(seq)?;
        }
        Ok(())
    }

    /// Removes every QoS 1 message sent on this connection whose PUBACK
    /// came (no longer `in_flight`), calling `acked` with each sequence
    /// number; returns how many.
    pub(crate) fn reconcile(
        &mut self,
        in_flight: impl Fn(u16) -> bool,
        mut acked: impl FnMut(u32),
    ) -> Result<usize, OutboxError> {
        let Some(through) = self.sent_through else {
            return Ok(0);
        };
        let mut count = 0;
        let mut cursor = self.sent_after(None, through);
        while let Some((seq, packet_id)) = cursor {
            cursor = self.sent_after(Some(seq), through);
            if packet_id.is_some_and(|id| !in_flight(id)) {
                self.outbox_mut().remove(seq)?;
                acked(seq);
                count += 1;
            }
        }
        Ok(count)
    }

    /// The connection was lost: what it acknowledged is removed (see
    /// [`Flow::reconcile`]), the rest goes out again on the next one.
    pub(crate) fn lost(
        &mut self,
        in_flight: impl Fn(u16) -> bool,
        acked: impl FnMut(u32),
    ) -> Result<usize, OutboxError> {
        let count = self.reconcile(in_flight, acked);
        self.sent_through = None;
        count
    }

    /// The message after `seq` (`None`: the first) if it was handed to the
    /// connection (numbered `through` or less): its number and packet id.
    fn sent_after(&self, seq: Option<u32>, through: u32) -> Option<(u32, Option<u16>)> {
        let message = match seq {
            None => self.outbox().first(),
            Some(seq) => self.outbox().next_after(seq),
        }?;
        (message.seq <= through).then_some((message.seq, message.packet_id))
    }

    pub(crate) fn dropped(&self) -> u32 {
        self.dropped
    }
}

impl Flow<'_> {
    /// After a call that handled packets, or once the connection is `lost`:
    /// removes from the outbox what the broker acknowledged (no longer
    /// `in_flight` in the client's window) and tells `emit` of each as
    /// [`Event::Delivered`]; after a loss, the rest goes out again on the
    /// next connection. A failure of the storage is logged.
    pub(crate) fn note_delivered(
        &mut self,
        in_flight: impl Fn(u16) -> bool,
        lost: bool,
        mut emit: impl FnMut(Event),
    ) {
        let delivered = |seq| emit(Event::Delivered { seq });
        let result = if lost {
            self.lost(in_flight, delivered)
        } else {
            self.reconcile(in_flight, delivered)
        };
        if let Err(e) = result {
            log::error!("the outbox failed to remove a delivered message: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::RamOutbox;

    fn q(payload: &[u8], qos: QoS) -> Queued<'_> {
        Queued::new(b"t", payload, qos, false)
    }

    #[test]
    fn messages_go_out_in_order_and_leave_when_acknowledged_or_sent_at_qos0() {
        let mut storage = [0u8; 512];
        let mut outbox = RamOutbox::new(&mut storage);
        let options = OutboxOptions {
            queue_qos0: true,
            ..OutboxOptions::default()
        };
        let mut flow = Flow::new(&mut outbox, options);
        for (payload, qos) in [
            (&b"a"[..], QoS::AtLeastOnce),
            (b"b", QoS::AtMostOnce),
            (b"c", QoS::AtLeastOnce),
        ] {
            assert_eq!(
                flow.accept(&q(payload, qos)).map(|(_, dropped)| dropped),
                Ok(0)
            );
        }
        let mut in_flight = std::vec::Vec::new();
        let mut id = 10;
        while let Some(next) = flow.next() {
            assert_eq!(next.resend_id, None);
            let packet_id = (next.qos == QoS::AtLeastOnce).then(|| {
                id += 1;
                id
            });
            flow.sending(next.seq, packet_id).unwrap();
            flow.sent(next.seq, next.qos).unwrap();
            in_flight.extend(packet_id);
        }
        assert_eq!(in_flight, [11, 12]);
        assert_eq!(flow.outbox().len(), 2, "the QoS 0 message left once sent");
        // The second PUBACK comes first.
        let mut acked = std::vec::Vec::new();
        assert_eq!(flow.reconcile(|id| id == 11, |seq| acked.push(seq)), Ok(1));
        assert_eq!(acked, [3]);
        assert_eq!(flow.reconcile(|_| false, |seq| acked.push(seq)), Ok(1));
        assert_eq!(acked, [3, 1]);
        assert!(flow.outbox().is_empty() && flow.next().is_none());
    }

    #[test]
    fn a_lost_connection_sends_the_unacknowledged_again_from_the_oldest_with_their_ids() {
        let mut storage = [0u8; 512];
        let mut outbox = RamOutbox::new(&mut storage);
        let mut flow = Flow::new(&mut outbox, OutboxOptions::default());
        for payload in [&b"a"[..], b"b", b"c"] {
            flow.accept(&q(payload, QoS::AtLeastOnce)).unwrap();
        }
        // a and b sent (ids 1, 2), c not yet; then b's PUBACK, then the loss.
        for (seq, id) in [(1, 1), (2, 2)] {
            flow.sending(seq, Some(id)).unwrap();
            flow.sent(seq, QoS::AtLeastOnce).unwrap();
        }
        assert_eq!(flow.lost(|id| id == 1, |_| {}), Ok(1));
        let again = flow.next().unwrap();
        assert_eq!(
            (again.seq, again.resend_id),
            (1, Some(1)),
            "a, with DUP and its id"
        );
        flow.sent(1, QoS::AtLeastOnce).unwrap();
        assert_eq!(
            flow.next().map(|n| (n.seq, n.resend_id)),
            Some((3, None)),
            "then c, new"
        );
    }

    #[test]
    fn a_full_window_holds_back_a_new_qos1_message_but_not_a_resend_in_flight() {
        let mut storage = [0u8; 256];
        let mut outbox = RamOutbox::new(&mut storage);
        let mut flow = Flow::new(&mut outbox, OutboxOptions::default());
        flow.accept(&q(b"a", QoS::AtLeastOnce)).unwrap();
        let next = flow.next_sendable(false, |_| false).unwrap();
        assert_eq!(next.packet_id(|| 9), Some(9), "a new one takes an id");
        assert!(flow.next_sendable(true, |_| false).is_none(), "held back");
        flow.sending(next.seq, Some(9)).unwrap();
        let again = flow.next_sendable(true, |id| id == 9).unwrap();
        assert_eq!(
            again.packet_id(|| unreachable!()),
            Some(9),
            "its own id again"
        );
        assert!(
            flow.next_sendable(true, |_| false).is_none(),
            "not in flight: a new slot"
        );
    }

    #[test]
    fn a_full_outbox_refuses_or_drops_the_oldest_and_counts_them() {
        let mut storage = [0u8; 64];
        let mut outbox = RamOutbox::new(&mut storage);
        let mut flow = Flow::new(&mut outbox, OutboxOptions::default());
        let message = q(b"0123456789", QoS::AtLeastOnce);
        flow.accept(&message).unwrap();
        flow.accept(&message).unwrap();
        assert!(matches!(
            flow.accept(&message),
            Err(OutboxError::Full { .. })
        ));
        assert_eq!(flow.outbox().len(), 2);
        flow.options.when_full = WhenFull::DropOldest;
        assert_eq!(flow.accept(&q(b"newest....", QoS::AtLeastOnce)), Ok((3, 1)));
        assert_eq!(flow.dropped(), 1);
        let kept: std::vec::Vec<_> = [
            flow.outbox().first().unwrap().seq,
            flow.outbox().next_after(2).unwrap().seq,
        ]
        .into();
        assert_eq!(kept, [2, 3], "the oldest went");
        assert!(matches!(
            flow.accept(&q(&[0u8; 100], QoS::AtLeastOnce)),
            Err(OutboxError::TooLarge { .. })
        ));
    }
}
