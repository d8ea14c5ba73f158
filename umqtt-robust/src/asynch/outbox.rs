//! The outbox, async: taking messages in, sending them as the window
//! allows, noting acknowledgements, and draining it. The decisions are the
//! shared flow's (`crate::outbox::Flow`), as for the blocking client.

use embedded_nal_async::TcpConnect;
use umqtt_simple::Timer;
use umqtt_simple::Waiting;

use super::{AsyncRobustError as RobustClientError, RobustClient};
use crate::error::RobustError;
use crate::event::Event;
use crate::outbox::{OutboxError, Queued, checked_message, note_delivered};

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
    /// Takes a message into the outbox and sends what the connection and
    /// the window allow now, without waiting for a reconnect.
    pub(super) async fn queue_inner(
        &mut self,
        flow_message: Queued<'_>,
    ) -> Result<u32, RobustClientError<N>> {
        checked_message(&flow_message)?;
        let Some(flow) = self.flow.as_mut() else {
            return Err(RobustError::NotStarted);
        };
        let (seq, dropped) = match flow.accept(&flow_message) {
            Err(OutboxError::Full { .. }) if flow.waits_when_full() => {
                self.accept_when_room(&flow_message).await?
            }
            accepted => accepted.map_err(RobustError::Outbox)?,
        };
        if dropped > 0 {
            log::warn!("outbox full: dropped the {dropped} oldest message(s)");
            self.policy.emit(Event::Dropped { messages: dropped });
        }
        self.begin_call(Waiting::Send);
        let result = match self.ensure_connected(None).await {
            Ok(()) => self.pump().await,
            // Offline, not connected yet, or given up until the next
            // `connect`: the message waits in the outbox (it was taken, so
            // the caller gets its sequence number, not an error).
            Err(
                RobustError::Offline { .. } | RobustError::GaveUp { .. } | RobustError::NotStarted,
            ) => Ok(()),
            Err(e) => Err(e),
        };
        self.inner.limit_waits(None);
        result.map(|()| seq)
    }

    /// A full outbox that waits for room ([`WhenFull::Wait`]): sends what
    /// the window allows and handles packets (PUBACKs make room),
    /// reconnecting as needed, until the message fits or the call deadline
    /// passes; returns what [`crate::outbox::Flow::accept`] does.
    ///
    /// [`WhenFull::Wait`]: crate::outbox::WhenFull::Wait
    async fn accept_when_room(
        &mut self,
        message: &Queued<'_>,
    ) -> Result<(u32, u32), RobustClientError<N>> {
        let call = self.begin_call(Waiting::PubAck);
        let result = loop {
            if let Err(e) = self.ensure_connected(Some(call.deadline)).await {
                break Err(self.policy.call_failed(call, e));
            }
            self.policy.reached();
            if let Err(e) = self.pump().await {
                break Err(e);
            }
            let Some(flow) = self.flow.as_mut() else {
                break Err(RobustError::NotStarted);
            };
            let full = match flow.accept(message) {
                Err(full @ OutboxError::Full { .. }) => full,
                accepted => break accepted.map_err(RobustError::Outbox),
            };
            let left = call.deadline.saturating_sub(self.now());
            if left == 0 {
                break Err(RobustError::Outbox(full));
            }
            if !self.inner.is_connected() {
                continue;
            }
            match self
                .inner
                .wait_msg_for(u32::try_from(left).unwrap_or(u32::MAX))
                .await
            {
                Ok(_) => self.note_progress(),
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// Sends what waits in the outbox, oldest first, while the connection is
    /// up and the window has room (without a window, each QoS 1 message
    /// waits for its PUBACK); while the window is full, the packets that
    /// have already arrived are handled (PUBACKs make room), never waiting
    /// for one. A lost connection ends it quietly: what was not
    /// acknowledged goes again after the reconnect.
    pub(super) async fn pump(&mut self) -> Result<(), RobustClientError<N>> {
        self.pump_with(true).await
    }

    /// [`Self::pump`]; `handle_arrived`: whether a full window may handle
    /// the packets that arrived. Not after a call of the application's that
    /// succeeded: that call's `Ok` stands for a connection still up, and a
    /// packet read here (a malformed one) could lose it after the fact; the
    /// next call's pump handles them.
    async fn pump_with(&mut self, handle_arrived: bool) -> Result<(), RobustClientError<N>> {
        loop {
            self.note_delivered();
            if !self.inner.is_connected() {
                return Ok(());
            }
            let Some(flow) = self.flow.as_mut() else {
                return Ok(());
            };
            let capacity = self.inner.window_capacity();
            let window_full = capacity > 0 && self.inner.in_flight() >= capacity;
            let inner = &self.inner;
            let Some(next) = flow.next_sendable(window_full, |id| inner.is_in_flight(id)) else {
                if flow.next().is_none() || !handle_arrived {
                    return Ok(());
                }
                // The window is full and messages wait: handle the PUBACKs
                // that have arrived (never waiting), so the window moves on
                // without a call that reads from the broker.
                match self.inner.check_msg().await {
                    Ok(true) => continue,
                    Ok(false) => return Ok(()),
                    Err(e) if e.is_connection_lost() => {
                        self.lost(&e);
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
                }
            };
            let packet_id = next.packet_id(|| self.inner.take_packet_id());
            flow.sending(next.seq, packet_id)
                .map_err(RobustError::Outbox)?;
            let Some(message) = flow.get(next.seq) else {
                // The storage named it as next and cannot give it back.
                return Err(RobustError::Outbox(OutboxError::UnknownSeq(next.seq)));
            };
            let (topic, payload, retain) = (message.topic, message.payload, message.retain);
            let sent = match (packet_id, next.resend_id) {
                (Some(id), Some(_)) => self.inner.republish(topic, payload, retain, id).await,
                (Some(id), None) => self.inner.publish_with_id(topic, payload, retain, id).await,
                (None, _) => self.inner.publish(topic, payload, retain, next.qos).await,
            };
            match sent {
                Ok(()) => {
                    if let Some(flow) = self.flow.as_mut() {
                        flow.sent(next.seq, next.qos).map_err(RobustError::Outbox)?;
                    }
                    self.note_progress();
                }
                Err(e) if e.is_connection_lost() => {
                    self.lost(&e);
                    return Ok(());
                }
                Err(e) => return Err(e.into()),
            }
        }
    }

    /// After a call that handled packets: what was acknowledged leaves the
    /// outbox, and what the window now has room for goes out. A failure of
    /// the outbox's storage is logged here (the call's own result stands);
    /// `queue` and `flush` return it.
    pub(super) async fn keep_outbox_moving(&mut self) {
        if self.flow.is_some()
            && let Err(e) = self.pump_with(false).await
        {
            log::error!("sending from the outbox failed: {e:?}");
        }
    }

    /// Removes from the outbox what the broker acknowledged, and reports it.
    pub(super) fn note_delivered(&mut self) {
        let inner = &self.inner;
        note_delivered(
            self.flow.as_mut(),
            |id| inner.is_in_flight(id),
            &mut self.policy,
            false,
        );
    }

    /// The connection was lost: the outbox keeps what it did not deliver.
    pub(super) fn outbox_lost(&mut self) {
        let inner = &self.inner;
        note_delivered(
            self.flow.as_mut(),
            |id| inner.is_in_flight(id),
            &mut self.policy,
            true,
        );
    }

    /// Sends everything in the outbox and waits until it is delivered,
    /// reconnecting as needed, until `deadline`.
    pub(super) async fn drain(&mut self, deadline: u64) -> Result<(), RobustClientError<N>> {
        loop {
            self.pump().await?;
            if self.flow.as_ref().is_none_or(|f| f.outbox().is_empty()) {
                return Ok(());
            }
            self.ensure_connected(Some(deadline)).await?;
            let left = deadline.saturating_sub(self.now());
            if left == 0 {
                return Err(self.policy.offline(self.now()));
            }
            // One packet at a time: each PUBACK frees a slot the next pump
            // fills, so the window slides instead of emptying between bursts.
            let waited = if self.inner.in_flight() > 0 {
                self.inner
                    .wait_msg_for(u32::try_from(left).unwrap_or(u32::MAX))
                    .await
                    .map(drop)
            } else {
                Ok(())
            };
            match waited {
                Ok(()) => self.note_progress(),
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => return Err(e.into()),
            }
        }
    }
}
