//! Each call of the public API: its deadline, and the loop that runs the
//! inner client's operation across reconnects until it completes or the
//! deadline passes.

use core::cell::Cell;

use umqtt_simple::{QoS, Waiting};

use super::io::{Answer, Command, Io, ms};
use super::policy::{Call, publish_waits_for, unacked, window_without_outbox};
use super::{Engine, Failure};
use crate::error::RobustError;
use crate::inner::InnerClient;
use crate::outbox::Queued;

impl<'a> Engine<'a> {
    /// Runs the command `next` names on a live connection, reconnecting
    /// and running it again after each lost connection, until the call's
    /// deadline.
    pub(super) async fn with_connection<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        call: Call,
        mut next: impl FnMut() -> Command<'c>,
    ) -> Result<Answer, Failure<'a, I>> {
        let result = loop {
            if let Err(e) = self.ensure_connected(io, Some(call.deadline)).await {
                break Err(self.policy.call_failed(call, e));
            }
            self.policy.reached();
            match io.request(next()).await {
                Ok(answer) => {
                    self.note_progress(io);
                    self.keep_outbox_moving(io).await;
                    break Ok(answer);
                }
                Err(e) if e.is_connection_lost() => self.lost(io, &e),
                Err(e) => break Err(e.into()),
            }
        };
        io.limit_waits(None);
        result
    }

    /// `connect`: one attempt within the call deadline, then what waits in
    /// the outbox (queued before, or left by a lost connection) goes out.
    /// A connection lost on the way fails the call, as one lost while
    /// resubscribing does: `Ok` means connected.
    pub(super) async fn connect<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<bool, Failure<'a, I>> {
        let Some(broker) = self.broker else {
            return Err(RobustError::NotStarted);
        };
        // A connection still open is replaced: what it did not deliver stays.
        self.note_delivered(io, true);
        self.policy.start();
        self.begin_call(io, Waiting::ConnAck);
        let result = match self.open_session(io, broker, false).await {
            Ok(session_present) => match self.pump(io).await {
                Ok(()) if !io.connected() => Err(self.policy.offline(io.now())),
                pumped => pumped.map(|()| session_present),
            },
            Err(e) => {
                self.policy.start_failed(io.now());
                Err(e.into())
            }
        };
        io.limit_waits(None);
        result
    }

    /// `disconnect`: no reconnecting until the next `connect`.
    pub(super) async fn disconnect<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<(), Failure<'a, I>> {
        self.broker = None;
        self.policy.stop();
        io.request(Command::Disconnect).await?;
        Ok(())
    }

    /// `ping`.
    pub(super) async fn ping<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<Answer, Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::Send);
        self.with_connection(io, call, || Command::Ping).await
    }

    /// `publish`: into the outbox when it takes the message, else sent
    /// across reconnects (QoS 1: again with DUP and the same packet id).
    pub(super) async fn publish<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        message: Queued<'c>,
    ) -> Result<Answer, Failure<'a, I>> {
        let qos = message.qos;
        if io.flow(|flow| flow.takes(qos)) == Some(true) {
            return self.queue(io, message).await.map(|_| Answer::Unit);
        }
        window_without_outbox(qos, self.window.is_some())?;
        let call = self.begin_call(io, publish_waits_for(qos));
        let sent_id = Cell::new(None);
        let result = self
            .with_connection(io, call, || match (qos, sent_id.get()) {
                (QoS::AtLeastOnce, Some(packet_id)) => {
                    log::info!("sending QoS 1 message {packet_id} again (DUP) after reconnect");
                    Command::Republish(message, packet_id)
                }
                (QoS::AtLeastOnce, None) => {
                    let packet_id = io.inner_mut(|c| c.take_packet_id());
                    sent_id.set(Some(packet_id));
                    Command::PublishWithId(message, packet_id)
                }
                // QoS 0 goes out again; QoS 2 is refused before anything is sent.
                (QoS::AtMostOnce | QoS::ExactlyOnce, _) => Command::Publish(message),
            })
            .await;
        unacked(result.map(drop), sent_id.get()).map(|()| Answer::Unit)
    }

    /// `republish`: the same message again, under `packet_id`, across
    /// reconnects.
    pub(super) async fn republish<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        message: Queued<'c>,
        packet_id: u16,
    ) -> Result<Answer, Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::PubAck);
        let command = Command::Republish(message, packet_id);
        let result = self.with_connection(io, call, || command).await;
        unacked(result.map(drop), Some(packet_id)).map(|()| Answer::Unit)
    }

    /// `flush`: the batched QoS 0 messages, then (with an outbox) until the
    /// outbox is empty.
    pub(super) async fn flush<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<Answer, Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::Send);
        self.with_connection(io, call, || Command::Flush).await?;
        if io.flow(|_| ()).is_none() {
            return Ok(Answer::Unit);
        }
        let call = self.begin_call(io, Waiting::PubAck);
        let result = self.drain(io, call.deadline).await;
        io.limit_waits(None);
        result
            .map(|()| Answer::Unit)
            .map_err(|e| self.policy.call_failed(call, e))
    }

    /// `subscribe`, across reconnects.
    pub(super) async fn subscribe<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        filter: &'c [u8],
        qos: QoS,
    ) -> Result<Answer, Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::SubAck);
        self.with_connection(io, call, || Command::Subscribe(filter, qos))
            .await
    }

    /// `unsubscribe`, across reconnects.
    pub(super) async fn unsubscribe<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        filter: &'c [u8],
    ) -> Result<Answer, Failure<'a, I>> {
        let call = self.begin_call(io, Waiting::UnsubAck);
        self.with_connection(io, call, || Command::Unsubscribe(filter))
            .await
    }

    /// `wait_msg`: `wait_msg_for` without a timeout of its own, until a
    /// packet was handled.
    pub(super) async fn wait_msg<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<Answer, Failure<'a, I>> {
        loop {
            if self.wait_msg_for(io, u32::MAX).await? {
                return Ok(Answer::Unit);
            }
        }
    }

    /// `wait_msg_for`: waits for a packet, reconnecting as needed within
    /// `timeout_ms`, and spending at most the call timeout reconnecting.
    pub(super) async fn wait_msg_for<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        timeout_ms: u32,
    ) -> Result<bool, Failure<'a, I>> {
        let call = self.begin_call_for(io, timeout_ms, Waiting::PingResp);
        let call_start = io.now();
        let result = loop {
            let deadline = call.deadline.min(self.policy.outage_deadline(call_start));
            match self.ensure_connected(io, Some(deadline)).await {
                Ok(()) => {}
                Err(RobustError::Offline { .. }) if deadline == call.deadline => break Ok(false),
                Err(e) => break Err(e),
            }
            let left = call.deadline.saturating_sub(io.now());
            match io.request(Command::WaitMsgFor(ms(left))).await {
                Ok(handled) => {
                    self.note_progress(io);
                    self.keep_outbox_moving(io).await;
                    break Ok(handled.flag());
                }
                Err(e) if e.is_connection_lost() => self.lost(io, &e),
                Err(e) => break Err(e.into()),
            }
        };
        io.limit_waits(None);
        result
    }

    /// `check_msg`: never waits; during an outage it makes the one
    /// reconnect attempt that is due, if one is.
    pub(super) async fn check_msg<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
    ) -> Result<bool, Failure<'a, I>> {
        match self.ensure_connected(io, None).await {
            Ok(()) => {}
            Err(RobustError::Offline { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        match io.request(Command::CheckMsg).await {
            Ok(handled) => {
                self.note_progress(io);
                self.keep_outbox_moving(io).await;
                Ok(handled.flag())
            }
            Err(e) if e.is_connection_lost() => {
                self.lost(io, &e);
                // The first attempt may be due at once.
                match self.ensure_connected(io, None).await {
                    Ok(()) | Err(RobustError::Offline { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
