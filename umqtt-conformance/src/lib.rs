#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(test)]
extern crate std;

mod checks;
mod config;
mod note;
mod packets;
mod probe;
mod report;
mod stats;

use embedded_nal::TcpClientStack;
use umqtt_transports::{Clock, Wait};

pub use config::Config;
pub use note::Note;
pub use report::{Behaviour, Finding, Report, Verdict, ZeroRead};

use checks::{ON_CONNECTION, dial, session};
use probe::Probe;

/// Runs every check against `stack` and returns the report.
///
/// `waiter` is used as the client uses it; `scratch` holds the burst's
/// chunks and received bytes (a few KiB is plenty; at least 64 bytes).
/// Nothing is left open afterwards. See the [crate docs](crate).
pub fn run<'a, S, C, W>(
    stack: &mut S,
    clock: &C,
    waiter: &mut W,
    config: &Config<'a>,
    scratch: &mut [u8],
) -> Report<'a>
where
    S: TcpClientStack,
    C: Clock,
    W: Wait<S>,
{
    let mut report = Report::new(config);
    let mut probe = Probe::new(stack, clock, waiter, config);
    let mut connection = None;
    report.record(Behaviour::Connect, |note| {
        let (verdict, socket) = session::connect(&mut probe, note);
        connection = socket;
        verdict
    });
    match connection {
        Some(socket) => checks::on_connection(&mut probe, socket, &mut report, scratch),
        None => report.skip(&ON_CONNECTION, "not checked: no connection to the broker"),
    }
    report.record(Behaviour::ClosedPort, |note| {
        dial::closed_port(&mut probe, note)
    });
    report.record(Behaviour::ConnectTimeout, |note| {
        dial::black_hole(&mut probe, note)
    });
    report.record(Behaviour::CloseReopen, |note| {
        dial::close_reopen(&mut probe, note)
    });
    report.set_zero_read(probe.zero_read);
    report
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packets::{CONNECT, MAX_PACKET};
    use umqtt_simple::packet::Packet;
    use umqtt_transports::memory::{MemoryStack, VirtualClock, VirtualWait};

    /// The whole check on the in-memory stack and virtual time: a stack that
    /// answers but never closes a connection and accepts every connect.
    #[test]
    fn run_on_the_memory_stack_reports_each_behaviour() {
        let mut stack = MemoryStack::new();
        let wire = stack.clone();
        wire.answer(0x10, &[0x20, 0x02, 0x00, 0x00]);
        wire.answer(0xc0, &[0xd0, 0x00]);
        wire.answer(0xc0, &[0xd0, 0x00]);
        wire.limit_sends(Some(1000));
        let clock = VirtualClock::starting_at(1_000);
        let mut waiter = VirtualWait::new(&clock);
        let addr = "192.0.2.10:1883".parse().unwrap();
        let closed = "192.0.2.10:1884".parse().unwrap();
        let config = Config::new("memory", addr, closed).burst_bytes(10_000);
        let mut scratch = [0u8; 4096];
        let report = run(&mut stack, &clock, &mut waiter, &config, &mut scratch);
        let text = std::format!("{report}");
        std::println!("{text}");
        let expect = [
            (Behaviour::Connect, Verdict::Pass),
            (Behaviour::IdleReceive, Verdict::Pass),
            (Behaviour::WaiterSleeps, Verdict::Pass),
            (Behaviour::WaiterWakes, Verdict::Pass),
            (Behaviour::PartialSend, Verdict::Pass),
            (Behaviour::PeerClose, Verdict::Fail),
            (Behaviour::PeerReset, Verdict::Fail),
            (Behaviour::ClosedPort, Verdict::Fail),
            (Behaviour::ConnectTimeout, Verdict::Skipped),
            (Behaviour::CloseReopen, Verdict::Pass),
        ];
        for (behaviour, verdict) in expect {
            assert_eq!(report.verdict(behaviour), verdict, "{behaviour:?}\n{text}");
        }
        assert_eq!(report.zero_read(), ZeroRead::Unseen);
        assert!(text.contains("partial"), "{text}");
        assert!(
            text.contains("summary: 6 pass, 0 warn, 3 fail, 1 skipped"),
            "{text}"
        );
        // CONNECT, the burst and DISCONNECT all reached the wire in order.
        let sent = wire.sent();
        let mut connect = [0u8; MAX_PACKET];
        let n = CONNECT.encode(&mut connect).unwrap();
        assert!(sent.starts_with(&connect[..n]));
        assert!(sent.len() > 10_000);
        let mut disconnect = [0u8; 2];
        Packet::Disconnect.encode(&mut disconnect).unwrap();
        assert!(sent.windows(2).any(|w| w == disconnect));
    }

    /// Without a broker, everything on the connection is skipped, and says
    /// why.
    #[test]
    fn no_broker_skips_the_connection_checks() {
        let mut stack = MemoryStack::new();
        stack.clone().refuse_connects(u32::MAX);
        let clock = VirtualClock::starting_at(1_000);
        let mut waiter = VirtualWait::new(&clock);
        let addr = "192.0.2.10:1883".parse().unwrap();
        let closed = "192.0.2.10:1884".parse().unwrap();
        let config = Config::new("refusing", addr, closed);
        let mut scratch = [0u8; 256];
        let report = run(&mut stack, &clock, &mut waiter, &config, &mut scratch);
        assert_eq!(
            report.verdict(Behaviour::Connect),
            Verdict::Fail,
            "{report}"
        );
        for behaviour in ON_CONNECTION {
            let finding = report.finding(behaviour);
            assert_eq!(finding.verdict, Verdict::Skipped, "{report}");
            assert_eq!(
                finding.note.as_str(),
                "not checked: no connection to the broker"
            );
        }
    }
}
