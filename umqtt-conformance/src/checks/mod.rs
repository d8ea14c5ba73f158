//! The checks, one function per [`Behaviour`](crate::Behaviour). Each writes
//! what it saw into a note and returns a verdict, which
//! [`Report::record`] files; [`on_connection`] runs the ones that share the
//! broker connection.

pub(crate) mod burst;
pub(crate) mod dial;
pub(crate) mod peer;
pub(crate) mod session;

use embedded_nal::TcpClientStack;
use umqtt_transports::{Clock, Wait};

use crate::probe::Probe;
use crate::report::{Behaviour, Report, Verdict};

/// The behaviours checked on the broker connection, after `Connect`.
pub(crate) const ON_CONNECTION: [Behaviour; 6] = [
    Behaviour::IdleReceive,
    Behaviour::WaiterSleeps,
    Behaviour::WaiterWakes,
    Behaviour::PartialSend,
    Behaviour::PeerClose,
    Behaviour::PeerReset,
];

/// Runs the checks of [`ON_CONNECTION`] on `socket`, in order, then closes
/// it (a failed close is noted under `PeerReset`).
///
/// Peer close and reset are skipped when an earlier check lost the
/// connection.
pub(crate) fn on_connection<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    mut socket: S::TcpSocket,
    report: &mut Report<'_>,
    scratch: &mut [u8],
) {
    let socket_ = &mut socket;
    let alive = session::idle(p, socket_, scratch, report)
        && report.record(Behaviour::WaiterWakes, |note| {
            session::wakes(p, socket_, note)
        }) != Verdict::Fail
        && report.record(Behaviour::PartialSend, |note| {
            burst::burst(p, socket_, scratch, note)
        }) != Verdict::Fail;
    if alive {
        report.record(Behaviour::PeerClose, |note| {
            peer::close(p, socket_, scratch, note)
        });
        report.record(Behaviour::PeerReset, |note| {
            peer::reset(p, socket_, scratch, note)
        });
    } else {
        report.skip(
            &[Behaviour::PeerClose, Behaviour::PeerReset],
            "not checked: an earlier check lost the connection",
        );
    }
    let mut note = report.finding(Behaviour::PeerReset).note;
    p.close(socket, &mut note);
    let verdict = report.verdict(Behaviour::PeerReset);
    report.set(Behaviour::PeerReset, verdict, note);
}
