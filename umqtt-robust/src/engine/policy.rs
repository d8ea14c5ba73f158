//! The reconnect policy: when a connection counts as lost or as a failed
//! attempt, when the next attempt is due, when to give up, what a call's
//! deadline makes of its error, and what the application hears. Sans-IO,
//! like the rest of the engine: it is told the time and what happened, and
//! answers with decisions.

use umqtt_simple::{Error, Waiting};

use crate::backoff::{Random, XorShift32};
use crate::error::RobustError;
use crate::event::{Event, EventCallback};
use crate::options::RobustOptions;

/// A connection that has not shown yet that it works: the inner client's
/// packet count when it was opened.
#[derive(Debug, Clone, Copy)]
struct Untried {
    packets: u32,
}

/// What a call needs to say why its deadline passed.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Call {
    pub(crate) deadline: u64,
    /// The broker's answer that completes the call.
    waits_for: Waiting,
    /// [`Policy::connections`] when it started.
    connections: u32,
}

/// What to do before the next connection attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// Attempt now.
    Now,
    /// Sleep until this time, then ask again.
    SleepUntil(u64),
}

/// The reconnect state of one client.
pub(crate) struct Policy<'a> {
    pub(crate) options: RobustOptions,
    events: Option<EventCallback<'a>>,
    random: Option<&'a mut dyn Random>,
    fallback_random: XorShift32,
    /// Failed attempts since the last connection that worked.
    failures: u32,
    next_attempt_ms: u64,
    /// When the current outage was noticed.
    outage_since: Option<u64>,
    gave_up: bool,
    /// The inner client's dropped-message count last reported.
    dropped_reported: u32,
    /// The connection that is up has not shown yet that it works.
    untried: Option<Untried>,
    /// Connections opened since the client was created.
    connections: u32,
    /// The running call reached the broker: its operation ran on a
    /// connection, or a reconnect attempt got an answer.
    call_reached: bool,
}

impl<'a> Policy<'a> {
    /// The policy of a client with id `client_id`, created at `now`, whose
    /// inner client has dropped `dropped` messages so far.
    pub(crate) fn new(client_id: &str, now: u64, dropped: u32) -> Self {
        // Devices that boot together read the same clock: the client id
        // spreads them.
        let id_hash = client_id.bytes().fold(0x811c_9dc5_u32, |h, b| {
            (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
        });
        Policy {
            options: RobustOptions::default(),
            events: None,
            random: None,
            fallback_random: XorShift32::new(id_hash ^ (now as u32)),
            failures: 0,
            next_attempt_ms: 0,
            outage_since: None,
            gave_up: false,
            dropped_reported: dropped,
            untried: None,
            connections: 0,
            call_reached: false,
        }
    }

    pub(crate) fn set_random(&mut self, random: &'a mut dyn Random) {
        self.random = Some(random);
    }

    pub(crate) fn set_events(&mut self, events: EventCallback<'a>) {
        self.events = Some(events);
    }

    pub(crate) fn failures(&self) -> u32 {
        self.failures
    }

    pub(crate) fn emit(&mut self, event: Event) {
        if let Some(events) = self.events.as_mut() {
            events(event);
        }
    }

    /// `connect` was called at `now`: attempts start afresh.
    pub(crate) fn start(&mut self) {
        self.gave_up = false;
        self.failures = 0;
        self.outage_since = None;
    }

    /// The first connection of `connect` failed at `now`.
    pub(crate) fn start_failed(&mut self, now: u64) {
        self.outage_since.get_or_insert(now);
        self.schedule_retry(now);
    }

    /// `disconnect`: no connection is on trial any more.
    pub(crate) fn stop(&mut self) {
        self.untried = None;
    }

    /// Starts a call at `now` that may take `timeout_ms` and is complete
    /// with the broker's `waits_for`.
    pub(crate) fn begin_call(&mut self, now: u64, timeout_ms: u32, waits_for: Waiting) -> Call {
        self.call_reached = false;
        Call {
            deadline: now.saturating_add(u64::from(timeout_ms)),
            waits_for,
            connections: self.connections,
        }
    }

    /// The call's operation ran on a connection.
    pub(crate) fn reached(&mut self) {
        self.call_reached = true;
    }

    /// The error of a call whose deadline passed: [`RobustError::TimedOut`]
    /// when the broker was reached but the call did not complete in time,
    /// else `error` as it is ([`RobustError::Offline`]: never reached).
    pub(crate) fn call_failed<E>(&self, call: Call, error: RobustError<E>) -> RobustError<E> {
        match error {
            RobustError::Offline { .. } if self.call_reached => RobustError::TimedOut {
                waiting: call.waits_for,
                reconnects: self.connections.wrapping_sub(call.connections),
                unacked: None,
            },
            error => error,
        }
    }

    /// How long a wait that started at `call_start` may spend reconnecting:
    /// the call timeout, counted from the call's start or from the loss of
    /// the connection, whichever is later.
    pub(crate) fn outage_deadline(&self, call_start: u64) -> u64 {
        let from = self
            .outage_since
            .map_or(call_start, |since| since.max(call_start));
        from.saturating_add(u64::from(self.options.call_timeout_ms))
    }

    /// Notes a connection lost at `now` with `error`; the inner client has
    /// dropped `dropped` batched messages in all and handled `packets` on
    /// the connection. One that the broker failed (no answer in time, a
    /// protocol error) before it ever worked counts as a failed attempt, so
    /// the backoff grows; any other makes the first reconnect attempt due
    /// at once.
    pub(crate) fn lost<E: core::fmt::Debug>(
        &mut self,
        error: &Error<E>,
        now: u64,
        dropped: u32,
        packets: u32,
    ) {
        log::warn!("connection lost: {error:?}");
        self.outage_since.get_or_insert(now);
        self.emit(Event::Lost);
        let messages = dropped.wrapping_sub(self.dropped_reported);
        self.dropped_reported = dropped;
        if messages > 0 {
            self.emit(Event::Dropped { messages });
        }
        match self.untried.take() {
            Some(untried) if packets <= untried.packets && broker_failed(error) => {
                log::warn!("the broker failed the connection before it ever worked");
                // Giving up is remembered: the next call says so.
                let _ = self.attempt_failed::<E>(error, now);
            }
            _ => {
                self.failures = 0;
                self.next_attempt_ms = now;
            }
        }
    }

    /// The inner client has handled `packets` on the connection: once the
    /// connection has shown it works, the failed attempts before it are
    /// forgotten.
    pub(crate) fn progress(&mut self, packets: u32) {
        if self
            .untried
            .is_some_and(|untried| packets > untried.packets)
        {
            self.untried = None;
            self.failures = 0;
        }
    }

    fn schedule_retry(&mut self, now: u64) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let random: &mut dyn Random = match self.random.as_mut() {
            Some(r) => &mut **r,
            None => &mut self.fallback_random,
        };
        let delay = self.options.backoff.delay_ms(self.failures, random);
        self.next_attempt_ms = now.saturating_add(u64::from(delay));
        delay
    }

    /// Whether attempts may be made at all.
    pub(crate) fn may_attempt<E>(&self) -> Result<(), RobustError<E>> {
        if self.gave_up {
            Err(RobustError::GaveUp {
                attempts: self.failures,
            })
        } else {
            Ok(())
        }
    }

    /// At `now`, with a call that may wait until `deadline` (`None`: not
    /// at all): attempt now, sleep first, or [`RobustError::Offline`].
    pub(crate) fn due<E>(&self, now: u64, deadline: Option<u64>) -> Result<Due, RobustError<E>> {
        if deadline.is_some_and(|d| now >= d) {
            return Err(self.offline(now));
        }
        if now >= self.next_attempt_ms {
            return Ok(Due::Now);
        }
        match deadline {
            Some(deadline) => Ok(Due::SleepUntil(deadline.min(self.next_attempt_ms))),
            None => Err(self.offline(now)),
        }
    }

    pub(crate) fn offline<E>(&self, now: u64) -> RobustError<E> {
        let left = self.next_attempt_ms.saturating_sub(now);
        RobustError::Offline {
            retry_in_ms: u32::try_from(left).unwrap_or(u32::MAX),
        }
    }

    /// A reconnect attempt begins.
    pub(crate) fn attempting(&self, broker: &dyn core::fmt::Display) {
        log::info!("reconnecting to {broker} (attempt {})", self.failures + 1);
    }

    /// A connection was opened (CONNACK in); `reconnect` when it replaced a
    /// lost one.
    pub(crate) fn connected(&mut self, session_present: bool, reconnect: bool) {
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
    }

    /// The session is restored (resubscribed where needed); the inner
    /// client has handled `packets` on the connection so far. Answers to
    /// the resubscription do not count: the connection has yet to do what
    /// the application asked of it.
    pub(crate) fn restored(&mut self, packets: u32) {
        self.untried = Some(Untried { packets });
        self.outage_since = None;
    }

    /// Resubscribing sent `count` filters again.
    pub(crate) fn resubscribed(&mut self, count: usize) {
        if count > 0 {
            log::info!("resubscribed to {count} filter(s)");
            self.emit(Event::Resubscribed { filters: count });
        }
    }

    /// A reconnect attempt failed at `now` with `error`.
    pub(crate) fn attempt_error<E: core::fmt::Debug>(
        &mut self,
        error: &Error<E>,
        now: u64,
    ) -> Result<(), RobustError<E>> {
        // Anything but an unreachable broker means it was reached.
        self.call_reached |= !matches!(
            error,
            Error::Network(_) | Error::Timeout(Waiting::Connect | Waiting::Dns) | Error::Dns
        );
        self.attempt_failed(error, now)
    }

    /// Counts a failed attempt, schedules the next, and gives up after
    /// `max_attempts`.
    fn attempt_failed<E: core::fmt::Debug>(
        &mut self,
        error: &Error<E>,
        now: u64,
    ) -> Result<(), RobustError<E>> {
        let retry_in_ms = self.schedule_retry(now);
        log::warn!(
            "connection attempt {} failed: {error:?}; next in {retry_in_ms} ms",
            self.failures
        );
        self.emit(Event::ReconnectFailed {
            attempt: self.failures,
            retry_in_ms,
        });
        if self
            .options
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

/// Says which QoS 1 message a publish whose deadline passed leaves
/// unacknowledged (`sent_id`: the id it was sent with, if it was).
pub(crate) fn unacked<E>(
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

/// Refuses a QoS 1 publish while a window waits for an outbox to keep its
/// messages in (`set_window` without `set_outbox`): messages in flight that
/// nothing kept could not be sent again after a reconnect.
pub(crate) fn window_without_outbox<E>(
    qos: umqtt_simple::QoS,
    window_waiting: bool,
) -> Result<(), RobustError<E>> {
    if window_waiting && qos == umqtt_simple::QoS::AtLeastOnce {
        return Err(RobustError::WindowWithoutOutbox);
    }
    Ok(())
}

/// The acknowledgement a publish at `qos` waits for.
pub(crate) fn publish_waits_for(qos: umqtt_simple::QoS) -> Waiting {
    match qos {
        umqtt_simple::QoS::AtMostOnce => Waiting::Send,
        _ => Waiting::PubAck,
    }
}
