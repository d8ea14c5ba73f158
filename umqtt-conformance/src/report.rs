//! The findings: [`Behaviour`], [`Verdict`], [`Finding`], [`ZeroRead`] and
//! the [`Report`] that prints them.

use core::fmt;

use crate::config::Config;
use crate::note::Note;

/// One behaviour the client relies on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// `connect` to the broker completes (at once, or after `WouldBlock`s)
    /// and data flows both ways (CONNECT, CONNACK).
    Connect,
    /// `receive` on an idle connection returns at once with `WouldBlock` or
    /// `Ok(0)`, never blocks and never fails; which of the two it is decides
    /// what `Ok(0)` may mean.
    IdleReceive,
    /// The waiter sleeps while the connection is idle instead of returning at
    /// once, and never overruns its timeout.
    WaiterSleeps,
    /// The waiter returns soon after data arrives (here a PINGRESP), not at
    /// the end of its timeout.
    WaiterWakes,
    /// `send` takes what fits and says how much; when its buffer is full it
    /// returns `WouldBlock` or `Ok(0)` (both retried until the send deadline)
    /// or blocks briefly, and every byte arrives in order.
    PartialSend,
    /// When the broker closes the connection, `receive` says so (an error, or
    /// `Ok(0)` on a stack where idle is `WouldBlock`).
    PeerClose,
    /// When the peer resets the connection, `send` (or `receive`) fails.
    PeerReset,
    /// `connect` to a port on which nothing listens fails, and soon.
    ClosedPort,
    /// `connect` to an address that never answers returns control: either
    /// `WouldBlock` (the client enforces its deadline) or an error soon.
    ConnectTimeout,
    /// `close` frees the socket: many connect/close cycles in a row work.
    CloseReopen,
}

impl Behaviour {
    /// Every behaviour, in the order the check runs them.
    pub const ALL: [Behaviour; 10] = [
        Behaviour::Connect,
        Behaviour::IdleReceive,
        Behaviour::WaiterSleeps,
        Behaviour::WaiterWakes,
        Behaviour::PartialSend,
        Behaviour::PeerClose,
        Behaviour::PeerReset,
        Behaviour::ClosedPort,
        Behaviour::ConnectTimeout,
        Behaviour::CloseReopen,
    ];

    /// A short name for the report.
    pub const fn name(self) -> &'static str {
        match self {
            Behaviour::Connect => "connect",
            Behaviour::IdleReceive => "idle receive",
            Behaviour::WaiterSleeps => "waiter sleeps",
            Behaviour::WaiterWakes => "waiter wakes",
            Behaviour::PartialSend => "partial send",
            Behaviour::PeerClose => "peer close (EOF)",
            Behaviour::PeerReset => "peer reset",
            Behaviour::ClosedPort => "closed port",
            Behaviour::ConnectTimeout => "connect timeout",
            Behaviour::CloseReopen => "close/reopen",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// How a stack did on one behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verdict {
    /// The stack does what the client relies on.
    Pass,
    /// The client works, at a cost the note explains (a busy CPU, a longer
    /// wait for an error, an option to set).
    Warn,
    /// The client misbehaves on this stack; the note says how.
    Fail,
    /// Not checked (no black-hole address, or no connection to check on).
    Skipped,
}

impl Verdict {
    /// The word printed in the report.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Warn => "WARN",
            Verdict::Fail => "FAIL",
            Verdict::Skipped => "SKIP",
        }
    }
}

/// The outcome for one behaviour.
#[derive(Debug, Clone, Copy)]
pub struct Finding {
    /// Which behaviour.
    pub behaviour: Behaviour,
    /// How the stack did.
    pub verdict: Verdict,
    /// What was seen.
    pub note: Note,
}

/// What `Ok(0)` from `receive` turned out to mean on the stack.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZeroRead {
    /// Never seen.
    Unseen,
    /// "No data yet": keep `Client::set_zero_read_is_eof(false)` (the default).
    NoData,
    /// End of file: set `Client::set_zero_read_is_eof(true)`.
    EndOfFile,
    /// Both: end of file cannot be told from "no data".
    Ambiguous,
}

/// The check's result: one [`Finding`] per [`Behaviour`].
#[derive(Debug, Clone)]
pub struct Report<'a> {
    config: Config<'a>,
    findings: [Finding; Behaviour::ALL.len()],
    zero_read: ZeroRead,
}

impl<'a> Report<'a> {
    pub(crate) fn new(config: &Config<'a>) -> Self {
        Report {
            config: *config,
            findings: Behaviour::ALL.map(|behaviour| Finding {
                behaviour,
                verdict: Verdict::Skipped,
                note: Note::new(),
            }),
            zero_read: ZeroRead::Unseen,
        }
    }

    /// Every finding, in the order of [`Behaviour::ALL`].
    pub fn findings(&self) -> &[Finding] {
        &self.findings
    }

    /// The finding for `behaviour`.
    pub fn finding(&self, behaviour: Behaviour) -> &Finding {
        // `findings` is indexed by `Behaviour::index` by construction.
        &self.findings[behaviour.index()]
    }

    /// The verdict for `behaviour`.
    pub fn verdict(&self, behaviour: Behaviour) -> Verdict {
        self.finding(behaviour).verdict
    }

    /// What `Ok(0)` from `receive` means on this stack.
    pub fn zero_read(&self) -> ZeroRead {
        self.zero_read
    }

    /// How many behaviours failed.
    pub fn failures(&self) -> usize {
        self.count(Verdict::Fail)
    }

    /// How many behaviours got `verdict`.
    pub fn count(&self, verdict: Verdict) -> usize {
        self.findings
            .iter()
            .filter(|f| f.verdict == verdict)
            .count()
    }

    pub(crate) fn set(&mut self, behaviour: Behaviour, verdict: Verdict, note: Note) {
        let finding = &mut self.findings[behaviour.index()];
        finding.verdict = verdict;
        finding.note = note;
    }

    /// The skeleton every check shares: `check` writes what it saw into a
    /// fresh note and returns the verdict, which is recorded for `behaviour`
    /// and returned.
    pub(crate) fn record(
        &mut self,
        behaviour: Behaviour,
        check: impl FnOnce(&mut Note) -> Verdict,
    ) -> Verdict {
        let mut note = Note::new();
        let verdict = check(&mut note);
        self.set(behaviour, verdict, note);
        verdict
    }

    /// Records `behaviours` as not checked, saying `why`.
    pub(crate) fn skip(&mut self, behaviours: &[Behaviour], why: &str) {
        for &behaviour in behaviours {
            self.record(behaviour, |note| {
                let _ = fmt::Write::write_str(note, why);
                Verdict::Skipped
            });
        }
    }

    pub(crate) fn set_zero_read(&mut self, zero_read: ZeroRead) {
        self.zero_read = zero_read;
    }
}

impl fmt::Display for Report<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let c = &self.config;
        writeln!(f, "stack conformance: {}", c.stack_name)?;
        write!(f, "  broker {}, closed port {}", c.broker, c.closed_port)?;
        if let Some(hole) = c.black_hole {
            write!(f, ", black hole {hole}")?;
        }
        writeln!(
            f,
            "; deadline {} ms, call budget {} ms",
            c.deadline_ms, c.call_budget_ms
        )?;
        for finding in &self.findings {
            writeln!(
                f,
                "{} {:<17} {}",
                finding.verdict.as_str(),
                finding.behaviour.name(),
                finding.note
            )?;
        }
        let advice = match self.zero_read {
            ZeroRead::Unseen | ZeroRead::NoData => {
                "Client::set_zero_read_is_eof(false) (the default)"
            }
            ZeroRead::EndOfFile => "Client::set_zero_read_is_eof(true)",
            ZeroRead::Ambiguous => {
                "neither value of Options::zero_read_is_eof is right: fix the stack"
            }
        };
        writeln!(f, "use: {advice}")?;
        write!(
            f,
            "summary: {} pass, {} warn, {} fail, {} skipped",
            self.count(Verdict::Pass),
            self.count(Verdict::Warn),
            self.count(Verdict::Fail),
            self.count(Verdict::Skipped)
        )
    }
}
