//! What a request is to the engine, and the steps requests share: starting,
//! encoding a packet, waiting for its acknowledgement.
//!
//! Each request kind is a type of its own (`publish.rs`, `requests.rs`)
//! that the engine runs through `&mut dyn Request`: a program links the
//! code of the kinds it makes, and no other.

use super::callbacks::Handled;
use super::checks::unsolicited;
use super::receive::{Got, Listen};
use super::{Engine, Io, Out};
use crate::error::{CoreError, Error, Waiting};
use crate::packet::Outgoing;
use crate::session::Encoded;

/// One call of a client, as the [`Engine`] runs it: made by a front-end's
/// public method, pumped with `Engine::step` until it is done. The kinds
/// are in [`crate::engine::requests`].
pub trait Request {
    /// Moves the request on at `now`: `Some` when the front-end has I/O to
    /// do or the request is done, `None` when something was queued to send
    /// first (the engine sends it and asks again).
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError>;

    /// The payload a send takes as it is, after the header in the transmit
    /// buffer (a publish too large for the buffer).
    fn payload(&self) -> &[u8] {
        &[]
    }

    /// No send of the request goes past this clock reading (each send also
    /// has the send timeout): CONNECT's is the connect deadline.
    fn send_deadline(&self) -> Option<u64> {
        None
    }
}

/// Where a request that is acknowledged stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum AckPhase {
    /// Nothing done yet.
    Start,
    /// Encoding its packet (again, after the batch went first).
    Encode,
    /// Sent: the wait for the acknowledgement begins.
    Sent,
    /// Waiting for the acknowledgement.
    Waiting,
    /// The acknowledgement arrived.
    Arrived,
}

impl Engine<'_> {
    /// Every request begins here: nothing of an earlier request is awaited
    /// any more.
    pub(super) fn begin(&mut self) -> Result<(), CoreError> {
        self.read = super::receive::Read::NotAsked;
        self.session.expect(None);
        Ok(())
    }

    /// Encodes `packet` behind the batch, to send next; true once it is
    /// (the batch goes alone first when both do not fit: false, call again
    /// after it went).
    pub(super) fn encode_request<P: Outgoing>(&mut self, packet: &P) -> Result<bool, CoreError> {
        Ok(match self.session.encode(packet)? {
            Encoded::FlushFirst(len) => {
                self.send(len, Out::Buffer);
                false
            }
            Encoded::Batched => true,
            Encoded::Send(len) | Encoded::SendWithPayload(len) => {
                self.send(len, Out::Buffer);
                true
            }
        })
    }

    /// Waits for the acknowledgement `waiting` of packet `id`, sent just
    /// now (`phase` Sent: the ack timeout starts, counted from after the
    /// send, which may have waited for room). Packets that arrive
    /// meanwhile go to the callbacks. Once it is in, `phase` is `Arrived`
    /// and the answer `Ok(None)` (the engine asks the request again).
    ///
    /// It answers what the request answers, so that a request returns it
    /// as it is (no copy of an error on the way).
    pub(super) fn await_ack(
        &mut self,
        rx: &mut Listen,
        phase: &mut AckPhase,
        waiting: Waiting,
        id: u16,
        now: u64,
    ) -> Result<Option<Io>, CoreError> {
        if *phase != AckPhase::Waiting {
            let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
            self.session.expect(Some((waiting, id)));
            *rx = self.listen(Some(deadline), true);
            *phase = AckPhase::Waiting;
        }
        match rx.take() {
            Some(Got::Packet(Handled::Acked)) => {
                self.session.expect(None);
                *phase = AckPhase::Arrived;
                Ok(None)
            }
            Some(Got::Packet(other)) => unsolicited(&mut self.session, other).map(|()| None),
            Some(Got::Nothing) => Err(Error::Timeout(waiting)),
            None => self.receive(rx, now),
        }
    }
}
