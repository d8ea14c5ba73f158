//! Reconnecting: waiting out the backoff, making one attempt, restoring
//! what the broker forgot. What counts as lost or failed, and when the
//! next attempt is due, is the shared policy's (`crate::policy`).

use embedded_nal::TcpClientStack;
use umqtt_simple::Error;
use umqtt_simple::{Clock, Wait};

use super::{Broker, RobustClient, RobustClientError};
use crate::Event;
use crate::error::RobustError;
use crate::policy::Due;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    pub(super) fn now(&self) -> u64 {
        self.inner.clock().now_ms()
    }

    /// Notes a lost connection (see [`crate::policy::Policy::lost`]).
    pub(super) fn lost(&mut self, error: &Error<S::Error>) {
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
    pub(super) fn ensure_connected(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<(), RobustClientError<S>> {
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
                self.inner.pause(u32::try_from(left).unwrap_or(u32::MAX));
            }
            self.attempt(broker)?;
            if self.inner.is_connected() {
                // What the last connection left unacknowledged goes first.
                self.pump()?;
            }
            if deadline.is_none() && !self.inner.is_connected() {
                return Err(self.policy.offline(self.now()));
            }
        }
    }

    /// Connects and, when the broker kept no session, subscribes again to
    /// every remembered filter; returns "session present". Fails if the
    /// connection is lost on the way (a broker may close it on a forbidden
    /// SUBSCRIBE), so the backoff paces the next try.
    pub(super) fn open_session(
        &mut self,
        broker: Broker<'a, S, C, W>,
        reconnect: bool,
    ) -> Result<bool, Error<S::Error>> {
        let session_present = match broker {
            Broker::Addr(addr) => self.inner.connect(addr)?,
            Broker::Host {
                name,
                port,
                connect,
            } => connect(&mut self.inner, name, port)?,
        };
        self.policy.connected(session_present, reconnect);
        if !session_present {
            self.resubscribe()?;
        }
        self.policy.restored(self.inner.packets_received());
        Ok(session_present)
    }

    /// One reconnect attempt; on failure schedules the next.
    pub(super) fn attempt(
        &mut self,
        broker: Broker<'a, S, C, W>,
    ) -> Result<(), RobustClientError<S>> {
        self.policy.attempting(&broker);
        match self.open_session(broker, true) {
            Ok(_) => Ok(()),
            Err(e) => {
                let now = self.now();
                self.policy.attempt_error(&e, now)
            }
        }
    }

    /// Subscribes again to every remembered filter. A refused filter is
    /// logged and skipped; a lost connection ends it with the error.
    pub(super) fn resubscribe(&mut self) -> Result<(), Error<S::Error>> {
        let mut count = 0;
        for (filter, qos) in self.subscriptions.iter() {
            match self.inner.subscribe(filter, qos) {
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
