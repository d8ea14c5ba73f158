//! The requests: CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and PINGREQ,
//! each sent and its acknowledgement awaited within the call's deadline.

use core::net::SocketAddr;

use crate::{Clock, Wait};
use embedded_nal::TcpClientStack;

use super::{Client, ClientError};
use crate::driver::{
    self, Handled, checked_publish, checked_publish_with_id, checked_subscribe,
    checked_unsubscribe, connack, earlier_unreported, handled_msg, unsolicited,
};
use crate::error::{Error, Waiting};
use crate::packet::{Packet, Publish, QoS, Subscribe, Unsubscribe};
use crate::session::Encoded;

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> Client<'a, S, C, W> {
    pub(super) fn connect_by(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<bool, ClientError<S>> {
        // Everything is checked (and encoded) before the network is touched.
        // `encode` writes nothing unless it succeeds, so refused options
        // leave the batch of an open connection as it was.
        let len = self.session.encode_connect()?;
        self.close_socket();

        log::info!(
            "connecting to {addr} as {:?}",
            self.session.options().client_id
        );
        let socket = self.open(addr, deadline)?;
        let now = self.clock.now_ms();
        self.socket = Some(socket);
        self.session.opened(now);

        let send_timeout = self.session.options().send_timeout_ms;
        let send_deadline = deadline.min(now.saturating_add(u64::from(send_timeout)));
        self.send_buffered(now, len, &[], send_deadline)?;
        let session_present = connack(self.poll_inbound(Some(deadline), Some(now))?)?;
        log::info!("connected to {addr} (session present: {session_present})");
        Ok(session_present)
    }

    /// Opens a TCP connection to `addr` before `deadline`.
    pub(super) fn open(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<S::TcpSocket, ClientError<S>> {
        let mut socket = self.stack.socket().map_err(Error::Network)?;
        loop {
            match self.stack.connect(&mut socket, addr) {
                Ok(()) => return Ok(socket),
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => self.nap(),
                Err(e) => {
                    // The socket is not ours yet: close it here.
                    let _ = self.stack.close(socket);
                    return Err(match e {
                        nb::Error::WouldBlock => Error::Timeout(Waiting::Connect),
                        nb::Error::Other(e) => Error::Network(e),
                    });
                }
            }
        }
    }

    pub(super) fn publish_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), ClientError<S>> {
        let mut publish = checked_publish(topic, payload, retain, qos)?;
        self.connected()?;
        if qos == QoS::AtMostOnce {
            return self.send_publish(&publish);
        }
        if self.session.window_capacity() > 0 {
            // The id is taken once there is room: never one still in flight.
            self.wait_for_window(|session| session.window_room() > 0)?;
            publish.packet_id = self.session.take_packet_id();
            return self.send_windowed(&publish);
        }
        publish.packet_id = self.session.take_packet_id();
        self.send_and_await_puback(&publish)
    }

    pub(super) fn publish_with_id_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Result<(), ClientError<S>> {
        let publish = checked_publish_with_id(topic, payload, retain, packet_id, dup)?;
        self.connected()?;
        if self.session.window_capacity() > 0 {
            self.wait_for_window(|session| {
                session.window_room() > 0 || session.is_in_flight(packet_id)
            })?;
            return self.send_windowed(&publish);
        }
        self.send_and_await_puback(&publish)
    }

    /// Sends a checked QoS 1 PUBLISH through the window: sent, then noted
    /// in flight, not waited for (its PUBACK is handled by later calls).
    /// What arrived before the PUBLISH went out is handled first (what is
    /// buffered here, what the send reads before it), so that a PUBACK the
    /// broker sent before it saw the message cannot match it.
    fn send_windowed(&mut self, publish: &Publish<'_>) -> Result<(), ClientError<S>> {
        let now = self.clock.now_ms();
        while let Some(handled) = self.take_packet(now)? {
            unsolicited(&mut self.session, handled)?;
        }
        self.send_publish(publish)?;
        self.session.send_windowed(publish.packet_id);
        Ok(())
    }

    /// Handles packets until `ready` holds of the session, failing with
    /// [`Error::Timeout`]`(PubAck)` if it does not within the ack timeout.
    pub(super) fn wait_for_window(
        &mut self,
        ready: impl Fn(&crate::session::Session<'a>) -> bool,
    ) -> Result<(), ClientError<S>> {
        if ready(&self.session) {
            return Ok(());
        }
        let now = self.clock.now_ms();
        let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
        while !ready(&self.session) {
            match self.poll_inbound(Some(deadline), None)? {
                None => return Err(Error::Timeout(Waiting::PubAck)),
                Some(handled) => unsolicited(&mut self.session, handled)?,
            }
        }
        Ok(())
    }

    /// Waits until every windowed message is acknowledged, or `deadline`.
    pub(super) fn await_window_empty(&mut self, deadline: u64) -> Result<bool, ClientError<S>> {
        self.flush_pending()?;
        while self.session.in_flight() > 0 {
            match self.poll_inbound(Some(deadline), None)? {
                None => return Ok(false),
                Some(handled) => unsolicited(&mut self.session, handled)?,
            }
        }
        Ok(true)
    }

    /// Sends a checked QoS 1 PUBLISH and waits for its PUBACK.
    pub(super) fn send_and_await_puback(
        &mut self,
        publish: &Publish<'_>,
    ) -> Result<(), ClientError<S>> {
        self.send_publish(publish)?;
        self.await_ack(Waiting::PubAck, publish.packet_id)
    }

    /// Sends a checked PUBLISH: in one send when it fits the transmit
    /// buffer, else the header from the buffer and the payload as it is.
    /// Batched QoS 0 messages stay in the buffer instead.
    pub(super) fn send_publish(&mut self, publish: &Publish<'_>) -> Result<(), ClientError<S>> {
        // One clock reading serves the read-before check, the send deadline
        // and the keepalive stamp: this is the hot path of a QoS 0 stream.
        let mut now = self.clock.now_ms();
        if self.session.read_due(now) {
            // A publish-only client never reads: take in what has arrived, so
            // that a PINGRESP is seen and a connection the broker closed is
            // noticed before a message goes into it.
            while let Some(handled) = self.poll_inbound(None, None)? {
                unsolicited(&mut self.session, handled)?;
            }
            // Callbacks may have run meanwhile.
            now = self.clock.now_ms();
        }
        loop {
            match self.session.encode_publish(publish)? {
                Encoded::FlushFirst(len) => self.send_now(now, len, &[])?,
                Encoded::Batched => return Ok(()),
                Encoded::Send(len) => return self.send_now(now, len, &[]),
                Encoded::SendWithPayload(len) => return self.send_now(now, len, publish.payload),
            }
        }
    }

    pub(super) fn subscribe_inner(
        &mut self,
        filters: &[(&[u8], QoS)],
        granted: &mut [Option<QoS>],
    ) -> Result<(), ClientError<S>> {
        let probe = checked_subscribe(filters, granted, &self.callbacks)?;
        self.connected()?;
        let packet_id = self.session.take_packet_id();
        self.send_packet(Packet::Subscribe(Subscribe { packet_id, ..probe }))?;
        self.await_ack(Waiting::SubAck, packet_id)?;
        driver::granted(&self.session, filters.len(), granted)
    }

    pub(super) fn unsubscribe_inner(&mut self, filter: &[u8]) -> Result<(), ClientError<S>> {
        let filters = [filter];
        let probe = checked_unsubscribe(&filters)?;
        self.connected()?;
        let packet_id = self.session.take_packet_id();
        self.send_packet(Packet::Unsubscribe(Unsubscribe { packet_id, ..probe }))?;
        self.await_ack(Waiting::UnsubAck, packet_id)
    }

    pub(super) fn send_ping(&mut self) -> Result<(), ClientError<S>> {
        self.connected()?;
        self.send_packet(Packet::PingReq)?;
        self.session.ping_sent(self.clock.now_ms());
        log::trace!("PINGREQ sent");
        Ok(())
    }

    /// Waits for the acknowledgement `waiting` with `packet_id`; messages that
    /// arrive meanwhile go to the callback.
    pub(super) fn await_ack(
        &mut self,
        waiting: Waiting,
        packet_id: u16,
    ) -> Result<(), ClientError<S>> {
        // Read after the send, which may have waited for room: the whole
        // ack timeout is left for the answer.
        let now = self.clock.now_ms();
        let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
        self.session.expect(Some((waiting, packet_id)));
        let mut just_sent = Some(now);
        let result = loop {
            match self.poll_inbound(Some(deadline), just_sent.take()) {
                Ok(None) => break Err(Error::Timeout(waiting)),
                Ok(Some(Handled::Acked)) => break Ok(()),
                Ok(Some(other)) => {
                    if let Err(e) = unsolicited(&mut self.session, other) {
                        break Err(e);
                    }
                }
                Err(e) => break Err(e),
            }
        };
        self.session.expect(None);
        result
    }

    /// Handles one packet that no request waits for; `deadline` None means
    /// do not wait. Returns whether a packet was handled.
    pub(super) fn next_unsolicited(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<bool, ClientError<S>> {
        self.connected()?;
        // A message skipped inside another call is reported first.
        earlier_unreported(&mut self.session)?;
        self.flush_pending()?;
        let handled = self.poll_inbound(deadline, None)?;
        handled_msg(&mut self.session, handled)
    }
}
