//! The reconnecting client's error type.

use core::fmt;

use umqtt_simple::{Error, ErrorKind, Waiting};

use crate::outbox::OutboxError;

/// What can go wrong in the reconnecting client, generic over the stack's error.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum RobustError<E> {
    /// The inner client's error that the client did not recover from: bad
    /// input, a refused subscription, a skipped oversize message, or a
    /// connection failure while no broker address is known yet.
    Client(Error<E>),
    /// The broker was unreachable for the whole deadline of this call (or,
    /// from `connect`, the connection it opened was lost while the outbox's
    /// messages went out); the client keeps trying on later calls.
    /// `retry_in_ms` is the time until the next attempt.
    Offline {
        /// Milliseconds until the next reconnect attempt.
        retry_in_ms: u32,
    },
    /// The call's deadline ([`RobustOptions::call_timeout_ms`]) passed while
    /// it waited for the broker's answer: the broker was reached (perhaps
    /// after reconnects) but did not answer in time. The connection was
    /// closed; later calls reconnect, paced by the backoff.
    ///
    /// [`RobustOptions::call_timeout_ms`]: crate::RobustOptions::call_timeout_ms
    TimedOut {
        /// What the call waited for last (an acknowledgement, or the CONNACK
        /// of a reconnect).
        waiting: Waiting,
        /// Connections the call opened on the way.
        reconnects: u32,
        /// The packet id of a QoS 1 message that was sent but never
        /// acknowledged: give it to `RobustClient::republish` to send the
        /// same message again (a new `publish` would be a new message).
        unacked: Option<u16>,
    },
    /// The configured number of reconnect attempts failed in a row; call
    /// `connect` to start again.
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// The subscription memory cannot hold another filter, so it could not
    /// be restored after a reconnect; nothing was sent.
    SubscriptionsFull {
        /// Bytes the filter needs.
        needed: usize,
        /// Bytes free.
        free: usize,
    },
    /// `connect` was never called (or `disconnect` was): there is no broker
    /// to reconnect to.
    NotStarted,
    /// The outbox refused the message (full, with [`WhenFull::Refuse`], or
    /// too large for it, or its storage failed); it was not taken.
    ///
    /// [`WhenFull::Refuse`]: crate::outbox::WhenFull::Refuse
    Outbox(OutboxError),
    /// A QoS 1 publish with a window (`set_window`) and no outbox to keep
    /// the messages in flight until their PUBACK: nothing was sent. Lend an
    /// outbox (`set_outbox`), or give the window its storage with
    /// `set_window_in_ram`.
    WindowWithoutOutbox,
}

impl<E> RobustError<E> {
    /// What kind of failure this is: the inner client's kind, else
    /// [`ErrorKind::Transport`] for a broker out of reach ([`RobustError::Offline`],
    /// [`RobustError::GaveUp`]), [`ErrorKind::Timeout`] for
    /// [`RobustError::TimedOut`], [`ErrorKind::Resource`] for
    /// [`RobustError::SubscriptionsFull`] and [`RobustError::Outbox`], and
    /// [`ErrorKind::Configuration`]
    /// for [`RobustError::NotStarted`].
    pub fn kind(&self) -> ErrorKind {
        match self {
            RobustError::Client(e) => e.kind(),
            RobustError::Offline { .. } | RobustError::GaveUp { .. } => ErrorKind::Transport,
            RobustError::TimedOut { .. } => ErrorKind::Timeout,
            RobustError::SubscriptionsFull { .. } | RobustError::Outbox(_) => ErrorKind::Resource,
            RobustError::NotStarted | RobustError::WindowWithoutOutbox => ErrorKind::Configuration,
        }
    }
}

impl<E> From<Error<E>> for RobustError<E> {
    fn from(e: Error<E>) -> Self {
        RobustError::Client(e)
    }
}

impl<E: fmt::Debug> fmt::Display for RobustError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RobustError::Client(e) => write!(f, "{e}"),
            RobustError::Offline { retry_in_ms } => {
                write!(
                    f,
                    "broker unreachable; next reconnect attempt in {retry_in_ms} ms"
                )
            }
            RobustError::TimedOut {
                waiting,
                reconnects,
                unacked,
            } => {
                write!(f, "gave up waiting for {waiting}")?;
                match reconnects {
                    0 => f.write_str(" (no reconnect)")?,
                    1 => f.write_str(" after 1 reconnect")?,
                    n => write!(f, " after {n} reconnects")?,
                }
                if let Some(id) = unacked {
                    write!(f, "; QoS 1 message {id} not acknowledged")?;
                }
                Ok(())
            }
            RobustError::GaveUp { attempts } => {
                write!(f, "gave up after {attempts} failed reconnect attempts")
            }
            RobustError::SubscriptionsFull { needed, free } => write!(
                f,
                "subscription memory full: the filter needs {needed} bytes, {free} are free"
            ),
            RobustError::NotStarted => f.write_str("not connected: call connect first"),
            RobustError::Outbox(e) => write!(f, "{e}"),
            RobustError::WindowWithoutOutbox => f.write_str(
                "a QoS 1 window needs storage for the messages in flight, to send them again \
                 after a reconnect: lend an outbox (set_outbox) or use set_window_in_ram",
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for RobustError<E> {}
