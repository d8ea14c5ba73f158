//! One call of the reconnecting client: its deadline, and the loop that
//! runs the inner client's operation across reconnects.

use embedded_nal::TcpClientStack;
use umqtt_simple::{Client, Error, Waiting};
use umqtt_simple::{Clock, Wait};

use super::{RobustClient, RobustClientError};
use crate::policy::Call;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Starts a call that may take the call timeout and is complete with
    /// the broker's `waits_for`.
    pub(super) fn begin_call(&mut self, waits_for: Waiting) -> Call {
        self.begin_call_for(self.policy.options.call_timeout_ms, waits_for)
    }

    /// Starts a call that may take `timeout_ms`: every wait of the inner
    /// client ends by its deadline (lifted again when the call ends).
    pub(super) fn begin_call_for(&mut self, timeout_ms: u32, waits_for: Waiting) -> Call {
        let call = self.policy.begin_call(self.now(), timeout_ms, waits_for);
        self.inner.limit_waits(Some(call.deadline));
        call
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
                break Err(self.policy.call_failed(call, e));
            }
            self.policy.reached();
            match op(&mut self.inner) {
                Ok(value) => {
                    self.note_progress();
                    self.keep_outbox_moving();
                    break Ok(value);
                }
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }
}
