//! Partial send: one large PUBLISH, sent in chunks as fast as the stack
//! takes them, then a PINGREQ to prove the broker parsed every byte.

use core::fmt::Write as _;

use embedded_nal::TcpClientStack;
use umqtt_simple::packet::Packet;
use umqtt_transports::{Clock, Wait};

use crate::note::Note;
use crate::packets::{self, BURST_HEADER_MAX, MAX_BURST};
use crate::probe::Probe;
use crate::report::Verdict;
use crate::stats::{RecvStats, SendStats, Stop};

/// The burst, then a PINGREQ/PINGRESP. A `Fail` means the connection is
/// lost.
pub(crate) fn burst<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    note: &mut Note,
) -> Verdict {
    let total = p.config.burst_bytes.min(MAX_BURST);
    let t0 = p.now();
    let mut stats = SendStats::default();
    let (result, left) = send_burst(p, socket, scratch, total, &mut stats);
    let took = p.now().saturating_sub(t0);
    let _ = write!(
        note,
        "{} bytes in {} calls of up to {} bytes in {took} ms: {} partial, {} WouldBlock, {} Ok(0), longest call {} ms",
        total - left,
        stats.calls,
        scratch.len(),
        stats.partial,
        stats.would_block,
        stats.zero,
        stats.longest_ms
    );
    if let Err(stop) = result {
        let _ = write!(note, "; stopped: {stop}");
        return Verdict::Fail;
    }
    let deadline = p.deadline(p.config.deadline_ms);
    let mut received = RecvStats::default();
    if let Err(stop) = p.exchange(
        socket,
        &Packet::PingReq,
        &Packet::PingResp,
        deadline,
        &mut received,
    ) {
        let _ = write!(
            note,
            "; the broker did not answer afterwards ({stop}): bytes lost or reordered"
        );
        return Verdict::Fail;
    }
    back_pressure(&stats, u64::from(p.config.call_budget_ms), note)
}

/// Judges how `send` pushed back once the broker proved it parsed it all.
fn back_pressure(stats: &SendStats, budget: u64, note: &mut Note) -> Verdict {
    let verdict = if stats.zero > 0 {
        let _ = write!(
            note,
            "; Ok(0) means \"buffer full\" here: umqtt-simple waits and retries it like WouldBlock, until the send deadline"
        );
        Verdict::Pass
    } else if stats.longest_ms > budget {
        let _ = write!(note, "; send blocks when its buffer is full");
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    let _ = write!(note, "; broker parsed it all");
    if stats.partial == 0 && stats.would_block == 0 && stats.zero == 0 {
        let _ = write!(note, " (no back-pressure seen)");
    }
    verdict
}

/// Sends the PUBLISH header, then `total` payload bytes in chunks from
/// `scratch`, then polls once as the client does after a whole packet.
/// Returns how it ended and how many payload bytes were left unsent.
fn send_burst<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    total: usize,
    stats: &mut SendStats,
) -> (Result<(), Stop<S::Error>>, usize) {
    scratch.fill(b'u');
    // Generous: the burst may be large and the link slow.
    let deadline = p.deadline(p.config.deadline_ms.saturating_mul(5));
    let mut header = [0u8; BURST_HEADER_MAX];
    let mut result = match packets::burst_header(total, &mut header) {
        Ok(len) => p.send_all(
            socket,
            header.get(..len).unwrap_or_default(),
            deadline,
            stats,
        ),
        Err(e) => Err(Stop::Codec(e)),
    };
    let mut left = total;
    while result.is_ok() && left > 0 && !scratch.is_empty() {
        let chunk = left.min(scratch.len());
        let bytes = scratch.get(..chunk).unwrap_or_default();
        result = p.send_all(socket, bytes, deadline, stats);
        left -= chunk;
    }
    if result.is_ok() {
        p.waiter.poll(p.stack);
    }
    (result, left)
}
