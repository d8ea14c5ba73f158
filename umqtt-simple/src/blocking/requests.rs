//! The requests: CONNECT, PUBLISH, SUBSCRIBE, UNSUBSCRIBE and PINGREQ,
//! each sent and its acknowledgement awaited within the call's deadline.

use core::net::SocketAddr;

use embedded_nal::TcpClientStack;
use umqtt_transports::{Clock, Wait};

use super::io::Handled;
use super::{Client, ClientError};
use crate::error::{Error, Waiting};
use crate::packet::{
    DecodeError, EncodeError, Packet, PacketType, Publish, QoS, SubAckCode, Subscribe,
    SubscribeFilters, Unsubscribe, UnsubscribeFilters,
};
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
        match self.poll_inbound(Some(deadline), Some(now))? {
            Some(Handled::ConnAck { session_present }) => {
                log::info!("connected to {addr} (session present: {session_present})");
                Ok(session_present)
            }
            Some(other) => Err(Error::UnexpectedPacket(other.packet_type())),
            None => Err(Error::Timeout(Waiting::ConnAck)),
        }
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
        dup: bool,
    ) -> Result<(), ClientError<S>> {
        let mut publish = Publish::new(topic, payload, qos).with_retain(retain);
        // Checked once, with a stand-in id: a QoS 1 id is taken only once the
        // message is known to be valid and the connection up.
        publish.packet_id = 1;
        publish.validate()?;
        match qos {
            QoS::AtMostOnce => {
                self.connected()?;
                self.send_publish(&publish)
            }
            QoS::AtLeastOnce => {
                self.connected()?;
                publish.packet_id = self.session.take_packet_id();
                publish.dup = dup;
                self.send_and_await_puback(&publish)
            }
            QoS::ExactlyOnce => Err(EncodeError::PublishQoS2NotSupported.into()),
        }
    }

    pub(super) fn publish_with_id_inner(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Result<(), ClientError<S>> {
        let mut publish = Publish::new(topic, payload, QoS::AtLeastOnce)
            .with_retain(retain)
            .with_packet_id(packet_id);
        publish.dup = dup;
        publish.validate()?;
        self.connected()?;
        self.send_and_await_puback(&publish)
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
                self.unsolicited(handled)?;
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
        if granted.len() < filters.len() {
            return Err(Error::TooManyFilters {
                filters: filters.len(),
                slots: granted.len(),
            });
        }
        let probe = Subscribe {
            packet_id: 1,
            filters: SubscribeFilters::List(filters),
        };
        Packet::Subscribe(probe).validate()?;
        if self.callback.is_none() {
            return Err(Error::NoCallback);
        }
        self.connected()?;
        let packet_id = self.session.take_packet_id();
        self.send_packet(Packet::Subscribe(Subscribe { packet_id, ..probe }))?;
        self.await_ack(Waiting::SubAck, packet_id)?;
        self.granted(filters.len(), granted)
    }

    /// Writes the QoS granted by the SUBACK just received into `granted`.
    pub(super) fn granted(
        &self,
        filters: usize,
        granted: &mut [Option<QoS>],
    ) -> Result<(), ClientError<S>> {
        let codes = self.session.last_suback::<S::Error>()?;
        if codes.return_codes.len() != filters {
            return Err(Error::Protocol(DecodeError::InvalidLength {
                packet: PacketType::SubAck,
                len: 2 + codes.return_codes.len(),
            }));
        }
        let mut refused = None;
        for (i, (slot, code)) in granted.iter_mut().zip(codes.codes()).enumerate() {
            *slot = match code {
                SubAckCode::GrantedQoS0 => Some(QoS::AtMostOnce),
                SubAckCode::GrantedQoS1 => Some(QoS::AtLeastOnce),
                SubAckCode::GrantedQoS2 => Some(QoS::ExactlyOnce),
                SubAckCode::Failure => {
                    refused.get_or_insert(i);
                    None
                }
            };
        }
        match refused {
            Some(index) => Err(Error::SubscribeRefused { index }),
            None => Ok(()),
        }
    }

    pub(super) fn unsubscribe_inner(&mut self, filter: &[u8]) -> Result<(), ClientError<S>> {
        let filters = [filter];
        let probe = Unsubscribe {
            packet_id: 1,
            filters: UnsubscribeFilters::List(&filters),
        };
        Packet::Unsubscribe(probe).validate()?;
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
                    if let Err(e) = self.unsolicited(other) {
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
        if let Some(size) = self.session.take_unreported() {
            return Err(self.too_large(size));
        }
        self.flush_pending()?;
        match self.poll_inbound(deadline, None)? {
            None => Ok(false),
            Some(Handled::Unreported(size)) => Err(self.too_large(size)),
            Some(other) => self.unsolicited(other).map(|()| true),
        }
    }

    pub(super) fn too_large(&self, size: usize) -> ClientError<S> {
        Error::MessageTooLarge {
            size,
            capacity: self.session.rx_capacity(),
        }
    }

    /// Checks a packet that arrived while nothing waited for it (the
    /// session already refused acknowledgements nothing waits for).
    pub(super) fn unsolicited(&mut self, handled: Handled) -> Result<(), ClientError<S>> {
        match handled {
            Handled::Other(_) => Ok(()),
            Handled::Unreported(size) => {
                self.session.defer_report(size);
                Ok(())
            }
            other => Err(Error::UnexpectedPacket(other.packet_type())),
        }
    }
}
