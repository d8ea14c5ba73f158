//! Being connected: waiting out the backoff, making one attempt, restoring
//! what the broker forgot, and noting a lost connection. What counts as
//! lost or failed, and when the next attempt is due, is the policy's.

use umqtt_simple::{Error, Waiting};

use super::io::{Command, Io, Target, ms};
use super::policy::{Call, Due};
use super::{Engine, Failure};
use crate::error::RobustError;
use crate::event::Event;
use crate::inner::InnerClient;

impl<'a> Engine<'a> {
    /// Notes a lost connection (see [`super::policy::Policy::lost`]): the
    /// outbox keeps what it did not deliver.
    pub(super) fn lost<I: InnerClient<'a>>(&mut self, io: &Io<'_, 'a, I>, error: &Error<I::Error>) {
        self.note_delivered(io, true);
        let (now, dropped, packets) =
            io.inner(|c| (c.now_ms(), c.dropped_messages(), c.packets_received()));
        self.policy.lost(error, now, dropped, packets);
    }

    /// Once the connection has shown it works, the failed attempts before
    /// it are forgotten.
    pub(super) fn note_progress<I: InnerClient<'a>>(&mut self, io: &Io<'_, 'a, I>) {
        self.policy.progress(io.inner(|c| c.packets_received()));
    }

    /// Starts a call that may take the call timeout and is complete with
    /// the broker's `waits_for`.
    pub(super) fn begin_call<I: InnerClient<'a>>(
        &mut self,
        io: &Io<'_, 'a, I>,
        waits_for: Waiting,
    ) -> Call {
        self.begin_call_for(io, self.policy.options.call_timeout_ms, waits_for)
    }

    /// Starts a call that may take `timeout_ms`: every wait of the inner
    /// client ends by its deadline (lifted again when the call ends).
    pub(super) fn begin_call_for<I: InnerClient<'a>>(
        &mut self,
        io: &Io<'_, 'a, I>,
        timeout_ms: u32,
        waits_for: Waiting,
    ) -> Call {
        let call = self.policy.begin_call(io.now(), timeout_ms, waits_for);
        io.limit_waits(Some(call.deadline));
        call
    }

    /// Makes sure a connection is up, attempting reconnects as the backoff
    /// allows until `deadline` (`None`: make at most the one attempt that is
    /// due now, never wait). What the last connection left unacknowledged
    /// goes out first on the new one.
    pub(super) async fn ensure_connected<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        deadline: Option<u64>,
    ) -> Result<(), Failure<'a, I>> {
        loop {
            if io.connected() {
                return Ok(());
            }
            let Some(broker) = self.broker else {
                return Err(RobustError::NotStarted);
            };
            self.policy.may_attempt()?;
            while let Due::SleepUntil(until) = self.policy.due(io.now(), deadline)? {
                let left = until.saturating_sub(io.now());
                // A pause does not fail.
                let _ = io.request(Command::Pause(ms(left))).await;
            }
            self.policy.attempting(&broker);
            match self.open_session(io, broker, true).await {
                Ok(_) => self.pump(io).await?,
                Err(e) => {
                    let now = io.now();
                    self.policy.attempt_error(&e, now)?;
                }
            }
            if deadline.is_none() && !io.connected() {
                return Err(self.policy.offline(io.now()));
            }
        }
    }

    /// Connects and, when the broker kept no session, subscribes again to
    /// every remembered filter; returns "session present". Fails if the
    /// connection is lost on the way (a broker may close it on a forbidden
    /// SUBSCRIBE), so the backoff paces the next try.
    pub(super) async fn open_session<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        broker: Target<'a>,
        reconnect: bool,
    ) -> Result<bool, Error<I::Error>> {
        let session_present = io.request(Command::Connect(broker)).await?.flag();
        self.policy.connected(session_present, reconnect);
        if !session_present {
            self.resubscribe(io).await?;
        }
        self.policy.restored(io.inner(|c| c.packets_received()));
        Ok(session_present)
    }

    /// Subscribes again to every remembered filter. A refused filter is
    /// logged and skipped; a lost connection ends it with the error.
    async fn resubscribe<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<(), Error<I::Error>> {
        let mut count = 0;
        for (filter, qos) in io.filters().iter() {
            match io.request(Command::Subscribe(filter, qos)).await {
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
