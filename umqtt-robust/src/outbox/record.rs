//! How a queued message is laid out in bytes, and the checksummed frame a
//! persistent outbox (a file, flash) writes each record in, so that a record
//! cut short by a power cut is found and dropped.
//!
//! Message: `flags` (bits 0-1 QoS, bit 2 retain), topic length (u16 LE),
//! topic, payload. Frame: length of the whole frame (u32 LE), body, CRC-32
//! (IEEE, LE) of length and body.

use umqtt_simple::QoS;

use super::{OutboxError, Queued};

/// Bytes a message takes beyond its topic and payload (flags and topic
/// length, 3; a frame's length and checksum, 8; the RAM outbox's entry
/// header, 11): the largest of what the outboxes here add, 22, for sizing.
pub const RECORD_OVERHEAD: usize = 22;

/// Bytes of a message's own header (flags, topic length).
pub(crate) const MESSAGE_HEADER: usize = 3;
/// Bytes a frame adds to its body (its length and checksum).
pub const FRAME_OVERHEAD: usize = 8;

/// Bytes `message` takes as a message.
pub(crate) fn message_len(message: &Queued<'_>) -> usize {
    MESSAGE_HEADER + message.topic.len() + message.payload.len()
}

/// Writes `message` at the start of `out` (which holds [`message_len`]
/// bytes); refuses a topic over 65 535 bytes.
pub(crate) fn write_message(out: &mut [u8], message: &Queued<'_>) -> Result<usize, OutboxError> {
    let len = message_len(message);
    let topic_len = u16::try_from(message.topic.len()).map_err(|_| OutboxError::TooLarge {
        needed: len,
        capacity: MESSAGE_HEADER + usize::from(u16::MAX),
    })?;
    let Some(out) = out.get_mut(..len) else {
        return Err(OutboxError::Full {
            needed: len,
            free: out.len(),
        });
    };
    let (head, rest) = out.split_at_mut(MESSAGE_HEADER);
    let flags = (message.qos as u8) | (u8::from(message.retain) << 2);
    head.copy_from_slice(&[
        flags,
        topic_len.to_le_bytes()[0],
        topic_len.to_le_bytes()[1],
    ]);
    let (topic, payload) = rest.split_at_mut(message.topic.len());
    topic.copy_from_slice(message.topic);
    payload.copy_from_slice(message.payload);
    Ok(len)
}

/// Reads a message written by [`write_message`] (all of `bytes`); `None`
/// if they do not hold one.
pub(crate) fn read_message(bytes: &[u8], seq: u32, packet_id: Option<u16>) -> Option<Queued<'_>> {
    let (&[flags, lo, hi], rest) = bytes.split_first_chunk::<MESSAGE_HEADER>()?;
    let (topic, payload) = rest.split_at_checked(usize::from(u16::from_le_bytes([lo, hi])))?;
    let qos = match flags & 0b11 {
        0 => QoS::AtMostOnce,
        1 => QoS::AtLeastOnce,
        _ => return None,
    };
    Some(Queued {
        seq,
        topic,
        payload,
        qos,
        retain: flags & 0b100 != 0,
        packet_id,
    })
}

/// Frames `body` into `out`: length, body, checksum; returns the frame's
/// length.
pub fn frame(out: &mut [u8], body: &[u8]) -> Option<usize> {
    let len = body.len().checked_add(FRAME_OVERHEAD)?;
    let len32 = u32::try_from(len).ok()?;
    let out = out.get_mut(..len)?;
    let (head, rest) = out.split_at_mut(4);
    head.copy_from_slice(&len32.to_le_bytes());
    let (middle, tail) = rest.split_at_mut(body.len());
    middle.copy_from_slice(body);
    let sum = checksum(&[&len32.to_le_bytes(), body]);
    tail.copy_from_slice(&sum.to_le_bytes());
    Some(len)
}

/// What reading a frame at the start of some bytes found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unframed<'b> {
    /// A whole frame with a good checksum: its body, and its length.
    Frame(&'b [u8], usize),
    /// Nothing: the bytes end here.
    End,
    /// A frame cut short or with a bad checksum (a torn write): nothing
    /// from here on can be trusted.
    Torn,
}

/// Reads the frame at the start of `bytes`.
pub fn unframe(bytes: &[u8]) -> Unframed<'_> {
    if bytes.is_empty() {
        return Unframed::End;
    }
    let Some((len, _)) = bytes.split_first_chunk::<4>() else {
        return Unframed::Torn;
    };
    let len = u32::from_le_bytes(*len) as usize;
    let Some(whole) = bytes.get(..len).filter(|_| len >= FRAME_OVERHEAD) else {
        return Unframed::Torn;
    };
    let (covered, sum) = whole.split_at(len - 4);
    let Some((_, body)) = covered.split_first_chunk::<4>() else {
        return Unframed::Torn;
    };
    let sum = u32::from_le_bytes(sum.try_into().unwrap_or_default());
    if checksum(&[covered]) == sum {
        Unframed::Frame(body, len)
    } else {
        Unframed::Torn
    }
}

/// CRC-32 (IEEE 802.3, as zlib computes it) of the concatenated `parts`.
pub fn checksum(parts: &[&[u8]]) -> u32 {
    let mut crc = !0u32;
    for byte in parts.iter().flat_map(|part| part.iter()) {
        let index = usize::from((crc as u8) ^ byte);
        crc = CRC_TABLE.get(index).copied().unwrap_or_default() ^ (crc >> 8);
    }
    !crc
}

// Evaluated at compile time: an index out of bounds would fail the build.
#[allow(clippy::indexing_slicing)]
const CRC_TABLE: [u32; 256] = {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 {
                0xedb8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksum_is_zlibs_crc32() {
        assert_eq!(checksum(&[b"123456789"]), 0xcbf4_3926);
        assert_eq!(checksum(&[b"1234", b"56789"]), 0xcbf4_3926);
        assert_eq!(checksum(&[]), 0);
    }

    #[test]
    fn a_message_reads_back_as_written() {
        let message = Queued::new(b"a/b", b"payload", QoS::AtLeastOnce, true);
        let mut buf = [0u8; 64];
        let len = write_message(&mut buf, &message).unwrap();
        assert_eq!(len, message_len(&message));
        let back = read_message(&buf[..len], 9, Some(4)).unwrap();
        assert_eq!(
            (back.topic, back.payload, back.qos, back.retain),
            (&b"a/b"[..], &b"payload"[..], QoS::AtLeastOnce, true)
        );
        assert_eq!((back.seq, back.packet_id), (9, Some(4)));
    }

    #[test]
    fn a_frame_reads_back_and_every_cut_or_flipped_byte_is_found_torn() {
        let mut buf = [0u8; 32];
        let len = frame(&mut buf, b"hello frame").unwrap();
        assert_eq!(unframe(&buf[..len]), Unframed::Frame(b"hello frame", len));
        assert_eq!(unframe(&[]), Unframed::End);
        for cut in 1..len {
            assert_eq!(unframe(&buf[..cut]), Unframed::Torn, "cut at {cut}");
        }
        for at in 0..len {
            let mut flipped = buf;
            flipped[at] ^= 0x20;
            assert_eq!(
                unframe(&flipped[..len]),
                Unframed::Torn,
                "byte {at} flipped"
            );
        }
    }
}
