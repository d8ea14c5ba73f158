//! [`Note`]: a short text kept inline, the "what was seen" of a finding.

use core::fmt;

/// A short text kept inline (no heap); longer text is cut.
#[derive(Clone, Copy)]
pub struct Note {
    buf: [u8; Note::CAPACITY],
    len: usize,
}

impl Note {
    /// Bytes a note holds.
    pub const CAPACITY: usize = 320;

    pub(crate) const fn new() -> Self {
        Note {
            buf: [0; Note::CAPACITY],
            len: 0,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Write for Note {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Note::CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        Ok(())
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use core::fmt::Write as _;

    #[test]
    fn note_truncates_at_a_char_boundary() {
        let mut note = Note::new();
        for _ in 0..Note::CAPACITY {
            let _ = note.write_str("é");
        }
        assert!(note.as_str().len() <= Note::CAPACITY);
        assert!(note.as_str().chars().all(|c| c == 'é'));
    }
}
