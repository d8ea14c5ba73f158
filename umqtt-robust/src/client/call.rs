//! One call of the reconnecting client: its deadline, the loop that runs the
//! inner client's operation across reconnects, and the error its deadline
//! gives.

use embedded_nal::TcpClientStack;
use umqtt_simple::{Client, Error, Waiting};
use umqtt_transports::{Clock, Wait};

use super::{RobustClient, RobustClientError};
use crate::error::RobustError;

/// What a call needs to say why its deadline passed.
#[derive(Debug, Clone, Copy)]
pub(super) struct Call {
    pub(super) deadline: u64,
    /// The broker's answer that completes the call.
    waits_for: Waiting,
    /// [`RobustClient::connections`] when it started.
    connections: u32,
}

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Starts a call that may take `timeout_ms` and is complete with the
    /// broker's `waits_for`: every wait of the inner client ends by its
    /// deadline (lifted again when the call ends).
    pub(super) fn begin_call(&mut self, timeout_ms: u32, waits_for: Waiting) -> Call {
        let deadline = self.now().saturating_add(u64::from(timeout_ms));
        self.inner.limit_waits(Some(deadline));
        self.call_reached = false;
        Call {
            deadline,
            waits_for,
            connections: self.connections,
        }
    }

    /// Runs `op` on a live connection, reconnecting and running it again
    /// after each lost connection, until the call's deadline.
    pub(super) fn with_connection<T>(
        &mut self,
        call: Call,
        mut op: impl FnMut(&mut Client<'a, S, C, W>) -> Result<T, Error<S::Error>>,
    ) -> Result<T, RobustClientError<S>> {
        let result = loop {
            if let Err(e) = self.ensure_connected(Some(call.deadline)) {
                break Err(self.call_failed(call, e));
            }
            self.call_reached = true;
            match op(&mut self.inner) {
                Ok(value) => {
                    self.note_progress();
                    break Ok(value);
                }
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// The error of a call whose deadline passed: [`RobustError::TimedOut`]
    /// when the broker was reached but the call did not complete in time,
    /// else `error` as it is ([`RobustError::Offline`]: never reached).
    pub(super) fn call_failed(
        &self,
        call: Call,
        error: RobustClientError<S>,
    ) -> RobustClientError<S> {
        match error {
            RobustError::Offline { .. } if self.call_reached => RobustError::TimedOut {
                waiting: call.waits_for,
                reconnects: self.connections.wrapping_sub(call.connections),
                unacked: None,
            },
            error => error,
        }
    }
}

/// Says which QoS 1 message a publish whose deadline passed leaves
/// unacknowledged (`sent_id`: the id it was sent with, if it was).
pub(super) fn unacked<E>(
    result: Result<(), RobustError<E>>,
    sent_id: Option<u16>,
) -> Result<(), RobustError<E>> {
    result.map_err(|e| match (e, sent_id) {
        (
            RobustError::TimedOut {
                waiting,
                reconnects,
                ..
            },
            Some(id),
        ) => RobustError::TimedOut {
            waiting,
            reconnects,
            unacked: Some(id),
        },
        (e, _) => e,
    })
}
