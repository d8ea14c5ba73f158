//! Reconnecting, async: waiting out the backoff on the timer, making one
//! attempt, restoring what the broker forgot. The decisions are the shared
//! policy's (`crate::policy`).

use core::net::SocketAddr;

use embedded_nal_async::TcpConnect;
use umqtt_simple::Error;
use umqtt_simple::Timer;

use super::{AsyncRobustError, RobustClient};
use crate::Event;
use crate::error::RobustError;
use crate::policy::Due;

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
    pub(super) fn now(&self) -> u64 {
        self.inner.timer().now_ms()
    }

    /// Notes a lost connection (see `crate::policy::Policy::lost`).
    pub(super) fn lost(&mut self, error: &Error<N::Error>) {
        self.outbox_lost();
        let (now, dropped, packets) = (
            self.now(),
            self.inner.dropped_messages(),
            self.inner.packets_received(),
        );
        self.policy.lost(error, now, dropped, packets);
    }

    /// Once the connection has shown it works, the failed attempts before
    /// it are forgotten.
    pub(super) fn note_progress(&mut self) {
        self.policy.progress(self.inner.packets_received());
    }

    /// Makes sure a connection is up, attempting reconnects as the backoff
    /// allows until `deadline` (`None`: make at most the one attempt that is
    /// due now, never wait).
    pub(super) async fn ensure_connected(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<(), AsyncRobustError<N>> {
        loop {
            if self.inner.is_connected() {
                return Ok(());
            }
            let Some(broker) = self.broker else {
                return Err(RobustError::NotStarted);
            };
            self.policy.may_attempt()?;
            while let Due::SleepUntil(until) = self.policy.due(self.now(), deadline)? {
                let left = until.saturating_sub(self.now());
                self.inner
                    .pause(u32::try_from(left).unwrap_or(u32::MAX))
                    .await;
            }
            self.policy.attempting(&broker);
            match self.open_session(broker, true).await {
                // What the last connection left unacknowledged goes first.
                Ok(_) => self.pump().await?,
                Err(e) => {
                    let now = self.now();
                    self.policy.attempt_error(&e, now)?;
                }
            }
            if deadline.is_none() && !self.inner.is_connected() {
                return Err(self.policy.offline(self.now()));
            }
        }
    }

    /// Connects and, when the broker kept no session, subscribes again to
    /// every remembered filter; returns "session present".
    pub(super) async fn open_session(
        &mut self,
        broker: SocketAddr,
        reconnect: bool,
    ) -> Result<bool, Error<N::Error>> {
        let session_present = self.inner.connect(broker).await?;
        self.policy.connected(session_present, reconnect);
        if !session_present {
            self.resubscribe().await?;
        }
        self.policy.restored(self.inner.packets_received());
        Ok(session_present)
    }

    /// Subscribes again to every remembered filter. A refused filter is
    /// logged and skipped; a lost connection ends it with the error.
    async fn resubscribe(&mut self) -> Result<(), Error<N::Error>> {
        let mut count = 0;
        for (filter, qos) in self.subscriptions.iter() {
            match self.inner.subscribe(filter, qos).await {
                Ok(_) => count += 1,
                Err(e) if e.is_connection_lost() => {
                    log::warn!("connection lost while resubscribing: {e:?}");
                    self.policy.emit(Event::Lost);
                    return Err(e);
                }
                Err(e) => log::warn!("resubscribing to {filter:?} failed: {e:?}"),
            }
        }
        self.policy.resubscribed(count);
        Ok(())
    }
}
