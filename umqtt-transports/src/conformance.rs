//! A conformance check for a porter's TCP stack: does it behave the way the
//! umqtt client relies on?
//!
//! embedded-nal's `TcpClientStack` leaves much unsaid: whether `receive` may
//! block, what `Ok(0)` means, how a closed or reset connection shows, whether
//! `connect` can hang. Stacks differ on every point, and the client works only
//! with some answers. [`run`] asks the stack, behaviour by behaviour, against a
//! real MQTT broker, and returns a [`Report`] that prints one line per
//! behaviour with a [`Verdict`] and what was seen.
//!
//! It needs what the client needs and nothing more: the stack, a [`Clock`], a
//! [`Wait`] (used exactly as the client uses it: `poll` before each `receive`
//! and after each packet handed to `send`, `wait_readable` when `receive` has
//! nothing, `idle(1)` when `connect` would block or `send` takes nothing), a
//! scratch buffer, and addresses: a broker, a port on which nothing listens,
//! and optionally an address that never answers. It is `no_std` and allocates
//! nothing, so it runs on the target itself; the report implements
//! [`core::fmt::Display`] for whatever console the target has.
//!
//! To provoke the behaviours it speaks a few MQTT packets, hand-encoded
//! (CONNECT, PINGREQ, a QoS 0 PUBLISH, DISCONNECT): the broker closes the
//! connection after DISCONNECT (end of file), and answers a write to that
//! closed connection with a reset. The check takes about
//! `idle_ms + 2 × deadline_ms` plus the burst, so a few seconds.
//!
//! ```
//! use embedded_nal::TcpClientStack;
//! use umqtt_transports::conformance::{self, Behaviour, Config};
//! use umqtt_transports::{Clock, Wait};
//!
//! /// Checks a stack against the broker at 192.0.2.10:1883, where port 1884
//! /// is closed, and prints the report.
//! fn check<S: TcpClientStack, C: Clock, W: Wait<S>>(stack: &mut S, clock: &C, waiter: &mut W) {
//!     let broker = "192.0.2.10:1883".parse().unwrap();
//!     let closed = "192.0.2.10:1884".parse().unwrap();
//!     let config = Config::new("my stack", broker, closed);
//!     let mut scratch = [0u8; 2048];
//!     let report = conformance::run(stack, clock, waiter, &config, &mut scratch);
//!     println!("{report}"); // or defmt, RTT, a UART: any `core::fmt::Write`
//!     if report.failures() > 0 {
//!         println!("see docs/PORTING.md for each failed behaviour");
//!     }
//!     let _ = report.verdict(Behaviour::PeerClose);
//! }
//! ```

use core::fmt::{self, Write as _};
use core::net::SocketAddr;

use embedded_nal::{TcpClientStack, TcpError};

use crate::{Clock, Wait};

/// What the check needs to know: where the broker is, and how long to wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config<'a> {
    /// The stack's name, printed at the top of the report.
    pub stack_name: &'a str,
    /// An MQTT 3.1.1 broker that accepts anonymous clients.
    pub broker: SocketAddr,
    /// An address on which nothing listens (the host answers with a reset).
    pub closed_port: SocketAddr,
    /// An address that never answers (packets to it are dropped), for the
    /// connect timeout; `None` skips that behaviour.
    pub black_hole: Option<SocketAddr>,
    /// How long each behaviour may take, in ms (default 2 000): also the
    /// connect deadline the check enforces, as the client would.
    pub deadline_ms: u32,
    /// How long one call may take before it counts as blocking, in ms
    /// (default 200).
    pub call_budget_ms: u32,
    /// How long the idle connection is watched, in ms (default 1 000).
    pub idle_ms: u32,
    /// How many payload bytes the burst sends in one PUBLISH (default
    /// 256 KiB); enough to fill the stack's send buffer.
    pub burst_bytes: usize,
}

impl<'a> Config<'a> {
    /// A configuration with the default timing and no black-hole address.
    pub const fn new(stack_name: &'a str, broker: SocketAddr, closed_port: SocketAddr) -> Self {
        Config {
            stack_name,
            broker,
            closed_port,
            black_hole: None,
            deadline_ms: 2_000,
            call_budget_ms: 200,
            idle_ms: 1_000,
            burst_bytes: 256 * 1024,
        }
    }

    /// Also checks the connect timeout against `addr`, which must never
    /// answer.
    pub const fn black_hole(mut self, addr: SocketAddr) -> Self {
        self.black_hole = Some(addr);
        self
    }

    /// Sets [`Config::deadline_ms`].
    pub const fn deadline_ms(mut self, ms: u32) -> Self {
        self.deadline_ms = ms;
        self
    }

    /// Sets [`Config::call_budget_ms`].
    pub const fn call_budget_ms(mut self, ms: u32) -> Self {
        self.call_budget_ms = ms;
        self
    }

    /// Sets [`Config::idle_ms`].
    pub const fn idle_ms(mut self, ms: u32) -> Self {
        self.idle_ms = ms;
        self
    }

    /// Sets [`Config::burst_bytes`].
    pub const fn burst_bytes(mut self, bytes: usize) -> Self {
        self.burst_bytes = bytes;
        self
    }
}

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

/// A short text kept inline (no heap); longer text is cut.
#[derive(Clone, Copy)]
pub struct Note {
    buf: [u8; Note::CAPACITY],
    len: usize,
}

impl Note {
    /// Bytes a note holds.
    pub const CAPACITY: usize = 320;

    const fn new() -> Self {
        Note {
            buf: [0; Note::CAPACITY],
            len: 0,
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        let bytes = self.buf.get(..self.len).unwrap_or_default();
        core::str::from_utf8(bytes).unwrap_or_default()
    }
}

impl fmt::Write for Note {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        let room = Note::CAPACITY - self.len;
        let mut take = s.len().min(room);
        while !s.is_char_boundary(take) {
            take -= 1;
        }
        if let (Some(dst), Some(src)) = (
            self.buf.get_mut(self.len..self.len + take),
            s.as_bytes().get(..take),
        ) {
            dst.copy_from_slice(src);
            self.len += take;
        }
        Ok(())
    }
}

impl fmt::Debug for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self.as_str(), f)
    }
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
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
    /// "No data yet": keep `Options::zero_read_is_eof(false)` (the default).
    NoData,
    /// End of file: set `Options::zero_read_is_eof(true)`.
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
    fn new(config: &Config<'a>) -> Self {
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

    fn set(&mut self, behaviour: Behaviour, verdict: Verdict, note: Note) {
        let finding = &mut self.findings[behaviour.index()];
        finding.verdict = verdict;
        finding.note = note;
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
            ZeroRead::Unseen | ZeroRead::NoData => "Options::zero_read_is_eof(false) (the default)",
            ZeroRead::EndOfFile => "Options::zero_read_is_eof(true)",
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

// The few MQTT 3.1.1 packets the check speaks, hand-encoded.
const PINGREQ: [u8; 2] = [0xc0, 0x00];
const PINGRESP: [u8; 2] = [0xd0, 0x00];
const DISCONNECT: [u8; 2] = [0xe0, 0x00];
const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];
const BURST_TOPIC: &[u8] = b"umqtt/conformance/burst";
const CLIENT_ID: &[u8] = b"umqtt-conformance";

/// CONNECT with a clean session, keepalive 60 s and the check's client id.
fn connect_packet() -> [u8; 12 + 2 + CLIENT_ID.len()] {
    let mut packet = [0u8; 12 + 2 + CLIENT_ID.len()];
    let head = [
        0x10,
        (10 + 2 + CLIENT_ID.len()) as u8,
        0x00,
        0x04,
        b'M',
        b'Q',
        b'T',
        b'T',
        0x04,
        0x02,
        0x00,
        60,
        0x00,
        CLIENT_ID.len() as u8,
    ];
    for (dst, src) in packet.iter_mut().zip(head.iter().chain(CLIENT_ID)) {
        *dst = *src;
    }
    packet
}

/// The fixed header, topic and nothing else of a QoS 0 PUBLISH carrying
/// `payload_len` bytes; returns the buffer and how much of it is used.
fn publish_header(payload_len: usize) -> ([u8; 5 + 2 + BURST_TOPIC.len()], usize) {
    let mut out = [0u8; 5 + 2 + BURST_TOPIC.len()];
    let mut remaining = 2 + BURST_TOPIC.len() + payload_len;
    let mut len = 1;
    out[0] = 0x30;
    loop {
        let mut byte = (remaining % 128) as u8;
        remaining /= 128;
        if remaining > 0 {
            byte |= 0x80;
        }
        out[len] = byte;
        len += 1;
        if remaining == 0 || len == 5 {
            break;
        }
    }
    out[len] = 0;
    out[len + 1] = BURST_TOPIC.len() as u8;
    len += 2;
    for (dst, src) in out[len..].iter_mut().zip(BURST_TOPIC) {
        *dst = *src;
    }
    (out, len + BURST_TOPIC.len())
}

/// The largest payload the check will announce: what four length bytes hold.
const MAX_REMAINING: usize = 268_435_455 - 2 - BURST_TOPIC.len();

/// How a series of `send` calls went.
#[derive(Debug, Default, Clone, Copy)]
struct SendStats {
    calls: u32,
    partial: u32,
    zero: u32,
    would_block: u32,
    longest_ms: u64,
}

/// How a series of `receive` calls (and waits between them) went.
#[derive(Debug, Default, Clone, Copy)]
struct RecvStats {
    calls: u32,
    zero: u32,
    would_block: u32,
    longest_ms: u64,
    waits: u32,
    longest_wait_ms: u64,
    /// The most a wait outlasted its timeout, in ms.
    overrun_ms: u64,
}

/// How a series of `connect` calls ended.
enum ConnectEnd<E> {
    Connected,
    Failed(E),
    /// Still `WouldBlock` when the deadline came.
    Pending,
}

#[derive(Debug, Default, Clone, Copy)]
struct ConnectStats {
    calls: u32,
    longest_ms: u64,
    elapsed_ms: u64,
}

/// Why a send or receive series stopped early.
enum Stop<E> {
    Error(E),
    Deadline,
    /// Bytes other than the expected ones arrived.
    Unexpected(u8),
}

impl<E: fmt::Debug> fmt::Display for Stop<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Error(e) => write!(f, "error {e:?}"),
            Stop::Deadline => f.write_str("deadline passed"),
            Stop::Unexpected(b) => write!(f, "unexpected byte 0x{b:02x}"),
        }
    }
}

struct Probe<'p, 'c, S: TcpClientStack, C: Clock, W: Wait<S>> {
    stack: &'p mut S,
    clock: &'p C,
    waiter: &'p mut W,
    config: &'p Config<'c>,
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Probe<'_, '_, S, C, W> {
    fn now(&self) -> u64 {
        self.clock.now_ms()
    }

    fn deadline(&self, ms: u32) -> u64 {
        self.now().saturating_add(u64::from(ms))
    }

    fn left(&self, deadline: u64) -> u32 {
        u32::try_from(deadline.saturating_sub(self.now())).unwrap_or(u32::MAX)
    }

    /// Connects as the client does: `idle(1)` after each `WouldBlock`.
    fn connect(
        &mut self,
        socket: &mut S::TcpSocket,
        addr: SocketAddr,
        deadline: u64,
    ) -> (ConnectEnd<S::Error>, ConnectStats) {
        let start = self.now();
        let mut stats = ConnectStats::default();
        let end = loop {
            let t0 = self.now();
            let result = self.stack.connect(socket, addr);
            stats.calls += 1;
            stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
            match result {
                Ok(()) => break ConnectEnd::Connected,
                Err(nb::Error::Other(e)) => break ConnectEnd::Failed(e),
                Err(nb::Error::WouldBlock) if self.now() < deadline => {
                    self.waiter.idle(self.stack, 1);
                }
                Err(nb::Error::WouldBlock) => break ConnectEnd::Pending,
            }
        };
        stats.elapsed_ms = self.now().saturating_sub(start);
        (end, stats)
    }

    /// Sends all of `bytes`, napping on `WouldBlock` and on `Ok(0)` (which is
    /// counted, not taken as fatal, so the check sees whether the stack
    /// recovers).
    fn send_all(
        &mut self,
        socket: &mut S::TcpSocket,
        bytes: &[u8],
        deadline: u64,
        stats: &mut SendStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut sent = 0;
        while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
            let t0 = self.now();
            let result = self.stack.send(socket, rest);
            stats.calls += 1;
            stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
            match result {
                Ok(n) if n > 0 => {
                    if n < rest.len() {
                        stats.partial += 1;
                    }
                    sent += n;
                    continue;
                }
                Ok(_) => stats.zero += 1,
                Err(nb::Error::WouldBlock) => stats.would_block += 1,
                Err(nb::Error::Other(e)) => return Err(Stop::Error(e)),
            }
            if self.now() >= deadline {
                return Err(Stop::Deadline);
            }
            self.waiter.idle(self.stack, 1);
        }
        Ok(())
    }

    /// Sends one whole packet as the client does: all of it, then
    /// `Wait::poll`, so that a stack that must be polled transmits it.
    fn send_packet(
        &mut self,
        socket: &mut S::TcpSocket,
        bytes: &[u8],
        deadline: u64,
        stats: &mut SendStats,
    ) -> Result<(), Stop<S::Error>> {
        self.send_all(socket, bytes, deadline, stats)?;
        self.waiter.poll(self.stack);
        Ok(())
    }

    /// Receives exactly `expected`, waiting as the client does.
    fn expect(
        &mut self,
        socket: &mut S::TcpSocket,
        expected: &[u8],
        deadline: u64,
        stats: &mut RecvStats,
    ) -> Result<(), Stop<S::Error>> {
        let mut got = 0;
        let mut byte = [0u8; 1];
        while let Some(&want) = expected.get(got) {
            match self.receive_once(socket, &mut byte, stats) {
                Ok(1) if byte[0] == want => got += 1,
                Ok(1) => return Err(Stop::Unexpected(byte[0])),
                Ok(_) | Err(nb::Error::WouldBlock) => {
                    if self.now() >= deadline {
                        return Err(Stop::Deadline);
                    }
                    let left = self.left(deadline);
                    self.wait(socket, left, stats);
                }
                Err(nb::Error::Other(e)) => return Err(Stop::Error(e)),
            }
        }
        Ok(())
    }

    fn receive_once(
        &mut self,
        socket: &mut S::TcpSocket,
        buf: &mut [u8],
        stats: &mut RecvStats,
    ) -> nb::Result<usize, S::Error> {
        // As the client does before each `receive`.
        self.waiter.poll(self.stack);
        let t0 = self.now();
        let result = self.stack.receive(socket, buf);
        stats.calls += 1;
        stats.longest_ms = stats.longest_ms.max(self.now().saturating_sub(t0));
        match &result {
            Ok(0) => stats.zero += 1,
            Err(nb::Error::WouldBlock) => stats.would_block += 1,
            _ => {}
        }
        result
    }

    fn wait(&mut self, socket: &mut S::TcpSocket, timeout_ms: u32, stats: &mut RecvStats) {
        let t0 = self.now();
        self.waiter.wait_readable(self.stack, socket, timeout_ms);
        let took = self.now().saturating_sub(t0);
        stats.waits += 1;
        stats.longest_wait_ms = stats.longest_wait_ms.max(took);
        stats.overrun_ms = stats
            .overrun_ms
            .max(took.saturating_sub(u64::from(timeout_ms)));
    }

    fn close(&mut self, socket: S::TcpSocket, note: &mut Note) {
        if let Err(e) = self.stack.close(socket) {
            let _ = write!(note, "; close failed: {e:?}");
        }
    }
}

/// Runs every check against `stack` and returns the report.
///
/// `waiter` is used as the client uses it; `scratch` holds the burst's
/// chunks and received bytes (a few KiB is plenty; at least 64 bytes).
/// Nothing is left open afterwards. See the [module docs](self).
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
    let mut probe = Probe {
        stack,
        clock,
        waiter,
        config,
    };
    if let Some(mut socket) = check_connect(&mut probe, &mut report) {
        let ok = check_idle(&mut probe, &mut socket, &mut report, scratch)
            && check_wakes(&mut probe, &mut socket, &mut report)
            && check_burst(&mut probe, &mut socket, &mut report, scratch);
        if ok {
            check_peer_close(&mut probe, &mut socket, &mut report, scratch);
            check_peer_reset(&mut probe, &mut socket, &mut report, scratch);
        } else {
            for behaviour in [Behaviour::PeerClose, Behaviour::PeerReset] {
                let mut note = Note::new();
                let _ = note.write_str("not checked: an earlier check lost the connection");
                report.set(behaviour, Verdict::Skipped, note);
            }
        }
        let mut note = report.finding(Behaviour::PeerReset).note;
        probe.close(socket, &mut note);
        let verdict = report.verdict(Behaviour::PeerReset);
        report.set(Behaviour::PeerReset, verdict, note);
    } else {
        for behaviour in [
            Behaviour::IdleReceive,
            Behaviour::WaiterSleeps,
            Behaviour::WaiterWakes,
            Behaviour::PartialSend,
            Behaviour::PeerClose,
            Behaviour::PeerReset,
        ] {
            let mut note = Note::new();
            let _ = note.write_str("not checked: no connection to the broker");
            report.set(behaviour, Verdict::Skipped, note);
        }
    }
    check_closed_port(&mut probe, &mut report);
    check_black_hole(&mut probe, &mut report);
    check_close_reopen(&mut probe, &mut report);
    report
}

/// Connects to the broker and exchanges CONNECT/CONNACK.
fn check_connect<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    report: &mut Report<'_>,
) -> Option<S::TcpSocket> {
    let mut note = Note::new();
    let mut socket = match p.stack.socket() {
        Ok(socket) => socket,
        Err(e) => {
            let _ = write!(note, "socket() failed: {e:?}");
            report.set(Behaviour::Connect, Verdict::Fail, note);
            return None;
        }
    };
    let deadline = p.deadline(p.config.deadline_ms);
    let (end, stats) = p.connect(&mut socket, p.config.broker, deadline);
    let connected = match end {
        ConnectEnd::Connected => true,
        ConnectEnd::Failed(e) => {
            let _ = write!(note, "connect to {} failed: {e:?}", p.config.broker);
            false
        }
        ConnectEnd::Pending => {
            let _ = write!(
                note,
                "connect to {} still WouldBlock after {} ms",
                p.config.broker, stats.elapsed_ms
            );
            false
        }
    };
    if !connected {
        p.close(socket, &mut note);
        report.set(Behaviour::Connect, Verdict::Fail, note);
        return None;
    }
    let _ = write!(
        note,
        "connected in {} ms ({} call{}",
        stats.elapsed_ms,
        stats.calls,
        if stats.calls == 1 { "" } else { "s" }
    );
    if stats.calls > 1 {
        let _ = write!(note, ", WouldBlock until then");
    }
    let _ = write!(note, ", longest {} ms)", stats.longest_ms);
    let t0 = p.now();
    let mut sent = SendStats::default();
    let mut received = RecvStats::default();
    let handshake = p
        .send_packet(&mut socket, &connect_packet(), deadline, &mut sent)
        .and_then(|()| p.expect(&mut socket, &CONNACK_ACCEPTED, deadline, &mut received));
    match handshake {
        Ok(()) => {
            let _ = write!(
                note,
                "; CONNECT/CONNACK in {} ms",
                p.now().saturating_sub(t0)
            );
            let verdict = if stats.longest_ms > u64::from(p.config.call_budget_ms) {
                let _ = write!(note, "; connect blocks");
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            report.set(Behaviour::Connect, verdict, note);
            Some(socket)
        }
        Err(stop) => {
            let _ = write!(note, "; CONNECT/CONNACK failed: {stop}");
            p.close(socket, &mut note);
            report.set(Behaviour::Connect, Verdict::Fail, note);
            None
        }
    }
}

/// Watches the idle connection: what `receive` returns and how the waiter
/// spends the time.
fn check_idle<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    report: &mut Report<'_>,
    scratch: &mut [u8],
) -> bool {
    let mut note = Note::new();
    let mut stats = RecvStats::default();
    let start = p.now();
    let until = p.deadline(p.config.idle_ms);
    let mut trouble = None;
    loop {
        match p.receive_once(socket, scratch, &mut stats) {
            Ok(0) | Err(nb::Error::WouldBlock) => {}
            Ok(n) => {
                trouble = Some(n);
                let _ = write!(note, "{n} unexpected bytes arrived; ");
                break;
            }
            Err(nb::Error::Other(e)) => {
                let _ = write!(note, "receive failed on an idle connection: {e:?}");
                report.set(Behaviour::IdleReceive, Verdict::Fail, note);
                return false;
            }
        }
        if p.now() >= until {
            break;
        }
        let left = p.left(until);
        p.wait(socket, left, &mut stats);
    }
    let elapsed = p.now().saturating_sub(start).max(1);
    let budget = u64::from(p.config.call_budget_ms);
    let what = match (stats.zero, stats.would_block) {
        (0, _) => {
            report.zero_read = ZeroRead::Unseen;
            "WouldBlock (never Ok(0)): Ok(0) is free to mean end of file"
        }
        (_, 0) => {
            report.zero_read = ZeroRead::NoData;
            "Ok(0) (never WouldBlock): Ok(0) means \"no data\", keep zero_read_is_eof(false)"
        }
        _ => {
            report.zero_read = ZeroRead::NoData;
            "sometimes Ok(0), sometimes WouldBlock: Ok(0) means \"no data\", keep zero_read_is_eof(false)"
        }
    };
    let _ = write!(
        note,
        "{what}; {} calls in {elapsed} ms, longest {} ms",
        stats.calls, stats.longest_ms
    );
    let verdict = if stats.longest_ms > budget {
        let _ = write!(note, ": receive blocks, and check_msg with it");
        Verdict::Fail
    } else if trouble.is_some() {
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    report.set(Behaviour::IdleReceive, verdict, note);

    let mut note = Note::new();
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
    let verdict = if stats.overrun_ms > budget {
        let _ = write!(note, ": the waiter sleeps past the client's deadlines");
        Verdict::Fail
    } else if rate > 1000 {
        let _ = write!(note, ": it spins (correct, but the CPU stays busy)");
        Verdict::Warn
    } else {
        Verdict::Pass
    };
    report.set(Behaviour::WaiterSleeps, verdict, note);
    true
}

/// PINGREQ, then how soon the waiter hands over the PINGRESP.
fn check_wakes<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    report: &mut Report<'_>,
) -> bool {
    let mut note = Note::new();
    let deadline = p.deadline(p.config.deadline_ms);
    let t0 = p.now();
    let mut sent = SendStats::default();
    let mut stats = RecvStats::default();
    let result = p
        .send_packet(socket, &PINGREQ, deadline, &mut sent)
        .and_then(|()| p.expect(socket, &PINGRESP, deadline, &mut stats));
    let took = p.now().saturating_sub(t0);
    match result {
        Ok(()) => {
            let _ = write!(
                note,
                "PINGRESP {took} ms after PINGREQ ({} wait(s), each given up to {} ms)",
                stats.waits, p.config.deadline_ms
            );
            let verdict = if took > u64::from(p.config.deadline_ms) / 4 {
                let _ = write!(note, ": the waiter sleeps through arriving data");
                Verdict::Warn
            } else {
                Verdict::Pass
            };
            report.set(Behaviour::WaiterWakes, verdict, note);
            true
        }
        Err(stop) => {
            let _ = write!(note, "no PINGRESP: {stop} after {took} ms");
            report.set(Behaviour::WaiterWakes, Verdict::Fail, note);
            false
        }
    }
}

/// One large PUBLISH, sent in chunks from `scratch` as fast as the stack takes
/// them; then a PINGREQ proves the broker parsed every byte.
fn check_burst<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    report: &mut Report<'_>,
    scratch: &mut [u8],
) -> bool {
    let mut note = Note::new();
    let total = p.config.burst_bytes.min(MAX_REMAINING);
    scratch.fill(b'u');
    // Generous: the burst may be large and the link slow.
    let deadline = p.deadline(p.config.deadline_ms.saturating_mul(5));
    let t0 = p.now();
    let mut stats = SendStats::default();
    let (header, header_len) = publish_header(total);
    let mut result = p.send_all(
        socket,
        header.get(..header_len).unwrap_or_default(),
        deadline,
        &mut stats,
    );
    let mut left = total;
    while result.is_ok() && left > 0 && !scratch.is_empty() {
        let chunk = left.min(scratch.len());
        let bytes = scratch.get(..chunk).unwrap_or_default();
        result = p.send_all(socket, bytes, deadline, &mut stats);
        left -= chunk;
    }
    if result.is_ok() {
        // The whole PUBLISH is handed over: the client polls once here.
        p.waiter.poll(p.stack);
    }
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
        report.set(Behaviour::PartialSend, Verdict::Fail, note);
        return false;
    }
    let mut sent = SendStats::default();
    let mut received = RecvStats::default();
    let deadline = p.deadline(p.config.deadline_ms);
    let alive = p
        .send_packet(socket, &PINGREQ, deadline, &mut sent)
        .and_then(|()| p.expect(socket, &PINGRESP, deadline, &mut received));
    let verdict = match alive {
        Err(stop) => {
            let _ = write!(
                note,
                "; the broker did not answer afterwards ({stop}): bytes lost or reordered"
            );
            report.set(Behaviour::PartialSend, Verdict::Fail, note);
            return false;
        }
        Ok(()) if stats.zero > 0 => {
            let _ = write!(
                note,
                "; Ok(0) means \"buffer full\" here: umqtt-simple waits and retries it like WouldBlock, until the send deadline"
            );
            Verdict::Pass
        }
        Ok(()) if stats.longest_ms > u64::from(p.config.call_budget_ms) => {
            let _ = write!(note, "; send blocks when its buffer is full");
            Verdict::Warn
        }
        Ok(()) => Verdict::Pass,
    };
    let _ = write!(note, "; broker parsed it all");
    if stats.partial == 0 && stats.would_block == 0 && stats.zero == 0 {
        let _ = write!(note, " (no back-pressure seen)");
    }
    report.set(Behaviour::PartialSend, verdict, note);
    true
}

/// DISCONNECT: the broker closes; how does `receive` say so?
fn check_peer_close<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    report: &mut Report<'_>,
    scratch: &mut [u8],
) {
    let mut note = Note::new();
    let deadline = p.deadline(p.config.deadline_ms);
    let mut sent = SendStats::default();
    if let Err(stop) = p.send_packet(socket, &DISCONNECT, deadline, &mut sent) {
        let _ = write!(note, "DISCONNECT not sent: {stop}");
        report.set(Behaviour::PeerClose, Verdict::Fail, note);
        return;
    }
    let t0 = p.now();
    let idle_zero = report.zero_read == ZeroRead::NoData;
    let mut stats = RecvStats::default();
    let verdict = loop {
        match p.receive_once(socket, scratch, &mut stats) {
            Err(nb::Error::Other(e)) => {
                let _ = write!(
                    note,
                    "reported as an error after {} ms: {e:?} (kind {:?})",
                    p.now().saturating_sub(t0),
                    e.kind()
                );
                break Verdict::Pass;
            }
            Ok(0) if !idle_zero && scratch.is_empty() => {}
            Ok(0) if !idle_zero => {
                let _ = write!(
                    note,
                    "reported as Ok(0) after {} ms (idle is WouldBlock): set Options::zero_read_is_eof(true)",
                    p.now().saturating_sub(t0)
                );
                report.zero_read = ZeroRead::EndOfFile;
                break Verdict::Warn;
            }
            Ok(0) | Err(nb::Error::WouldBlock) => {}
            Ok(n) => {
                let _ = write!(note, "{n} unexpected bytes; ");
            }
        }
        if p.now() >= deadline {
            if idle_zero {
                report.zero_read = ZeroRead::Ambiguous;
                let _ = write!(
                    note,
                    "not reported within {} ms: receive keeps returning Ok(0), as when idle; the client notices only by keepalive",
                    p.config.deadline_ms
                );
            } else {
                let _ = write!(
                    note,
                    "not reported within {} ms: receive keeps returning WouldBlock; the client notices only by keepalive",
                    p.config.deadline_ms
                );
            }
            break Verdict::Fail;
        }
        let left = p.left(deadline);
        p.wait(socket, left, &mut stats);
    };
    report.set(Behaviour::PeerClose, verdict, note);
}

/// Writes to the connection the broker closed: its host answers with a
/// reset, which must surface as an error.
fn check_peer_reset<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    socket: &mut S::TcpSocket,
    report: &mut Report<'_>,
    scratch: &mut [u8],
) {
    let mut note = Note::new();
    let deadline = p.deadline(p.config.deadline_ms);
    let t0 = p.now();
    let mut accepted = 0u32;
    let verdict = loop {
        match p.stack.send(socket, &PINGREQ) {
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
    report.set(Behaviour::PeerReset, verdict, note);
}

/// Connects to a port on which nothing listens.
fn check_closed_port<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    report: &mut Report<'_>,
) {
    let mut note = Note::new();
    let addr = p.config.closed_port;
    let verdict = match p.stack.socket() {
        Err(e) => {
            let _ = write!(note, "socket() failed: {e:?}");
            Verdict::Fail
        }
        Ok(mut socket) => {
            let deadline = p.deadline(p.config.deadline_ms);
            let (end, stats) = p.connect(&mut socket, addr, deadline);
            let verdict = match end {
                ConnectEnd::Failed(e) => {
                    let _ = write!(
                        note,
                        "refused after {} ms ({} call(s), longest {} ms): {e:?}",
                        stats.elapsed_ms, stats.calls, stats.longest_ms
                    );
                    if stats.longest_ms > u64::from(p.config.call_budget_ms) {
                        Verdict::Warn
                    } else {
                        Verdict::Pass
                    }
                }
                ConnectEnd::Pending => {
                    let _ = write!(
                        note,
                        "no error: WouldBlock for the whole {} ms ({} calls, longest {} ms); the client waits out its connect timeout, then reports Timeout(Connect)",
                        p.config.deadline_ms, stats.calls, stats.longest_ms
                    );
                    if stats.longest_ms > u64::from(p.config.call_budget_ms) {
                        Verdict::Fail
                    } else {
                        Verdict::Warn
                    }
                }
                ConnectEnd::Connected => {
                    let _ = write!(note, "connected: something listens on {addr}");
                    Verdict::Fail
                }
            };
            p.close(socket, &mut note);
            verdict
        }
    };
    report.set(Behaviour::ClosedPort, verdict, note);
}

/// Connects to an address that never answers.
fn check_black_hole<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    report: &mut Report<'_>,
) {
    let mut note = Note::new();
    let Some(addr) = p.config.black_hole else {
        let _ = note.write_str("not checked: no black-hole address given");
        report.set(Behaviour::ConnectTimeout, Verdict::Skipped, note);
        return;
    };
    let deadline_ms = u64::from(p.config.deadline_ms);
    let budget = u64::from(p.config.call_budget_ms);
    let verdict = match p.stack.socket() {
        Err(e) => {
            let _ = write!(note, "socket() failed: {e:?}");
            Verdict::Fail
        }
        Ok(mut socket) => {
            let deadline = p.deadline(p.config.deadline_ms);
            let (end, stats) = p.connect(&mut socket, addr, deadline);
            let verdict = match end {
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
            };
            p.close(socket, &mut note);
            verdict
        }
    };
    report.set(Behaviour::ConnectTimeout, verdict, note);
}

/// Connect/close cycles: more than a small stack has sockets.
fn check_close_reopen<S: TcpClientStack, C: Clock, W: Wait<S>>(
    p: &mut Probe<'_, '_, S, C, W>,
    report: &mut Report<'_>,
) {
    const CYCLES: u32 = 20;
    let mut note = Note::new();
    let t0 = p.now();
    for cycle in 1..=CYCLES {
        let mut socket = match p.stack.socket() {
            Ok(socket) => socket,
            Err(e) => {
                let _ = write!(
                    note,
                    "socket() failed in cycle {cycle}: {e:?}: close leaks sockets"
                );
                report.set(Behaviour::CloseReopen, Verdict::Fail, note);
                return;
            }
        };
        let deadline = p.deadline(p.config.deadline_ms);
        let (end, _) = p.connect(&mut socket, p.config.broker, deadline);
        let failure = match end {
            ConnectEnd::Connected => None,
            ConnectEnd::Failed(e) => {
                let _ = write!(note, "connect failed in cycle {cycle}: {e:?}");
                Some(())
            }
            ConnectEnd::Pending => {
                let _ = write!(note, "connect still WouldBlock in cycle {cycle}");
                Some(())
            }
        };
        if let Err(e) = p.stack.close(socket) {
            let _ = write!(note, "close failed in cycle {cycle}: {e:?}");
            report.set(Behaviour::CloseReopen, Verdict::Fail, note);
            return;
        }
        if failure.is_some() {
            report.set(Behaviour::CloseReopen, Verdict::Fail, note);
            return;
        }
    }
    let _ = write!(
        note,
        "{CYCLES} socket/connect/close cycles in {} ms",
        p.now().saturating_sub(t0)
    );
    report.set(Behaviour::CloseReopen, Verdict::Pass, note);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn connect_packet_is_well_formed() {
        let packet = connect_packet();
        assert_eq!(packet[0], 0x10);
        assert_eq!(usize::from(packet[1]), packet.len() - 2);
        assert_eq!(&packet[2..8], b"\x00\x04MQTT");
        assert_eq!(&packet[14..], CLIENT_ID);
    }

    #[test]
    fn publish_header_encodes_the_remaining_length() {
        let (header, len) = publish_header(256 * 1024);
        let remaining = 2 + BURST_TOPIC.len() + 256 * 1024;
        // 262 169 needs three length bytes.
        assert_eq!(header[0], 0x30);
        let decoded = usize::from(header[1] & 0x7f)
            + (usize::from(header[2] & 0x7f) << 7)
            + (usize::from(header[3]) << 14);
        assert_eq!(decoded, remaining);
        assert_eq!(header[3] & 0x80, 0);
        assert_eq!(&header[6..len], BURST_TOPIC);
        let (small, len) = publish_header(0);
        assert_eq!(small[1], (2 + BURST_TOPIC.len()) as u8);
        assert_eq!(len, 2 + 2 + BURST_TOPIC.len());
    }

    /// The whole check on the in-memory stack and virtual time: a stack that
    /// answers but never closes a connection and accepts every connect.
    #[cfg(feature = "std")]
    #[test]
    fn run_on_the_memory_stack_reports_each_behaviour() {
        use crate::memory::{MemoryStack, VirtualClock, VirtualWait};

        let mut stack = MemoryStack::new();
        let wire = stack.clone();
        wire.answer(0x10, &CONNACK_ACCEPTED);
        wire.answer(0xc0, &PINGRESP);
        wire.answer(0xc0, &PINGRESP);
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
        assert!(sent.starts_with(&connect_packet()));
        assert!(sent.len() > 10_000);
        assert!(sent.windows(2).any(|w| w == DISCONNECT));
    }

    #[test]
    fn note_truncates_at_a_char_boundary() {
        let mut note = Note::new();
        for _ in 0..Note::CAPACITY {
            let _ = note.write_str("é");
        }
        assert!(note.as_str().len() <= Note::CAPACITY);
        assert!(note.as_str().chars().all(|c| c == 'é'));
    }
}
