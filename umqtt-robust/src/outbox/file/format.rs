//! The log's records: kinds, sizes, and the bodies of the small ones (a
//! message's body is record.rs's layout).

use std::vec::Vec;

use super::super::record::{FRAME_OVERHEAD, frame};
use super::OutboxError;

pub(super) const KIND_HEADER: u8 = 0;
pub(super) const KIND_MESSAGE: u8 = 1;
pub(super) const KIND_SENT: u8 = 2;
pub(super) const KIND_REMOVED: u8 = 3;
pub(super) const MAGIC: [u8; 4] = *b"UMQO";
pub(super) const VERSION: u8 = 1;

/// A header's body: kind, magic, version, next sequence number.
pub(super) const HEADER_BODY: usize = 1 + 4 + 1 + 4;
pub(super) const HEADER_FRAME: usize = FRAME_OVERHEAD + HEADER_BODY;
/// A record's kind and sequence number.
pub(super) const RECORD_HEAD: usize = 1 + 4;
pub(super) const SENT_FRAME: usize = FRAME_OVERHEAD + RECORD_HEAD + 2;
/// Below this, a log is never rewritten (only truncated once empty).
pub(super) const COMPACT_MIN: u64 = 4096;

pub(super) fn header(next_seq: u32) -> [u8; HEADER_BODY] {
    let [m0, m1, m2, m3] = MAGIC;
    let [s0, s1, s2, s3] = next_seq.to_le_bytes();
    [KIND_HEADER, m0, m1, m2, m3, VERSION, s0, s1, s2, s3]
}

pub(super) fn sent_body(seq: u32, packet_id: u16) -> [u8; RECORD_HEAD + 2] {
    let [s0, s1, s2, s3] = seq.to_le_bytes();
    let [p0, p1] = packet_id.to_le_bytes();
    [KIND_SENT, s0, s1, s2, s3, p0, p1]
}

/// Appends the frame of `body` to `out`.
pub(super) fn push_frame(out: &mut Vec<u8>, body: &[u8]) -> Result<(), OutboxError> {
    let start = out.len();
    let len = body.len() + FRAME_OVERHEAD;
    out.resize(start + len, 0);
    let framed = out.get_mut(start..).and_then(|slot| frame(slot, body));
    if framed.is_none() {
        out.truncate(start);
        return Err(OutboxError::TooLarge {
            needed: len,
            capacity: u32::MAX as usize,
        });
    }
    Ok(())
}
