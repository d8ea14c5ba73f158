//! Outbound framing: packets encoded into the transmit buffer, and the
//! batch of QoS 0 messages that waits there ([`crate::Options::batch_qos0`]).
//!
//! Encoding says what the driver must send ([`Encoded`]); the driver sends
//! it and reports the outcome ([`Outbound::sent`], [`Outbound::drop_pending`]).

use crate::packet::{Connect, EncodeError, Outgoing, Publish, QoS};

/// What an encoded packet asks of the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoded {
    /// Send the first `len` bytes of the transmit buffer (the batch and the
    /// packet behind it).
    Send(usize),
    /// Send the first `len` bytes, then the message's payload as it is: it
    /// did not fit the buffer.
    SendWithPayload(usize),
    /// The batch leaves no room: send its `len` bytes alone, then encode
    /// again.
    FlushFirst(usize),
    /// A QoS 0 message joined the batch; nothing to send yet.
    Batched,
}

/// The transmit buffer, its batch and the batch's counters.
pub(crate) struct Outbound<'a> {
    tx: &'a mut [u8],
    /// Bytes at the start of `tx` that hold batched QoS 0 messages not sent
    /// yet.
    pending: usize,
    /// How many messages those bytes hold.
    pending_messages: u32,
    dropped_messages: u32,
}

impl<'a> Outbound<'a> {
    pub(crate) fn new(tx: &'a mut [u8]) -> Self {
        Outbound {
            tx,
            pending: 0,
            pending_messages: 0,
            dropped_messages: 0,
        }
    }

    /// The transmit buffer's size.
    pub(crate) fn capacity(&self) -> usize {
        self.tx.len()
    }

    /// The first `len` bytes of the transmit buffer: what to send.
    pub(crate) fn bytes(&self, len: usize) -> &[u8] {
        self.tx.get(..len).unwrap_or_default()
    }

    /// How many bytes the batch holds.
    pub(crate) fn pending_len(&self) -> usize {
        self.pending
    }

    pub(crate) fn pending_messages(&self) -> u32 {
        self.pending_messages
    }

    pub(crate) fn dropped_messages(&self) -> u32 {
        self.dropped_messages
    }

    /// Encodes CONNECT at the start of the buffer, over any batch (a new
    /// connection drops it). Writes nothing when it fails.
    pub(crate) fn encode_connect(&mut self, connect: Connect<'_>) -> Result<usize, EncodeError> {
        connect.validate()?;
        connect.encode_checked(self.tx)
    }

    /// Encodes a checked `packet` behind the batch: [`Encoded::Send`], or
    /// [`Encoded::FlushFirst`] when both do not fit (`encode` writes nothing
    /// when it fails).
    pub(crate) fn encode<P: Outgoing + ?Sized>(
        &mut self,
        packet: &P,
    ) -> Result<Encoded, EncodeError> {
        let start = self.pending;
        match packet.encode_checked(self.tx.get_mut(start..).unwrap_or_default()) {
            Ok(len) => Ok(Encoded::Send(start + len)),
            Err(EncodeError::BufferTooSmall { .. }) if start > 0 => Ok(Encoded::FlushFirst(start)),
            Err(e) => Err(e),
        }
    }

    /// Encodes a checked PUBLISH behind the batch: its payload too when it
    /// fits, else only its header ([`Encoded::SendWithPayload`]). With
    /// `batch`, a QoS 0 message that fits stays in the buffer.
    pub(crate) fn encode_publish(
        &mut self,
        publish: &Publish<'_>,
        batch: bool,
    ) -> Result<Encoded, EncodeError> {
        // A batch this message would overflow leaves first, alone (the size
        // is worked out only when there is a batch: the QoS 0 hot path).
        if self.pending > 0 && self.pending.saturating_add(publish.encoded_len()) > self.tx.len() {
            return Ok(Encoded::FlushFirst(self.pending));
        }
        let start = self.pending;
        let header_len =
            publish.encode_header_checked(self.tx.get_mut(start..).unwrap_or_default())?;
        let body_start = start + header_len;
        let end = body_start + publish.payload.len();
        let Some(room) = self.tx.get_mut(body_start..end) else {
            return Ok(Encoded::SendWithPayload(body_start));
        };
        room.copy_from_slice(publish.payload);
        if batch && publish.qos == QoS::AtMostOnce {
            self.pending = end;
            self.pending_messages = self.pending_messages.saturating_add(1);
            return Ok(Encoded::Batched);
        }
        Ok(Encoded::Send(end))
    }

    /// What was encoded went out, the batch with it.
    pub(crate) fn sent(&mut self) {
        self.pending = 0;
        self.pending_messages = 0;
    }

    /// Forgets the batched messages, counting them as dropped.
    // Out of line for code size: called on every lost or closed connection.
    #[inline(never)]
    pub(crate) fn drop_pending(&mut self) {
        if self.pending_messages > 0 {
            log::warn!(
                "{} batched QoS 0 messages dropped: the connection ended before they were sent",
                self.pending_messages
            );
            self.dropped_messages = self.dropped_messages.saturating_add(self.pending_messages);
        }
        self.sent();
    }
}
