//! [`RamOutbox`]: the outbox in a buffer the user gives (no heap, no_std).

use super::record::{message_len, read_message, write_message};
use super::{Outbox, OutboxError, Queued};

/// Entry header: entry length (u32), sequence number (u32), state (u8),
/// packet id (u16).
const ENTRY_HEADER: usize = 11;
const SENT: u8 = 0b01;
const REMOVED: u8 = 0b10;

/// An outbox in RAM, over a byte buffer the user gives: messages lie one
/// after the other, each with an 11-byte header (plus 3 bytes of its own).
/// It holds them across outages, not across a restart.
///
/// A message removed from the middle (acknowledged out of order) keeps its
/// room until the messages before it are removed too; room at the front is
/// reclaimed by moving what remains down.
///
/// ```
/// use umqtt_robust::outbox::{Outbox, Queued, RamOutbox};
/// use umqtt_simple::QoS;
///
/// let mut storage = [0u8; 256];
/// let mut outbox = RamOutbox::new(&mut storage);
/// let seq = outbox.push(&Queued::new(b"t", b"one", QoS::AtLeastOnce, false)).unwrap();
/// assert_eq!(outbox.first().map(|m| m.payload), Some(&b"one"[..]));
/// outbox.remove(seq).unwrap();
/// assert!(outbox.is_empty());
/// ```
pub struct RamOutbox<'a> {
    buf: &'a mut [u8],
    /// Entries lie in `start..end`.
    start: usize,
    end: usize,
    next_seq: u32,
    len: usize,
}

/// One entry, as found in the buffer.
struct Entry {
    at: usize,
    len: usize,
    seq: u32,
    state: u8,
    packet_id: u16,
}

impl<'a> RamOutbox<'a> {
    /// An empty outbox over `buf`.
    pub fn new(buf: &'a mut [u8]) -> Self {
        RamOutbox {
            buf,
            start: 0,
            end: 0,
            next_seq: 1,
            len: 0,
        }
    }

    /// Bytes a push of `message` takes.
    pub fn needed(message: &Queued<'_>) -> usize {
        ENTRY_HEADER + message_len(message)
    }

    /// The entry at `at`, if one starts there.
    fn entry(&self, at: usize) -> Option<Entry> {
        if at >= self.end {
            return None;
        }
        let header = self.buf.get(at..at + ENTRY_HEADER)?;
        let (len, rest) = header.split_first_chunk::<4>()?;
        let (seq, rest) = rest.split_first_chunk::<4>()?;
        let (&[state], rest) = rest.split_first_chunk::<1>()?;
        let (packet_id, _) = rest.split_first_chunk::<2>()?;
        Some(Entry {
            at,
            len: u32::from_le_bytes(*len) as usize,
            seq: u32::from_le_bytes(*seq),
            state,
            packet_id: u16::from_le_bytes(*packet_id),
        })
    }

    /// The live entries, oldest first.
    fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        let mut at = self.start;
        core::iter::from_fn(move || {
            let entry = self.entry(at)?;
            at += entry.len.max(ENTRY_HEADER);
            Some(entry)
        })
        .filter(|entry| entry.state & REMOVED == 0)
    }

    fn queued(&self, entry: &Entry) -> Option<Queued<'_>> {
        let body = self
            .buf
            .get(entry.at + ENTRY_HEADER..entry.at + entry.len)?;
        let packet_id = (entry.state & SENT != 0).then_some(entry.packet_id);
        read_message(body, entry.seq, packet_id)
    }

    fn find(&self, seq: u32) -> Result<Entry, OutboxError> {
        self.entries()
            .find(|entry| entry.seq == seq)
            .ok_or(OutboxError::UnknownSeq(seq))
    }

    fn set_state(&mut self, entry: &Entry, state: u8, packet_id: u16) {
        if let Some(slot) = self.buf.get_mut(entry.at + 8..entry.at + ENTRY_HEADER) {
            let id = packet_id.to_le_bytes();
            slot.copy_from_slice(&[state, id[0], id[1]]);
        }
    }

    /// Moves past removed entries at the front.
    fn reclaim_front(&mut self) {
        while let Some(entry) = self.entry(self.start) {
            if entry.state & REMOVED == 0 {
                break;
            }
            self.start += entry.len.max(ENTRY_HEADER);
        }
        if self.start >= self.end {
            self.start = 0;
            self.end = 0;
        }
    }
}

impl Outbox for RamOutbox<'_> {
    fn push(&mut self, message: &Queued<'_>) -> Result<u32, OutboxError> {
        let needed = Self::needed(message);
        if needed > self.buf.len() {
            return Err(OutboxError::TooLarge {
                needed,
                capacity: self.buf.len(),
            });
        }
        if self.buf.len() - self.end < needed {
            // Reclaim the room before `start`.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let free = self.buf.len() - self.end;
        let capacity = self.buf.len();
        let len = u32::try_from(needed).map_err(|_| OutboxError::TooLarge { needed, capacity })?;
        let Some(out) = self.buf.get_mut(self.end..self.end + needed) else {
            return Err(OutboxError::Full { needed, free });
        };
        let (header, body) = out.split_at_mut(ENTRY_HEADER);
        write_message(body, message)?;
        let seq = self.next_seq;
        let ([l0, l1, l2, l3], [s0, s1, s2, s3]) = (len.to_le_bytes(), seq.to_le_bytes());
        header.copy_from_slice(&[l0, l1, l2, l3, s0, s1, s2, s3, 0, 0, 0]);
        self.end += needed;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.len += 1;
        Ok(seq)
    }

    fn first(&self) -> Option<Queued<'_>> {
        let entry = self.entries().next()?;
        self.queued(&entry)
    }

    fn next_after(&self, seq: u32) -> Option<Queued<'_>> {
        let entry = self.entries().find(|entry| entry.seq > seq)?;
        self.queued(&entry)
    }

    fn mark_sent(&mut self, seq: u32, packet_id: u16) -> Result<(), OutboxError> {
        let entry = self.find(seq)?;
        self.set_state(&entry, entry.state | SENT, packet_id);
        Ok(())
    }

    fn remove(&mut self, seq: u32) -> Result<(), OutboxError> {
        let entry = self.find(seq)?;
        self.set_state(&entry, entry.state | REMOVED, entry.packet_id);
        self.len -= 1;
        self.reclaim_front();
        Ok(())
    }

    fn len(&self) -> usize {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umqtt_simple::QoS;

    fn msg(payload: &[u8]) -> Queued<'_> {
        Queued::new(b"t/x", payload, QoS::AtLeastOnce, false)
    }

    #[test]
    fn messages_come_back_in_order_with_their_packet_ids_and_leave_in_any_order() {
        let mut storage = [0u8; 256];
        let mut outbox = RamOutbox::new(&mut storage);
        let a = outbox.push(&msg(b"a")).unwrap();
        let b = outbox.push(&msg(b"b")).unwrap();
        let c = outbox.push(&msg(b"c")).unwrap();
        assert!(a < b && b < c);
        outbox.mark_sent(b, 7).unwrap();
        assert_eq!(outbox.first().unwrap().payload, b"a");
        let second = outbox.next_after(a).unwrap();
        assert_eq!((second.payload, second.packet_id), (&b"b"[..], Some(7)));
        outbox.remove(b).unwrap();
        assert_eq!(outbox.next_after(a).unwrap().payload, b"c");
        assert_eq!(outbox.len(), 2);
        outbox.remove(a).unwrap();
        outbox.remove(c).unwrap();
        assert!(outbox.is_empty() && outbox.first().is_none());
        assert_eq!(outbox.remove(c), Err(OutboxError::UnknownSeq(c)));
    }

    #[test]
    fn a_full_outbox_refuses_without_change_and_takes_more_once_the_front_is_removed() {
        let mut storage = [0u8; 64];
        let mut outbox = RamOutbox::new(&mut storage);
        let each = RamOutbox::needed(&msg(b"0123456789"));
        assert_eq!(each, 11 + 3 + 3 + 10);
        let first = outbox.push(&msg(b"0123456789")).unwrap();
        outbox.push(&msg(b"abcdefghij")).unwrap();
        assert_eq!(
            outbox.push(&msg(b"ABCDEFGHIJ")),
            Err(OutboxError::Full {
                needed: each,
                free: 64 - 2 * each
            })
        );
        assert_eq!(outbox.len(), 2);
        outbox.remove(first).unwrap();
        outbox.push(&msg(b"ABCDEFGHIJ")).unwrap();
        let payloads: [&[u8]; 2] = [
            outbox.first().unwrap().payload,
            outbox.next_after(first + 1).unwrap().payload,
        ];
        assert_eq!(payloads, [&b"abcdefghij"[..], &b"ABCDEFGHIJ"[..]]);
        assert_eq!(
            outbox.push(&msg(&[0u8; 100])),
            Err(OutboxError::TooLarge {
                needed: 117,
                capacity: 64
            })
        );
    }
}
