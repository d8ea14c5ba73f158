//! The checks that open the broker connection and watch it: connect (with
//! CONNECT/CONNACK), idle receive and the waiter sleeping, the waiter waking.

use core::fmt::Write as _;

use embedded_nal::TcpClientStack;
use umqtt_simple::packet::Packet;
use umqtt_transports::{Clock, Wait};

use crate::config::Config;
use crate::note::Note;
use crate::packets::{CONNACK_ACCEPTED, CONNECT};
use crate::probe::Probe;
use crate::report::{Behaviour, Report, Verdict, ZeroRead};
use crate::stats::{ConnectEnd, ConnectStats, RecvStats};

/// Connects to the broker and exchanges CONNECT/CONNACK; returns the
/// connection when that worked.
pub(crate) fn connect<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    note: &mut Note,
) -> (Verdict, Option<S::TcpSocket>) {
    let mut socket = match p.stack.socket() {
        Ok(socket) => socket,
        Err(e) => {
            let _ = write!(note, "socket() failed: {e:?}");
            return (Verdict::Fail, None);
        }
    };
    let deadline = p.deadline(p.config.deadline_ms);
    let (end, stats) = p.connect(&mut socket, p.config.broker, deadline);
    if !describe_connect(end, &stats, p.config, note) {
        p.close(socket, note);
        return (Verdict::Fail, None);
    }
    let t0 = p.now();
    let mut received = RecvStats::default();
    match p.exchange(
        &mut socket,
        &CONNECT,
        &CONNACK_ACCEPTED,
        deadline,
        &mut received,
    ) {
        Ok(()) => {
            let took = p.now().saturating_sub(t0);
            let _ = write!(note, "; CONNECT/CONNACK in {took} ms");
            if stats.longest_ms > u64::from(p.config.call_budget_ms) {
                let _ = write!(note, "; connect blocks");
                (Verdict::Warn, Some(socket))
            } else {
                (Verdict::Pass, Some(socket))
            }
        }
        Err(stop) => {
            let _ = write!(note, "; CONNECT/CONNACK failed: {stop}");
            p.close(socket, note);
            (Verdict::Fail, None)
        }
    }
}

/// Notes how the TCP connect to the broker went; whether it connected.
fn describe_connect<E: core::fmt::Debug>(
    end: ConnectEnd<E>,
    stats: &ConnectStats,
    config: &Config<'_>,
    note: &mut Note,
) -> bool {
    match end {
        ConnectEnd::Connected => {}
        ConnectEnd::Failed(e) => {
            let _ = write!(note, "connect to {} failed: {e:?}", config.broker);
            return false;
        }
        ConnectEnd::Pending => {
            let _ = write!(
                note,
                "connect to {} still WouldBlock after {} ms",
                config.broker, stats.elapsed_ms
            );
            return false;
        }
    }
    let plural = if stats.calls == 1 { "" } else { "s" };
    let _ = write!(
        note,
        "connected in {} ms ({} call{plural}",
        stats.elapsed_ms, stats.calls
    );
    if stats.calls > 1 {
        let _ = write!(note, ", WouldBlock until then");
    }
    let _ = write!(note, ", longest {} ms)", stats.longest_ms);
    true
}

/// What watching the idle connection saw.
struct Idle {
    stats: RecvStats,
    elapsed_ms: u64,
    /// Bytes arrived although nothing was asked.
    unexpected: bool,
}

/// Watches the idle connection: what `receive` returns (`IdleReceive`) and
/// how the waiter spends the time (`WaiterSleeps`). Returns whether the
/// connection is still usable.
pub(crate) fn idle<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    report: &mut Report<'_>,
) -> bool {
    let mut watched = None;
    report.record(Behaviour::IdleReceive, |note| {
        match watch_idle(p, socket, scratch, note) {
            Ok(idle) => {
                let verdict = idle_receive(p, &idle, note);
                watched = Some(idle);
                verdict
            }
            Err(e) => {
                let _ = write!(note, "receive failed on an idle connection: {e:?}");
                Verdict::Fail
            }
        }
    });
    let Some(idle) = watched else {
        return false;
    };
    let budget = u64::from(p.config.call_budget_ms);
    report.record(Behaviour::WaiterSleeps, |note| {
        waiter_sleeps(&idle, budget, note)
    });
    true
}

/// Receives (and waits) on the idle connection for `idle_ms`; fails when
/// `receive` does.
fn watch_idle<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    scratch: &mut [u8],
    note: &mut Note,
) -> Result<Idle, S::Error> {
    let mut stats = RecvStats::default();
    let start = p.now();
    let until = p.deadline(p.config.idle_ms);
    let mut unexpected = false;
    loop {
        match p.receive_once(socket, scratch, &mut stats) {
            Ok(0) | Err(nb::Error::WouldBlock) => {}
            Ok(n) => {
                unexpected = true;
                let _ = write!(note, "{n} unexpected bytes arrived; ");
                break;
            }
            Err(nb::Error::Other(e)) => return Err(e),
        }
        if p.now() >= until {
            break;
        }
        let left = p.left(until);
        p.wait(socket, left, &mut stats);
    }
    Ok(Idle {
        stats,
        elapsed_ms: p.now().saturating_sub(start).max(1),
        unexpected,
    })
}

/// Judges what `receive` returned on the idle connection, and learns what
/// `Ok(0)` means.
fn idle_receive<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    idle: &Idle,
    note: &mut Note,
) -> Verdict {
    let stats = &idle.stats;
    let (zero_read, what) = match (stats.zero, stats.would_block) {
        (0, _) => (
            ZeroRead::Unseen,
            "WouldBlock (never Ok(0)): Ok(0) is free to mean end of file",
        ),
        (_, 0) => (
            ZeroRead::NoData,
            "Ok(0) (never WouldBlock): Ok(0) means \"no data\", keep set_zero_read_is_eof(false)",
        ),
        _ => (
            ZeroRead::NoData,
            "sometimes Ok(0), sometimes WouldBlock: Ok(0) means \"no data\", keep set_zero_read_is_eof(false)",
        ),
    };
    p.zero_read = zero_read;
    let _ = write!(
        note,
        "{what}; {} calls in {} ms, longest {} ms",
        stats.calls, idle.elapsed_ms, stats.longest_ms
    );
    if stats.longest_ms > u64::from(p.config.call_budget_ms) {
        let _ = write!(note, ": receive blocks, and check_msg with it");
        Verdict::Fail
    } else if idle.unexpected {
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

/// Judges how the waiter spent the idle time.
fn waiter_sleeps(idle: &Idle, budget: u64, note: &mut Note) -> Verdict {
    let stats = &idle.stats;
    let elapsed = idle.elapsed_ms;
    let rate = u64::from(stats.waits) * 1000 / elapsed;
    let _ = write!(note, "{} wait(s) in {elapsed} ms", stats.waits);
    if rate >= 10 {
        let _ = write!(note, " ({rate}/s)");
    }
    let _ = write!(
        note,
        ", longest {} ms, overran its timeout by at most {} ms",
        stats.longest_wait_ms, stats.overrun_ms
    );
    if stats.overrun_ms > budget {
        let _ = write!(note, ": the waiter sleeps past the client's deadlines");
        Verdict::Fail
    } else if rate > 1000 {
        let _ = write!(note, ": it spins (correct, but the CPU stays busy)");
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}

/// PINGREQ, then how soon the waiter hands over the PINGRESP. A `Fail`
/// means the connection is lost.
pub(crate) fn wakes<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    note: &mut Note,
) -> Verdict {
    let deadline_ms = p.config.deadline_ms;
    let deadline = p.deadline(deadline_ms);
    let t0 = p.now();
    let mut stats = RecvStats::default();
    let result = p.exchange(
        socket,
        &Packet::PingReq,
        &Packet::PingResp,
        deadline,
        &mut stats,
    );
    let took = p.now().saturating_sub(t0);
    if let Err(stop) = result {
        let _ = write!(note, "no PINGRESP: {stop} after {took} ms");
        return Verdict::Fail;
    }
    let _ = write!(
        note,
        "PINGRESP {took} ms after PINGREQ ({} wait(s), each given up to {deadline_ms} ms)",
        stats.waits
    );
    if took > u64::from(deadline_ms) / 4 {
        let _ = write!(note, ": the waiter sleeps through arriving data");
        Verdict::Warn
    } else {
        Verdict::Pass
    }
}
