//! The checks that end the broker connection: the broker closing it (end of
//! file), then its host resetting it.

use core::fmt::Write as _;

use embedded_nal::{TcpClientStack, TcpError};
use umqtt_simple::packet::Packet;
use umqtt_transports::{Clock, Wait};

use crate::note::Note;
use crate::packets::{self, MAX_PACKET};
use crate::probe::Probe;
use crate::report::{Verdict, ZeroRead};
use crate::stats::{RecvStats, SendStats};

/// DISCONNECT: the broker closes; how does `receive` say so?
pub(crate) fn close<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    note: &mut Note,
) -> Verdict {
    let deadline = p.deadline(p.config.deadline_ms);
    let mut sent = SendStats::default();
    if let Err(stop) = p.send_packet(socket, &Packet::Disconnect, deadline, &mut sent) {
        let _ = write!(note, "DISCONNECT not sent: {stop}");
        return Verdict::Fail;
    }
    let t0 = p.now();
    let idle_zero = p.zero_read == ZeroRead::NoData;
    let mut stats = RecvStats::default();
    loop {
        let since = |p: &Probe<'_, '_, S, C, W>| p.now().saturating_sub(t0);
        match p.receive_once(socket, scratch, &mut stats) {
            Err(nb::Error::Other(e)) => {
                let _ = write!(
                    note,
                    "reported as an error after {} ms: {e:?} (kind {:?})",
                    since(p),
                    e.kind()
                );
                return Verdict::Pass;
            }
            Ok(0) if !idle_zero && scratch.is_empty() => {}
            Ok(0) if !idle_zero => {
                let _ = write!(
                    note,
                    "reported as Ok(0) after {} ms (idle is WouldBlock): set Client::set_zero_read_is_eof(true)",
                    since(p)
                );
                p.zero_read = ZeroRead::EndOfFile;
                return Verdict::Warn;
            }
            Ok(0) | Err(nb::Error::WouldBlock) => {}
            Ok(n) => {
                let _ = write!(note, "{n} unexpected bytes; ");
            }
        }
        if p.now() >= deadline {
            return not_reported(p, idle_zero, note);
        }
        let left = p.left(deadline);
        p.wait(socket, left, &mut stats);
    }
}

/// The broker's close never showed within the deadline.
fn not_reported<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    idle_zero: bool,
    note: &mut Note,
) -> Verdict {
    let keeps = if idle_zero {
        p.zero_read = ZeroRead::Ambiguous;
        "Ok(0), as when idle"
    } else {
        "WouldBlock"
    };
    let _ = write!(
        note,
        "not reported within {} ms: receive keeps returning {keeps}; the client notices only by keepalive",
        p.config.deadline_ms
    );
    Verdict::Fail
}

/// Writes PINGREQs to the connection the broker closed: its host answers
/// with a reset, which must surface as an error.
pub(crate) fn reset<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    note: &mut Note,
) -> Verdict {
    let mut buf = [0u8; MAX_PACKET];
    let pingreq = match packets::encode(&Packet::PingReq, &mut buf) {
        Ok(len) => buf.get(..len).unwrap_or_default(),
        Err(e) => {
            let _ = write!(note, "PINGREQ not sent: {e}");
            return Verdict::Fail;
        }
    };
    let deadline = p.deadline(p.config.deadline_ms);
    let t0 = p.now();
    let mut accepted = 0u32;
    let verdict = loop {
        match p.stack.send(socket, pingreq) {
            Err(nb::Error::Other(e)) => {
                let _ = write!(
                    note,
                    "send failed {} ms after the first write to the closed connection ({accepted} accepted before): {e:?} (kind {:?})",
                    p.now().saturating_sub(t0),
                    e.kind()
                );
                break Verdict::Pass;
            }
            Ok(n) if n > 0 => {
                accepted += 1;
                p.waiter.poll(p.stack);
            }
            Ok(_) | Err(nb::Error::WouldBlock) => {}
        }
        if p.now() >= deadline {
            let _ = write!(
                note,
                "send still accepted data {} ms after the first write to the closed connection ({accepted} writes): no reset seen; the client notices only by keepalive",
                p.config.deadline_ms
            );
            break Verdict::Fail;
        }
        p.waiter.idle(p.stack, 10);
    };
    let mut stats = RecvStats::default();
    let _ = match p.receive_once(socket, scratch, &mut stats) {
        Err(nb::Error::Other(e)) => write!(note, "; receive then: {e:?}"),
        Err(nb::Error::WouldBlock) => write!(note, "; receive then: WouldBlock"),
        Ok(n) => write!(note, "; receive then: Ok({n})"),
    };
    verdict
}
