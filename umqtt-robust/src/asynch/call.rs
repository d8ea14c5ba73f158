//! One call of the async reconnecting client: its deadline, and the loop
//! that runs the inner client's operation across reconnects.

use embedded_nal_async::TcpConnect;
use umqtt_simple::Timer;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Error, Waiting};

use super::{AsyncRobustError, RobustClient};
use crate::policy::Call;

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
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
    pub(super) async fn with_connection<V>(
        &mut self,
        call: Call,
        mut op: impl AsyncFnMut(&mut Client<'a, N, T>) -> Result<V, Error<N::Error>>,
    ) -> Result<V, AsyncRobustError<N>> {
        let result = loop {
            if let Err(e) = self.ensure_connected(Some(call.deadline)).await {
                break Err(self.policy.call_failed(call, e));
            }
            self.policy.reached();
            match op(&mut self.inner).await {
                Ok(value) => {
                    self.note_progress();
                    self.keep_outbox_moving().await;
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
