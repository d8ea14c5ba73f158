//! The requests: CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and PINGREQ,
//! each sent and its acknowledgement awaited within the call's deadline.

use core::net::SocketAddr;

use crate::Timer;
use embedded_nal_async::TcpConnect;

use super::race::before;
use super::{AsyncClientError, Client};
use crate::driver::{
    self, Handled, checked_publish, checked_publish_with_id, checked_subscribe,
    checked_unsubscribe, connack, earlier_unreported, handled_msg, unsolicited,
};
use crate::error::{Error, Waiting};
use crate::packet::{Packet, Publish, QoS, Subscribe, Unsubscribe};
use crate::session::Encoded;

impl<'a, N: TcpConnect, T: Timer> Client<'a, N, T> {
    pub(super) async fn connect_by(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<bool, AsyncClientError<N>> {
        // Everything is checked (and encoded) before the network is touched.
        let len = self.session.encode_connect()?;
        self.close();
        log::info!(
            "connecting to {addr} as {:?}",
            self.session.options().client_id
        );
        let connection = before(&mut self.timer, deadline, self.net.connect(addr))
            .await
            .ok_or(Error::Timeout(Waiting::Connect))?
            .map_err(Error::Network)?;
        let now = self.timer.now_ms();
        self.connection = Some(connection);
        self.session.opened(now);

        let send_timeout = self.session.options().send_timeout_ms;
        let send_deadline = deadline.min(now.saturating_add(u64::from(send_timeout)));
        self.send_buffered(now, len, &[], send_deadline).await?;
        let session_present = connack(self.poll_inbound(Some(deadline)).await?)?;
        log::info!("connected to {addr} (session present: {session_present})");
        Ok(session_present)
    }

    pub(super) async fn publish_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), AsyncClientError<N>> {
        let mut publish = checked_publish(topic, payload, retain, qos)?;
        self.connected()?;
        if qos == QoS::AtMostOnce {
            return self.send_publish(&publish).await;
        }
        if self.session.window_capacity() > 0 {
            // The id is taken once there is room: never one still in flight.
            self.wait_for_window(|session| session.window_room() > 0)
                .await?;
            publish.packet_id = self.session.take_packet_id();
            return self.send_windowed(&publish).await;
        }
        publish.packet_id = self.session.take_packet_id();
        self.send_and_await_puback(&publish).await
    }

    pub(super) async fn publish_with_id_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Result<(), AsyncClientError<N>> {
        let publish = checked_publish_with_id(topic, payload, retain, packet_id, dup)?;
        self.connected()?;
        if self.session.window_capacity() > 0 {
            self.wait_for_window(|session| {
                session.window_room() > 0 || session.is_in_flight(packet_id)
            })
            .await?;
            return self.send_windowed(&publish).await;
        }
        self.send_and_await_puback(&publish).await
    }

    /// Sends a checked QoS 1 PUBLISH through the window: sent, then noted
    /// in flight, not waited for (its PUBACK is handled by later calls).
    /// What arrived before the PUBLISH went out is handled first (what is
    /// buffered here, what the send reads before it), so that a PUBACK the
    /// broker sent before it saw the message cannot match it.
    async fn send_windowed(&mut self, publish: &Publish<'_>) -> Result<(), AsyncClientError<N>> {
        let now = self.timer.now_ms();
        while let Some(handled) = self.take_packet(now).await? {
            unsolicited(&mut self.session, handled)?;
        }
        self.send_publish(publish).await?;
        self.session.send_windowed(publish.packet_id);
        Ok(())
    }

    /// Handles packets until `ready` holds of the session, failing with
    /// [`Error::Timeout`]`(PubAck)` if it does not within the ack timeout.
    async fn wait_for_window(
        &mut self,
        ready: impl Fn(&crate::session::Session<'a>) -> bool,
    ) -> Result<(), AsyncClientError<N>> {
        if ready(&self.session) {
            return Ok(());
        }
        let now = self.timer.now_ms();
        let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
        while !ready(&self.session) {
            match self.poll_inbound(Some(deadline)).await? {
                None => return Err(Error::Timeout(Waiting::PubAck)),
                Some(handled) => unsolicited(&mut self.session, handled)?,
            }
        }
        Ok(())
    }

    /// Waits until every windowed message is acknowledged, or `deadline`.
    pub(super) async fn await_window_empty(
        &mut self,
        deadline: u64,
    ) -> Result<bool, AsyncClientError<N>> {
        self.flush_pending().await?;
        while self.session.in_flight() > 0 {
            match self.poll_inbound(Some(deadline)).await? {
                None => return Ok(false),
                Some(handled) => unsolicited(&mut self.session, handled)?,
            }
        }
        Ok(true)
    }

    async fn send_and_await_puback(
        &mut self,
        publish: &Publish<'_>,
    ) -> Result<(), AsyncClientError<N>> {
        self.send_publish(publish).await?;
        self.await_ack(Waiting::PubAck, publish.packet_id).await
    }

    /// Sends a checked PUBLISH: in one send when it fits the transmit
    /// buffer, else the header from the buffer and the payload as it is.
    /// Batched QoS 0 messages stay in the buffer instead.
    async fn send_publish(&mut self, publish: &Publish<'_>) -> Result<(), AsyncClientError<N>> {
        let mut now = self.timer.now_ms();
        if self.session.read_due(now) {
            // A publish-only client never reads: take in what has arrived, so
            // that a PINGRESP is seen and a connection the broker closed is
            // noticed before a message goes into it.
            while let Some(handled) = self.poll_inbound(None).await? {
                unsolicited(&mut self.session, handled)?;
            }
            now = self.timer.now_ms();
        }
        loop {
            match self.session.encode_publish(publish)? {
                Encoded::FlushFirst(len) => self.send_now(now, len, &[]).await?,
                Encoded::Batched => return Ok(()),
                Encoded::Send(len) => return self.send_now(now, len, &[]).await,
                Encoded::SendWithPayload(len) => {
                    return self.send_now(now, len, publish.payload).await;
                }
            }
        }
    }

    pub(super) async fn subscribe_inner(
        &mut self,
        filters: &[(&[u8], QoS)],
        granted: &mut [Option<QoS>],
    ) -> Result<(), AsyncClientError<N>> {
        let probe = checked_subscribe(filters, granted, &self.callbacks)?;
        self.connected()?;
        let packet_id = self.session.take_packet_id();
        self.send_packet(Packet::Subscribe(Subscribe { packet_id, ..probe }))
            .await?;
        self.await_ack(Waiting::SubAck, packet_id).await?;
        driver::granted(&self.session, filters.len(), granted)
    }

    pub(super) async fn unsubscribe_inner(
        &mut self,
        filter: &[u8],
    ) -> Result<(), AsyncClientError<N>> {
        let filters = [filter];
        let probe = checked_unsubscribe(&filters)?;
        self.connected()?;
        let packet_id = self.session.take_packet_id();
        self.send_packet(Packet::Unsubscribe(Unsubscribe { packet_id, ..probe }))
            .await?;
        self.await_ack(Waiting::UnsubAck, packet_id).await
    }

    pub(super) async fn send_ping(&mut self) -> Result<(), AsyncClientError<N>> {
        self.connected()?;
        self.send_packet(Packet::PingReq).await?;
        self.session.ping_sent(self.timer.now_ms());
        log::trace!("PINGREQ sent");
        Ok(())
    }

    /// Waits for the acknowledgement `waiting` with `packet_id`; messages that
    /// arrive meanwhile go to the callback.
    async fn await_ack(
        &mut self,
        waiting: Waiting,
        packet_id: u16,
    ) -> Result<(), AsyncClientError<N>> {
        let now = self.timer.now_ms();
        let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
        self.session.expect(Some((waiting, packet_id)));
        let result = loop {
            match self.poll_inbound(Some(deadline)).await {
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
    pub(super) async fn next_unsolicited(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<bool, AsyncClientError<N>> {
        self.connected()?;
        // A message skipped inside another call is reported first.
        earlier_unreported(&mut self.session)?;
        self.flush_pending().await?;
        let handled = self.poll_inbound(deadline).await?;
        handled_msg(&mut self.session, handled)
    }
}
