//! Inbound framing: the receive buffer, cut into packets, and the skipping
//! of a message too large for it.
//!
//! The driver writes what it receives into [`Inbound::space`] and reports
//! it with [`Inbound::received`]; [`Inbound::next`] then hands out one whole
//! packet at a time, or the end of a message that drained through.

use crate::error::{CoreError, Error};
use crate::packet::{DecodeError, FixedHeader, PacketType, Publish};

/// A message larger than the receive buffer, being read and thrown away.
///
/// The start of its topic stays at `rx[topic_at..topic_at + kept]` for the
/// report; the rest of the buffer, from there on, is where the message
/// drains through.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Discard {
    /// Bytes of the packet still to read.
    remaining: usize,
    /// The packet's size.
    pub(crate) size: usize,
    /// Its fixed-header flags (QoS, retain, dup).
    pub(crate) flags: u8,
    pub(crate) topic_len: usize,
    topic_at: usize,
    kept: usize,
    /// Where the packet id's two bytes are in the packet, while they have
    /// not been read.
    id_at: usize,
    id: [Option<u8>; 2],
}

impl Discard {
    /// Takes the packet id's bytes from `chunk`, the packet's bytes from
    /// offset `at` on.
    // Out of line for code size: the framing and the skipping both look
    // for the packet id.
    #[inline(never)]
    fn find_id(&mut self, at: usize, chunk: &[u8]) {
        for (k, byte) in self.id.iter_mut().enumerate() {
            if byte.is_none()
                && let Some(&b) = (self.id_at + k).checked_sub(at).and_then(|i| chunk.get(i))
            {
                *byte = Some(b);
            }
        }
    }

    /// The packet id (0 for QoS 0, or when it was never seen).
    pub(crate) fn packet_id(&self) -> u16 {
        match self.id {
            [Some(hi), Some(lo)] => u16::from_be_bytes([hi, lo]),
            _ => 0,
        }
    }
}

/// What [`Inbound::next`] found.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Frame {
    /// A whole packet, readable with [`Inbound::packet`] until the next call.
    Packet {
        header: FixedHeader,
        header_len: usize,
    },
    /// A message too large for the buffer has drained: its kept topic is
    /// readable with [`Inbound::kept_topic`] until the next receive.
    Drained(Discard),
}

/// The receive buffer and where its packets are.
pub(crate) struct Inbound<'a> {
    rx: &'a mut [u8],
    /// Where the received data not yet taken starts in `rx`.
    start: usize,
    /// Where the received data ends in `rx`.
    len: usize,
    /// Length of the packet handled last, at `start`; it stays readable
    /// until the next packet is taken.
    consumed: usize,
    discard: Option<Discard>,
    /// Where the received data starts when the buffer is empty: 0, or past
    /// the topic kept for the report while a message drains.
    floor: usize,
}

impl<'a> Inbound<'a> {
    pub(crate) fn new(rx: &'a mut [u8]) -> Self {
        Inbound {
            rx,
            start: 0,
            len: 0,
            consumed: 0,
            discard: None,
            floor: 0,
        }
    }

    /// Forgets everything received (a new connection).
    pub(crate) fn reset(&mut self) {
        self.start = 0;
        self.len = 0;
        self.consumed = 0;
        self.discard = None;
        self.floor = 0;
    }

    /// The receive buffer's size.
    pub(crate) fn capacity(&self) -> usize {
        self.rx.len()
    }

    /// Where the next received bytes go (empty when the buffer is full of
    /// data not handled yet).
    pub(crate) fn space(&mut self) -> &mut [u8] {
        if self.len == self.rx.len() {
            self.compact();
        }
        self.rx.get_mut(self.len..).unwrap_or_default()
    }

    /// `n` bytes were written at the start of [`Inbound::space`].
    pub(crate) fn received(&mut self, n: usize) {
        self.len = self.len.saturating_add(n).min(self.rx.len());
    }

    /// The packet [`Inbound::next`] returned last.
    pub(crate) fn packet(&self) -> &[u8] {
        let end = self.start + self.consumed;
        self.rx.get(self.start..end).unwrap_or_default()
    }

    /// Moves the data not yet taken to the front of the receive buffer. Done
    /// only when the end is reached, so each byte moves at most once per
    /// buffer length received.
    // Out of line for code size: three callers (receive space, framing, skipping).
    #[inline(never)]
    fn compact(&mut self) {
        let floor = self.floor;
        // floor <= start <= len <= rx.len(): a move within rx[floor..len],
        // written so that no bounds check is left to panic.
        let kept = self.len - self.start;
        if let Some(data) = self.rx.get_mut(floor..self.len)
            && let Some(from) = data.len().checked_sub(kept)
        {
            data.copy_within(from.., 0);
        }
        self.len = floor + kept;
        self.start = floor;
    }

    /// Marks `n` bytes at the start of the data as taken.
    fn advance(&mut self, n: usize) {
        self.start = (self.start + n).min(self.len);
        if self.start == self.len {
            self.start = self.floor;
            self.len = self.floor;
        }
    }

    /// The next whole packet in the receive buffer, if there is one; drains
    /// a message too large for it on the way.
    // Out of line for code size: its error paths cost more inlined into
    // the receive loop than a call does.
    #[inline(never)]
    pub(crate) fn next(&mut self) -> Result<Option<Frame>, CoreError> {
        let consumed = core::mem::take(&mut self.consumed);
        self.advance(consumed);
        if let Some(discard) = &self.discard {
            if discard.remaining > 0 {
                return Ok(self.drain());
            }
            // It drained and was reported.
            self.discard = None;
        }
        let data = self.rx.get(self.start..self.len).unwrap_or_default();
        let Some((header, header_len)) = FixedHeader::parse(data)? else {
            return Ok(None);
        };
        let total = header_len.saturating_add(header.remaining_length);
        if total > self.rx.len() {
            self.begin_discard(&header, header_len, total)?;
            return Ok(None);
        }
        if self.start + total > self.rx.len() {
            // It fits the buffer, but not from where it starts.
            self.compact();
        }
        if self.len - self.start < total {
            return Ok(None);
        }
        self.consumed = total;
        Ok(Some(Frame::Packet { header, header_len }))
    }

    /// Throws away what has arrived of the message being skipped, in place
    /// (it stays in `discard`, drained, until the next call of `next`).
    // Out of line for code size: the skipping path, kept apart from the framing.
    #[inline(never)]
    fn drain(&mut self) -> Option<Frame> {
        let discard = self.discard.as_mut()?;
        let n = discard.remaining.min(self.len - self.start);
        let chunk = self.rx.get(self.start..self.start + n).unwrap_or_default();
        discard.find_id(discard.size - discard.remaining, chunk);
        discard.remaining -= n;
        let drained = *discard;
        self.advance(n);
        if drained.remaining > 0 {
            return None;
        }
        // The kept topic is free again once it has been reported (the
        // discard stays, drained, until the next call).
        self.floor = 0;
        if self.start == self.len {
            self.start = 0;
            self.len = 0;
        }
        Some(Frame::Drained(drained))
    }

    /// The start of the topic of a message that drained, kept for its
    /// report (valid until the next receive).
    pub(crate) fn kept_topic(&self, discard: &Discard) -> &[u8] {
        let end = discard.topic_at + discard.kept;
        self.rx.get(discard.topic_at..end).unwrap_or_default()
    }

    /// The topic length of the PUBLISH at the start of the buffer, once its
    /// two bytes are in; one longer than the whole packet (with its
    /// `id_len`-byte packet id) is malformed, not merely large.
    fn topic_len(
        &self,
        header: &FixedHeader,
        header_len: usize,
        id_len: usize,
    ) -> Result<Option<usize>, CoreError> {
        let Some(&[hi, lo]) = self
            .rx
            .get(header_len..self.len)
            .and_then(<[u8]>::first_chunk::<2>)
        else {
            // The buffer holds at least a fixed header and two bytes.
            return Ok(None);
        };
        let topic_len = usize::from(u16::from_be_bytes([hi, lo]));
        if 2 + topic_len + id_len > header.remaining_length {
            return Err(Error::Protocol(DecodeError::Truncated {
                packet: PacketType::Publish,
            }));
        }
        Ok(Some(topic_len))
    }

    /// A packet larger than the receive buffer: a message is read to its
    /// end and thrown away, anything else ends the connection.
    ///
    /// Waits (returns with nothing started) until the topic and packet id
    /// are in, or the buffer is full. The start of the topic, at most half
    /// the buffer, stays for the report; the packet id is taken as it
    /// drains past when it is not in yet.
    fn begin_discard(
        &mut self,
        header: &FixedHeader,
        header_len: usize,
        total: usize,
    ) -> Result<(), CoreError> {
        if header.packet_type != PacketType::Publish {
            return Err(Error::PacketTooLarge {
                packet: header.packet_type,
                size: total,
                capacity: self.rx.len(),
            });
        }
        self.compact();
        let qos = Publish::qos_of(header.flags)?;
        let topic_at = header_len + 2;
        let id_len = if qos.has_packet_id() { 2 } else { 0 };
        // QoS 0 has no packet id: nothing to find.
        let no_id = (!qos.has_packet_id()).then_some(0);
        let Some(topic_len) = self.topic_len(header, header_len, id_len)? else {
            return Ok(());
        };
        let payload_at = topic_at + topic_len + id_len;
        if self.len < payload_at.min(self.rx.len()) {
            return Ok(());
        }
        let kept = topic_len
            .min(self.len - topic_at)
            .min((self.rx.len() - topic_at) / 2);
        let discard = self.discard.insert(Discard {
            remaining: total - self.len,
            size: total,
            flags: header.flags,
            topic_len,
            topic_at,
            kept,
            id_at: payload_at - id_len,
            id: [no_id, no_id],
        });
        discard.find_id(0, self.rx.get(..self.len).unwrap_or_default());
        log::warn!(
            "skipping a {total}-byte message: the receive buffer holds {}",
            self.rx.len()
        );
        // What is buffered past the kept topic belongs to the message.
        self.floor = topic_at + kept;
        self.start = self.floor;
        self.len = self.floor;
        Ok(())
    }
}
