//! The checks on fresh connections: a closed port, a black hole, and many
//! connect/close cycles.

use core::fmt::Write as _;

use embedded_nal::TcpClientStack;
use umqtt_transports::{Clock, Wait};

use crate::note::Note;
use crate::probe::Probe;
use crate::report::Verdict;
use crate::stats::ConnectEnd;

/// Connects to a port on which nothing listens.
pub(crate) fn closed_port<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    note: &mut Note,
) -> Verdict {
    let config = *p.config;
    let addr = config.closed_port;
    let budget = u64::from(config.call_budget_ms);
    p.attempt(addr, note, |end, stats, note| match end {
        ConnectEnd::Failed(e) => {
            let _ = write!(
                note,
                "refused after {} ms ({} call(s), longest {} ms): {e:?}",
                stats.elapsed_ms, stats.calls, stats.longest_ms
            );
            if stats.longest_ms > budget {
                Verdict::Warn
            } else {
                Verdict::Pass
            }
        }
        ConnectEnd::Pending => {
            let _ = write!(
                note,
                "no error: WouldBlock for the whole {} ms ({} calls, longest {} ms); the client waits out its connect timeout, then reports Timeout(Connect)",
                config.deadline_ms, stats.calls, stats.longest_ms
            );
            if stats.longest_ms > budget {
                Verdict::Fail
            } else {
                Verdict::Warn
            }
        }
        ConnectEnd::Connected => {
            let _ = write!(note, "connected: something listens on {addr}");
            Verdict::Fail
        }
    })
}

/// Connects to an address that never answers.
pub(crate) fn black_hole<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    note: &mut Note,
) -> Verdict {
    let Some(addr) = p.config.black_hole else {
        let _ = note.write_str("not checked: no black-hole address given");
        return Verdict::Skipped;
    };
    let deadline_ms = u64::from(p.config.deadline_ms);
    let budget = u64::from(p.config.call_budget_ms);
    p.attempt(addr, note, |end, stats, note| match end {
        ConnectEnd::Connected => {
            let _ = write!(note, "connected: {addr} is not a black hole");
            Verdict::Fail
        }
        _ if stats.longest_ms > deadline_ms + budget => {
            let _ = write!(
                note,
                "one connect call blocked {} ms, past the {deadline_ms} ms deadline: the client cannot enforce its connect timeout",
                stats.longest_ms
            );
            Verdict::Fail
        }
        ConnectEnd::Failed(e) => {
            let _ = write!(
                note,
                "failed after {} ms ({} call(s), longest {} ms): {e:?}",
                stats.elapsed_ms, stats.calls, stats.longest_ms
            );
            if stats.longest_ms > budget {
                let _ = write!(note, "; connect blocks for the stack's own timeout");
                Verdict::Warn
            } else {
                Verdict::Pass
            }
        }
        ConnectEnd::Pending => {
            let _ = write!(
                note,
                "WouldBlock until the {deadline_ms} ms deadline ({} calls, longest {} ms): the client's connect timeout applies",
                stats.calls, stats.longest_ms
            );
            if stats.longest_ms > budget {
                Verdict::Warn
            } else {
                Verdict::Pass
            }
        }
    })
}

/// Connect/close cycles: more than a small stack has sockets.
pub(crate) fn close_reopen<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    note: &mut Note,
) -> Verdict {
    const CYCLES: u32 = 20;
    let t0 = p.now();
    for cycle in 1..=CYCLES {
        let mut socket = match p.stack.socket() {
            Ok(socket) => socket,
            Err(e) => {
                let _ = write!(
                    note,
                    "socket() failed in cycle {cycle}: {e:?}: close leaks sockets"
                );
                return Verdict::Fail;
            }
        };
        let deadline = p.deadline(p.config.deadline_ms);
        let (end, _) = p.connect(&mut socket, p.config.broker, deadline);
        let connected = match end {
            ConnectEnd::Connected => true,
            ConnectEnd::Failed(e) => {
                let _ = write!(note, "connect failed in cycle {cycle}: {e:?}");
                false
            }
            ConnectEnd::Pending => {
                let _ = write!(note, "connect still WouldBlock in cycle {cycle}");
                false
            }
        };
        if let Err(e) = p.stack.close(socket) {
            let _ = write!(note, "close failed in cycle {cycle}: {e:?}");
            return Verdict::Fail;
        }
        if !connected {
            return Verdict::Fail;
        }
    }
    let _ = write!(
        note,
        "{CYCLES} socket/connect/close cycles in {} ms",
        p.now().saturating_sub(t0)
    );
    Verdict::Pass
}
