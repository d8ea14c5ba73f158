//! How the reconnecting client behaves beyond the inner client's options.

use crate::backoff::Backoff;

/// How the reconnecting client behaves beyond the inner client's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RobustOptions {
    /// Waits between reconnect attempts.
    pub backoff: Backoff,
    /// The longest one call may take, reconnects and resends included, in
    /// ms: `connect`, `publish`, `republish`, `subscribe`, `unsubscribe`,
    /// `ping` and `flush` end by then with [`RobustError::TimedOut`](crate::RobustError::TimedOut) (the
    /// broker was reached but did not answer) or [`RobustError::Offline`](crate::RobustError::Offline)
    /// (it could not be reached). `wait_msg` and `wait_msg_for` spend at
    /// most this long reconnecting, counted from the call's start or the
    /// loss of the connection, whichever is later (`wait_msg_for`'s own
    /// timeout bounds it too). `check_msg` never waits.
    pub call_timeout_ms: u32,
}

/// The default [`RobustOptions::call_timeout_ms`]: 30 s.
pub const DEFAULT_CALL_TIMEOUT_MS: u32 = 30_000;

impl Default for RobustOptions {
    /// Default backoff, and 30 s per call.
    fn default() -> Self {
        RobustOptions {
            backoff: Backoff::default(),
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
        }
    }
}
