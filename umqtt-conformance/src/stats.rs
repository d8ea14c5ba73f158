//! What a series of stack calls did: counts and timings the checks judge
//! by, and why a series stopped.

use core::fmt;

use crate::packets::CodecError;

/// How a series of `send` calls went.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SendStats {
    pub(crate) calls: u32,
    pub(crate) partial: u32,
    pub(crate) zero: u32,
    pub(crate) would_block: u32,
    pub(crate) longest_ms: u64,
}

/// How a series of `receive` calls (and waits between them) went.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct RecvStats {
    pub(crate) calls: u32,
    pub(crate) zero: u32,
    pub(crate) would_block: u32,
    pub(crate) longest_ms: u64,
    pub(crate) waits: u32,
    pub(crate) longest_wait_ms: u64,
    /// The most a wait outlasted its timeout, in ms.
    pub(crate) overrun_ms: u64,
}

/// How a series of `connect` calls ended.
pub(crate) enum ConnectEnd<E> {
    Connected,
    Failed(E),
    /// Still `WouldBlock` when the deadline came.
    Pending,
}

/// How long a series of `connect` calls took.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct ConnectStats {
    pub(crate) calls: u32,
    pub(crate) longest_ms: u64,
    pub(crate) elapsed_ms: u64,
}

/// Why a send or receive series stopped early.
pub(crate) enum Stop<E> {
    Error(E),
    Deadline,
    /// The codec refused a packet, or the reply was not the one expected.
    Codec(CodecError),
}

impl<E: fmt::Debug> fmt::Display for Stop<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stop::Error(e) => write!(f, "error {e:?}"),
            Stop::Deadline => f.write_str("deadline passed"),
            Stop::Codec(e) => fmt::Display::fmt(e, f),
        }
    }
}
