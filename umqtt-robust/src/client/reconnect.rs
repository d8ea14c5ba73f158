//! The reconnect policy: when a connection counts as lost or as a failed
//! attempt, waiting out the backoff, making one attempt, restoring what the
//! broker forgot.

use embedded_nal::TcpClientStack;
use umqtt_simple::{Error, Waiting};
use umqtt_transports::{Clock, Wait};

use super::{Broker, RobustClient, RobustClientError};
use crate::Event;
use crate::backoff::Random;
use crate::error::RobustError;

/// A connection that has not shown yet that it works: the inner client's
/// packet count when it was opened.
#[derive(Debug, Clone, Copy)]
pub(super) struct Untried {
    pub(super) packets: u32,
}

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    pub(super) fn now(&self) -> u64 {
        self.inner.clock().now_ms()
    }

    /// How long a wait that started at `call_start` may spend reconnecting:
    /// the call timeout, counted from the call's start or from the loss of
    /// the connection, whichever is later.
    pub(super) fn outage_deadline(&self, call_start: u64) -> u64 {
        let from = self
            .outage_since
            .map_or(call_start, |since| since.max(call_start));
        from.saturating_add(u64::from(self.robust.call_timeout_ms))
    }

    pub(super) fn emit(&mut self, event: Event) {
        if let Some(events) = self.events.as_mut() {
            events(event);
        }
    }

    /// Notes a lost connection. One that the broker failed (no answer in
    /// time, a protocol error) before it ever worked counts as a failed
    /// attempt, so the backoff grows; any other makes the first reconnect
    /// attempt due at once.
    pub(super) fn lost(&mut self, error: &Error<S::Error>) {
        log::warn!("connection lost: {error:?}");
        let now = self.now();
        self.outage_since.get_or_insert(now);
        self.emit(Event::Lost);
        let dropped = self.inner.dropped_messages();
        let messages = dropped.wrapping_sub(self.dropped_reported);
        self.dropped_reported = dropped;
        if messages > 0 {
            self.emit(Event::Dropped { messages });
        }
        match self.untried.take() {
            Some(untried) if !self.worked(untried) && broker_failed(error) => {
                log::warn!("the broker failed the connection before it ever worked");
                // Giving up is remembered: the next call says so.
                let _ = self.attempt_failed(error);
            }
            _ => {
                self.failures = 0;
                self.next_attempt_ms = now;
            }
        }
    }

    /// Whether the connection opened as `untried` has shown it works: the
    /// broker sent a packet on it after the CONNACK and the resubscription.
    pub(super) fn worked(&self, untried: Untried) -> bool {
        self.inner.packets_received() > untried.packets
    }

    /// Once the connection has shown it works, the failed attempts before
    /// it are forgotten.
    pub(super) fn note_progress(&mut self) {
        if let Some(untried) = self.untried
            && self.worked(untried)
        {
            self.untried = None;
            self.failures = 0;
        }
    }

    pub(super) fn schedule_retry(&mut self) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let random: &mut dyn Random = match self.random.as_mut() {
            Some(r) => &mut **r,
            None => &mut self.fallback_random,
        };
        let delay = self.robust.backoff.delay_ms(self.failures, random);
        self.next_attempt_ms = self.now().saturating_add(u64::from(delay));
        delay
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
            if self.gave_up {
                return Err(RobustError::GaveUp {
                    attempts: self.failures,
                });
            }
            self.wait_for_attempt(deadline)?;
            self.attempt(broker)?;
            if deadline.is_none() && !self.inner.is_connected() {
                return Err(self.offline());
            }
        }
    }

    /// Waits out the backoff until the next attempt is due, if `deadline`
    /// comes later (`None`: never wait); [`RobustError::Offline`] if not.
    pub(super) fn wait_for_attempt(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<(), RobustClientError<S>> {
        loop {
            let now = self.now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(self.offline());
            }
            if now >= self.next_attempt_ms {
                return Ok(());
            }
            let Some(deadline) = deadline else {
                return Err(self.offline());
            };
            let until = deadline.min(self.next_attempt_ms);
            self.inner
                .pause(u32::try_from(until - now).unwrap_or(u32::MAX));
        }
    }

    pub(super) fn offline(&self) -> RobustClientError<S> {
        let left = self.next_attempt_ms.saturating_sub(self.now());
        RobustError::Offline {
            retry_in_ms: u32::try_from(left).unwrap_or(u32::MAX),
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
        self.connections = self.connections.wrapping_add(1);
        if reconnect {
            let attempts = self.failures + 1;
            log::info!(
                "reconnected after {attempts} attempt(s), session present: {session_present}"
            );
            self.emit(Event::Reconnected {
                session_present,
                attempts,
            });
        }
        if !session_present {
            self.resubscribe()?;
        }
        // Answers to the resubscription do not count: the connection has
        // yet to do what the application asked of it.
        self.untried = Some(Untried {
            packets: self.inner.packets_received(),
        });
        self.outage_since = None;
        Ok(session_present)
    }

    /// One reconnect attempt; on failure schedules the next.
    pub(super) fn attempt(
        &mut self,
        broker: Broker<'a, S, C, W>,
    ) -> Result<(), RobustClientError<S>> {
        log::info!("reconnecting to {broker} (attempt {})", self.failures + 1);
        match self.open_session(broker, true) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Anything but an unreachable broker means it was reached.
                self.call_reached |= !matches!(
                    e,
                    Error::Network(_)
                        | Error::Timeout(Waiting::Connect | Waiting::Dns)
                        | Error::Dns
                );
                self.attempt_failed(&e)
            }
        }
    }

    /// Counts a failed attempt, schedules the next, and gives up after
    /// `max_attempts`.
    pub(super) fn attempt_failed(
        &mut self,
        error: &Error<S::Error>,
    ) -> Result<(), RobustClientError<S>> {
        let retry_in_ms = self.schedule_retry();
        log::warn!(
            "connection attempt {} failed: {error:?}; next in {retry_in_ms} ms",
            self.failures
        );
        self.emit(Event::ReconnectFailed {
            attempt: self.failures,
            retry_in_ms,
        });
        if self
            .robust
            .backoff
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            log::error!("giving up after {} failed attempts", self.failures);
            self.gave_up = true;
            self.emit(Event::GaveUp {
                attempts: self.failures,
            });
            return Err(RobustError::GaveUp {
                attempts: self.failures,
            });
        }
        Ok(())
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
                    if let Some(events) = self.events.as_mut() {
                        events(Event::Lost);
                    }
                    return Err(e);
                }
                Err(e) => log::warn!("resubscribing to {filter:?} failed: {e:?}"),
            }
        }
        if count > 0 {
            log::info!("resubscribed to {count} filter(s)");
            self.emit(Event::Resubscribed { filters: count });
        }
        Ok(())
    }
}

/// Whether `error` is the broker failing a connection it accepted: no
/// answer in time, or a packet that breaks the protocol. A connection the
/// broker or the network closed is an ordinary loss (a broker restart, an
/// idle client dropped).
fn broker_failed<E>(error: &Error<E>) -> bool {
    matches!(
        error,
        Error::Timeout(_)
            | Error::Protocol(_)
            | Error::UnexpectedPacket(_)
            | Error::UnexpectedPacketId { .. }
            | Error::PacketTooLarge { .. }
    )
}
