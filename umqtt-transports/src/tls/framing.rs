//! Following the TLS record framing of a byte stream (5-byte header with the
//! length, then the body), so that a reader knows where a record starts:
//! the blocking adapter (`adapter.rs`) and the async one (`async_io.rs`)
//! both rely on it.

/// Where in the TLS record framing the byte stream is (shared with the
/// async adapter, which also replays the header of a record whose read was
/// cancelled).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Framing {
    /// The header of the record being read, as far as it came.
    head: [u8; 5],
    /// Header bytes read of the current record (0..=5; 5 while its body
    /// comes, 0 at a boundary).
    header: u8,
    /// Body bytes still to come of the current record.
    body_left: u16,
}

impl Framing {
    /// Whether the next byte starts a new record.
    pub(super) fn at_boundary(&self) -> bool {
        self.header == 0
    }

    /// The header bytes of the current record read so far (all 5 while its
    /// body comes; none at a boundary).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn header_so_far(&self) -> &[u8] {
        self.head
            .get(..usize::from(self.header))
            .unwrap_or_default()
    }

    /// Body bytes still to come of the current record (0 in a header).
    #[cfg_attr(not(feature = "tls-async"), allow(dead_code))]
    pub(super) fn body_left(&self) -> usize {
        usize::from(self.body_left)
    }

    /// Follows `bytes`; `false` if they cannot be TLS records.
    pub(super) fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while let Some((&b, rest)) = bytes.split_first() {
            if self.body_left > 0 {
                let n = usize::from(self.body_left).min(bytes.len());
                self.body_left -= u16::try_from(n).unwrap_or(self.body_left);
                if self.body_left == 0 {
                    self.header = 0;
                }
                bytes = bytes.get(n..).unwrap_or_default();
                continue;
            }
            match self.header {
                // Content types: change_cipher_spec, alert, handshake,
                // application_data, heartbeat.
                0 if !(20..=24).contains(&b) => return false,
                // Protocol version major: 3.
                1 if b != 3 => return false,
                _ => {}
            }
            if let Some(slot) = self.head.get_mut(usize::from(self.header)) {
                *slot = b;
            }
            self.header += 1;
            if self.header >= 5 {
                let [_, _, _, hi, lo] = self.head;
                self.body_left = u16::from_be_bytes([hi, lo]);
                if self.body_left == 0 {
                    self.header = 0;
                }
            }
            bytes = rest;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn framing_follows_records_split_anywhere() {
        let stream = [22, 3, 3, 0, 2, 9, 9, 23, 3, 3, 0, 1, 7, 21, 3, 3, 0, 0];
        for split in 1..stream.len() {
            let mut f = Framing::default();
            for chunk in stream.chunks(split) {
                assert!(f.feed(chunk), "split {split}");
            }
            assert!(f.at_boundary(), "split {split}");
        }
        let mut f = Framing::default();
        assert!(f.feed(&[23, 3, 3, 0, 4, 1]));
        assert!(!f.at_boundary());
        assert!(!Framing::default().feed(&[23, 2]));
    }
}
