//! The outbox on the wire: taking messages in, sending them as the window
//! allows, noting acknowledgements, and draining. What goes out next and
//! what was acknowledged is the outbox's flow's (`crate::outbox::Flow`);
//! this is when, and what a lost connection or a deadline makes of it.

use umqtt_simple::Waiting;

use super::io::{Answer, Command, FromOutbox, Io, ms};
use super::{Engine, Failure};
use crate::error::RobustError;
use crate::event::Event;
use crate::inner::InnerClient;
use crate::outbox::{OutboxError, Queued, checked_message};

/// What the outbox has for the connection now.
enum Ready {
    /// This message may go out.
    Send(crate::outbox::Next),
    /// Messages wait, held back by a full window.
    WindowFull,
    /// Nothing waits.
    Nothing,
}

impl<'a> Engine<'a> {
    /// Removes from the outbox what the broker acknowledged, and reports
    /// it; `lost`: the connection is gone, the rest goes out again on the
    /// next one.
    pub(super) fn note_delivered<I: InnerClient<'a>>(&mut self, io: &Io<'_, 'a, I>, lost: bool) {
        let policy = &mut self.policy;
        io.flow(|flow| {
            flow.note_delivered(|id| io.is_in_flight(id), lost, |event| policy.emit(event));
        });
    }

    /// `queue`: takes a message into the outbox and sends what the
    /// connection and the window allow now, without waiting for a reconnect.
    pub(super) async fn queue<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        message: Queued<'c>,
    ) -> Result<u32, Failure<'a, I>> {
        checked_message(&message)?;
        let accepted = io.flow(|flow| match flow.accept(&message) {
            Err(OutboxError::Full { .. }) if flow.waits_when_full() => None,
            accepted => Some(accepted),
        });
        let (seq, dropped) = match accepted {
            None => return Err(RobustError::NotStarted),
            Some(None) => self.accept_when_room(io, &message).await?,
            Some(Some(accepted)) => accepted.map_err(RobustError::Outbox)?,
        };
        if dropped > 0 {
            log::warn!("outbox full: dropped the {dropped} oldest message(s)");
            self.policy.emit(Event::Dropped { messages: dropped });
        }
        self.begin_call(io, Waiting::Send);
        let result = match self.ensure_connected(io, None).await {
            Ok(()) => self.pump(io).await,
            // Offline, not connected yet, or given up until the next
            // `connect`: the message waits in the outbox (it was taken, so
            // the caller gets its sequence number, not an error).
            Err(
                RobustError::Offline { .. } | RobustError::GaveUp { .. } | RobustError::NotStarted,
            ) => Ok(()),
            Err(e) => Err(e),
        };
        io.limit_waits(None);
        result.map(|()| seq)
    }

    /// A full outbox that waits for room ([`WhenFull::Wait`]): sends what
    /// the window allows and handles packets (PUBACKs make room),
    /// reconnecting as needed, until the message fits or the call deadline
    /// passes; returns what [`crate::outbox::Flow::accept`] does.
    ///
    /// [`WhenFull::Wait`]: crate::outbox::WhenFull::Wait
    async fn accept_when_room<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        message: &Queued<'_>,
    ) -> Result<(u32, u32), Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::PubAck);
        let result = loop {
            if let Err(e) = self.ensure_connected(io, Some(call.deadline)).await {
                break Err(self.policy.call_failed(call, e));
            }
            self.policy.reached();
            if let Err(e) = self.pump(io).await {
                break Err(e);
            }
            let full = match io.flow(|flow| flow.accept(message)) {
                None => break Err(RobustError::NotStarted),
                Some(Err(full @ OutboxError::Full { .. })) => full,
                Some(accepted) => break accepted.map_err(RobustError::Outbox),
            };
            let left = call.deadline.saturating_sub(io.now());
            if left == 0 {
                break Err(RobustError::Outbox(full));
            }
            if !io.connected() {
                continue;
            }
            match io.request(Command::WaitMsgFor(ms(left))).await {
                Ok(_) => self.note_progress(io),
                Err(e) if e.is_connection_lost() => self.lost(io, &e),
                Err(e) => break Err(e.into()),
            }
        };
        io.limit_waits(None);
        result
    }

    /// Sends what waits in the outbox, oldest first, while the connection is
    /// up and the window has room (without a window, each QoS 1 message
    /// waits for its PUBACK); while the window is full, the packets that
    /// have already arrived are handled (PUBACKs make room), never waiting
    /// for one. A lost connection ends it quietly: what was not
    /// acknowledged goes again after the reconnect.
    pub(super) async fn pump<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<(), Failure<'a, I>> {
        self.pump_with(io, true).await
    }

    /// After a call that handled packets: what was acknowledged leaves the
    /// outbox, and what the window now has room for goes out. A failure of
    /// the outbox's storage is logged here (the call's own result stands);
    /// `queue` and `flush` return it.
    pub(super) async fn keep_outbox_moving<'c, I: InnerClient<'a>>(&mut self, io: &Io<'c, 'a, I>) {
        if io.flow(|_| ()).is_some()
            && let Err(e) = self.pump_with(io, false).await
        {
            log::error!("sending from the outbox failed: {e:?}");
        }
    }

    /// What the outbox has for the connection now (`None`: no outbox).
    fn ready<I: InnerClient<'a>>(io: &Io<'_, 'a, I>) -> Option<Ready> {
        let window_full = io.inner(|c| {
            let capacity = c.window_capacity();
            capacity > 0 && c.in_flight() >= capacity
        });
        io.flow(
            |flow| match flow.next_sendable(window_full, |id| io.is_in_flight(id)) {
                Some(next) => Ready::Send(next),
                None if flow.next().is_some() => Ready::WindowFull,
                None => Ready::Nothing,
            },
        )
    }

    /// [`Self::pump`]; `handle_arrived`: whether a full window may handle
    /// the packets that arrived. Not after a call of the application's that
    /// succeeded: that call's `Ok` stands for a connection still up, and a
    /// packet read here (a malformed one) could lose it after the fact; the
    /// next call's pump handles them.
    async fn pump_with<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        handle_arrived: bool,
    ) -> Result<(), Failure<'a, I>> {
        loop {
            self.note_delivered(io, false);
            if !io.connected() {
                return Ok(());
            }
            let next = match Self::ready(io) {
                Some(Ready::Send(next)) => next,
                None | Some(Ready::Nothing) => return Ok(()),
                Some(Ready::WindowFull) if !handle_arrived => return Ok(()),
                // The window is full and messages wait: handle the PUBACKs
                // that have arrived (never waiting), so the window moves on
                // without a call that reads from the broker.
                Some(Ready::WindowFull) => match io.request(Command::CheckMsg).await {
                    Ok(handled) if handled.flag() => continue,
                    Ok(_) => return Ok(()),
                    Err(e) if e.is_connection_lost() => {
                        self.lost(io, &e);
                        return Ok(());
                    }
                    // About a message that arrived (one too large for the
                    // receive buffer, skipped and given to the undelivered
                    // callback), not about the outbox's: the call that
                    // pumps (a `queue` that took its message) is no failure.
                    Err(e) => {
                        log::warn!("while the window was full: {e:?}");
                        return Ok(());
                    }
                },
            };
            let packet_id = next.packet_id(|| io.inner_mut(|c| c.take_packet_id()));
            if let Some(Err(e)) = io.flow(|flow| flow.sending(next.seq, packet_id)) {
                return Err(RobustError::Outbox(e));
            }
            let send = FromOutbox {
                seq: next.seq,
                packet_id,
                resend: next.resend_id.is_some(),
            };
            match io.request(Command::FromOutbox(send)).await {
                // The storage named it as next and cannot give it back.
                Ok(Answer::NotInOutbox) => {
                    return Err(RobustError::Outbox(OutboxError::UnknownSeq(next.seq)));
                }
                Ok(_) => {
                    if let Some(Err(e)) = io.flow(|flow| flow.sent(next.seq, next.qos)) {
                        return Err(RobustError::Outbox(e));
                    }
                    self.note_progress(io);
                }
                Err(e) if e.is_connection_lost() => {
                    self.lost(io, &e);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// Sends everything in the outbox and waits until it is delivered,
    /// reconnecting as needed, until `deadline`.
    pub(super) async fn drain<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        deadline: u64,
    ) -> Result<(), Failure<'a, I>> {
        loop {
            self.pump(io).await?;
            if io.flow(|flow| flow.outbox().is_empty()) != Some(false) {
                return Ok(());
            }
            self.ensure_connected(io, Some(deadline)).await?;
            let left = deadline.saturating_sub(io.now());
            if left == 0 {
                return Err(self.policy.offline(io.now()));
            }
            // One packet at a time: each PUBACK frees a slot the next pump
            // fills, so the window slides instead of emptying between bursts.
            let waited = if io.inner(|c| c.in_flight()) > 0 {
                io.request(Command::WaitMsgFor(ms(left))).await.map(drop)
            } else {
                Ok(())
            };
            match waited {
                Ok(()) => self.note_progress(io),
                Err(e) if e.is_connection_lost() => self.lost(io, &e),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
