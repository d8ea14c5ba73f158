//! [`Config`]: what the check needs to know about the broker and its timing.

use core::net::SocketAddr;

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
