//! Bounds-checked cursors for writing and reading packet fields.

use super::error::{DecodeError, EncodeError};
use super::header::PacketType;

/// Writes big-endian fields into a buffer, never past its end.
///
/// An encoder checks that the packet fits before it writes (and its fields
/// were validated: none too long for its length prefix), so no write
/// fails; if one did, the writer stops (every later write does nothing)
/// and [`Writer::finish`] refuses the packet. One check per packet instead
/// of one per field.
pub(crate) struct Writer<'b> {
    buf: &'b mut [u8],
    /// Bytes written; `usize::MAX` once a write failed.
    pos: usize,
}

impl<'b> Writer<'b> {
    pub(crate) fn new(buf: &'b mut [u8]) -> Self {
        Writer { buf, pos: 0 }
    }

    #[cfg(test)]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The bytes written, if they are the `expected` number (no write
    /// failed).
    pub(crate) fn finish(&self, expected: usize) -> Result<usize, EncodeError> {
        if self.pos == expected {
            Ok(expected)
        } else {
            Err(EncodeError::BufferTooSmall {
                needed: expected,
                available: self.buf.len(),
            })
        }
    }

    // Out of line for code size (measured).
    #[inline(never)]
    pub(crate) fn bytes(&mut self, bytes: &[u8]) {
        let end = self.pos.checked_add(bytes.len());
        match end.and_then(|end| Some((end, self.buf.get_mut(self.pos..end)?))) {
            Some((end, dst)) => {
                dst.copy_from_slice(bytes);
                self.pos = end;
            }
            None => self.pos = usize::MAX,
        }
    }

    // Out of line for code size: every encoder writes its fields through
    // these.
    #[inline(never)]
    pub(crate) fn u8(&mut self, value: u8) {
        self.bytes(&[value]);
    }

    // Out of line for code size: every encoder writes its fields through
    // these.
    #[inline(never)]
    pub(crate) fn u16(&mut self, value: u16) {
        self.bytes(&value.to_be_bytes());
    }

    /// A field with a two-byte length prefix. The caller has checked its length.
    // Out of line for code size: every encoder writes its fields through
    // these.
    #[inline(never)]
    pub(crate) fn prefixed(&mut self, bytes: &[u8]) {
        match u16::try_from(bytes.len()) {
            Ok(len) => {
                self.u16(len);
                self.bytes(bytes);
            }
            Err(_) => self.pos = usize::MAX,
        }
    }
}

/// Reads big-endian fields of one packet body, refusing to run past its end.
#[derive(Clone)]
pub(crate) struct Reader<'a> {
    buf: &'a [u8],
    packet: PacketType,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(buf: &'a [u8], packet: PacketType) -> Self {
        Reader { buf, packet }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    pub(crate) fn rest(&self) -> &'a [u8] {
        self.buf
    }

    pub(crate) fn bytes(&mut self, n: usize) -> Result<&'a [u8], DecodeError> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                packet: self.packet,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, DecodeError> {
        let [b] = self.bytes(1)? else {
            return Err(DecodeError::Truncated {
                packet: self.packet,
            });
        };
        Ok(*b)
    }

    pub(crate) fn u16(&mut self) -> Result<u16, DecodeError> {
        let [hi, lo] = self.bytes(2)? else {
            return Err(DecodeError::Truncated {
                packet: self.packet,
            });
        };
        Ok(u16::from_be_bytes([*hi, *lo]))
    }

    /// A packet id, which must not be 0.
    pub(crate) fn packet_id(&mut self) -> Result<u16, DecodeError> {
        match self.u16()? {
            0 => Err(DecodeError::ZeroPacketId),
            id => Ok(id),
        }
    }

    /// A field with a two-byte length prefix.
    pub(crate) fn prefixed(&mut self) -> Result<&'a [u8], DecodeError> {
        let len = self.u16()?;
        self.bytes(usize::from(len))
    }

    /// Fails unless every byte was read.
    pub(crate) fn finish(&self) -> Result<(), DecodeError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes {
                packet: self.packet,
            })
        }
    }
}
