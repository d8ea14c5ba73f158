//! Replaying a log at open: every record up to the end or the first torn
//! one, into the messages held.

use std::collections::BTreeMap;
use std::path::Path;

use super::super::record::{Unframed, read_message, unframe};
use super::format::*;
use super::{Live, OpenError, OpenReport, TornRecord};

/// What replaying a log found.
pub(super) struct Replayed {
    pub(super) live: BTreeMap<u32, Live>,
    pub(super) next_seq: u32,
    /// Bytes up to the end of the last good record.
    pub(super) good_len: usize,
    pub(super) report: OpenReport,
}

/// Why a log could not be replayed (the path is added by
/// [`ReplayError::at`]).
#[derive(Debug, PartialEq, Eq)]
pub(super) enum ReplayError {
    NotAnOutbox,
    UnsupportedVersion(u8),
    Invalid { offset: usize, reason: &'static str },
}

impl ReplayError {
    pub(super) fn at(self, path: &Path) -> OpenError {
        let path = path.to_path_buf();
        match self {
            ReplayError::NotAnOutbox => OpenError::NotAnOutbox { path },
            ReplayError::UnsupportedVersion(version) => {
                OpenError::UnsupportedVersion { path, version }
            }
            ReplayError::Invalid { offset, reason } => OpenError::Invalid {
                path,
                offset: offset as u64,
                reason,
            },
        }
    }
}

/// Replays the log in `bytes`, up to its end or its first torn record.
pub(super) fn replay(bytes: &[u8]) -> Result<Replayed, ReplayError> {
    let mut replayed = Replayed {
        live: BTreeMap::new(),
        next_seq: 1,
        good_len: 0,
        report: OpenReport::default(),
    };
    let mut offset = match unframe(bytes) {
        Unframed::End => return Ok(replayed),
        Unframed::Torn if torn_header(bytes) => {
            replayed.torn_at(0, bytes.len());
            return Ok(replayed);
        }
        Unframed::Torn => return Err(ReplayError::NotAnOutbox),
        Unframed::Frame(body, len) => {
            replayed.next_seq = read_header(body)?;
            replayed.report.records = 1;
            len
        }
    };
    loop {
        match unframe(bytes.get(offset..).unwrap_or_default()) {
            Unframed::End => break,
            Unframed::Torn => {
                replayed.torn_at(offset, bytes.len());
                break;
            }
            Unframed::Frame(body, len) => {
                replayed
                    .apply(body)
                    .map_err(|reason| ReplayError::Invalid { offset, reason })?;
                replayed.report.records += 1;
                offset += len;
            }
        }
    }
    replayed.good_len = offset;
    replayed.report.messages = replayed.live.len();
    Ok(replayed)
}

/// Whether a log whose first frame is torn is the beginning of an outbox
/// log cut short (its bytes so far agree with a header's, or are zeros, as
/// a file extended but not written reads after a power cut), rather than
/// some other file.
fn torn_header(bytes: &[u8]) -> bool {
    let [l0, l1, l2, l3] = (HEADER_FRAME as u32).to_le_bytes();
    let [m0, m1, m2, m3] = MAGIC;
    let prefix = [l0, l1, l2, l3, KIND_HEADER, m0, m1, m2, m3, VERSION];
    bytes.iter().zip(prefix).all(|(&a, b)| a == b) || bytes.iter().all(|&b| b == 0)
}

/// The next sequence number a header holds.
fn read_header(body: &[u8]) -> Result<u32, ReplayError> {
    let Some((&[kind, m0, m1, m2, m3, version], rest)) = body.split_first_chunk::<6>() else {
        return Err(ReplayError::NotAnOutbox);
    };
    if kind != KIND_HEADER || [m0, m1, m2, m3] != MAGIC {
        return Err(ReplayError::NotAnOutbox);
    }
    if version != VERSION {
        return Err(ReplayError::UnsupportedVersion(version));
    }
    match rest {
        &[s0, s1, s2, s3] => Ok(u32::from_le_bytes([s0, s1, s2, s3])),
        _ => Err(ReplayError::Invalid {
            offset: 0,
            reason: "a header of the wrong length",
        }),
    }
}

impl Replayed {
    fn torn_at(&mut self, offset: usize, end: usize) {
        self.good_len = offset;
        self.report.torn = Some(TornRecord {
            offset: offset as u64,
            dropped_bytes: end.saturating_sub(offset) as u64,
        });
    }

    /// Applies one record (with a good checksum).
    fn apply(&mut self, body: &[u8]) -> Result<(), &'static str> {
        let (&kind, rest) = body.split_first().ok_or("an empty record")?;
        let (seq, rest) = rest
            .split_first_chunk::<4>()
            .ok_or("a record without its sequence number")?;
        let seq = u32::from_le_bytes(*seq);
        match kind {
            KIND_MESSAGE => {
                if read_message(rest, seq, None).is_none() {
                    return Err("a message that does not decode");
                }
                if self.live.contains_key(&seq) {
                    return Err("a second message under one sequence number");
                }
                self.live.insert(
                    seq,
                    Live {
                        message: rest.to_vec(),
                        packet_id: None,
                    },
                );
                if seq >= self.next_seq {
                    self.next_seq = seq.wrapping_add(1).max(1);
                }
            }
            KIND_SENT => {
                let &[lo, hi] = rest else {
                    return Err("a sent record of the wrong length");
                };
                let live = self
                    .live
                    .get_mut(&seq)
                    .ok_or("a sent record for a message not held")?;
                live.packet_id = Some(u16::from_le_bytes([lo, hi]));
            }
            KIND_REMOVED => {
                if !rest.is_empty() {
                    return Err("a removed record of the wrong length");
                }
                self.live
                    .remove(&seq)
                    .ok_or("a removed record for a message not held")?;
            }
            KIND_HEADER => return Err("a second header"),
            _ => return Err("a record of an unknown kind"),
        }
        Ok(())
    }
}
