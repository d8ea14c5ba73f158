//! The sans-IO protocol core: one MQTT session, without sockets, clocks or
//! waiting.
//!
//! A driver (the blocking [`crate::Client`]; an async one alike) owns the
//! connection and the clock, and uses the [`Session`] so:
//! - received bytes go into [`Session::receive_space`], reported with
//!   [`Session::received`]; [`Session::poll`] then hands out one [`Event`]
//!   per packet, after which [`Session::reply`] gives the answer owed to the
//!   broker, if any;
//! - outgoing packets are encoded into the transmit buffer
//!   ([`Session::encode`], [`Session::encode_publish`]); the driver sends
//!   the bytes [`Session::tx`] gives and reports [`Session::sent`] (or
//!   [`Session::send_failed`]);
//! - [`Session::keep_alive`] says when to ping and when the broker stopped
//!   answering, [`Session::next_deadline`] until when the driver may sleep;
//! - [`Session::expect`] names the acknowledgement a call waits for, which
//!   [`Session::poll`] reports as [`Event::Acked`] when it arrives.
//!
//! Every method that needs the time takes it (`now`, in milliseconds).

mod acks;
mod events;
mod inbound;
pub(crate) mod keepalive;
mod outbound;
pub(crate) mod released;
#[cfg(test)]
mod tests;
mod window;

use core::cell::Cell;

pub(crate) use events::Event;
pub use events::{Message, Undelivered};
pub(crate) use outbound::Encoded;

use crate::error::{CoreError, Error, Waiting};
use crate::options::Options;
use crate::packet::{
    Connect, DecodeError, EncodeError, FixedHeader, Outgoing, PACKET_LOG, Packet, PacketType,
    Publish, QoS, SkippedPublish, SubAck,
};
use acks::{Awaited, Owed, PacketIds};
use inbound::{Discard, Frame, Inbound};
use keepalive::{KeepAlive, KeepAliveAction};
use outbound::Outbound;
use released::AwaitingRelease;
use window::Window;

/// A publish first reads what has arrived when nothing was read for this
/// long: a message is not written into a connection the broker has already
/// closed, and a fast publisher pays for it at most ten times a second.
const READ_BEFORE_PUBLISH_MS: u64 = 100;

/// The smallest receive buffer the client accepts: room for any fixed header
/// and the acknowledgements it waits for.
pub const MIN_RX_BUFFER: usize = 16;
/// The smallest transmit buffer the client accepts.
pub const MIN_TX_BUFFER: usize = 16;

/// One MQTT session's state, over borrowed buffers.
pub(crate) struct Session<'a> {
    inbound: Inbound<'a>,
    outbound: Outbound<'a>,
    options: Options<'a>,
    keepalive: KeepAlive,
    /// QoS 2 messages delivered and awaiting their PUBREL.
    released: AwaitingRelease,
    ids: PacketIds,
    awaited: Awaited,
    /// QoS 1 messages in flight at once (none: every publish waits).
    window: Window<'a>,
    /// The answer owed for the packet handled last.
    owed: Option<Owed>,
    /// Set by [`Message::decline`] on the message handed out last.
    declined: Cell<bool>,
    /// Connected at the TCP level, CONNACK not in yet.
    connecting: bool,
    skipped_messages: u32,
    /// Packets handled since the CONNACK.
    packets_received: u32,
    /// A message skipped with nobody to tell: its size, for the next
    /// `wait_msg`/`check_msg` to report (a u32 holds any MQTT packet's
    /// size, in half the room of an `Option<usize>`).
    unreported: Option<u32>,
    /// When the driver last asked for data.
    last_read_ms: u64,
}

impl<'a> Session<'a> {
    pub(crate) fn new(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>, now: u64) -> Self {
        Session {
            inbound: Inbound::new(rx),
            outbound: Outbound::new(tx),
            options,
            keepalive: KeepAlive::new(0, 0, now),
            released: AwaitingRelease::default(),
            ids: PacketIds::new(),
            awaited: Awaited::default(),
            window: Window::none(),
            owed: None,
            declined: Cell::new(false),
            connecting: false,
            skipped_messages: 0,
            packets_received: 0,
            unreported: None,
            last_read_ms: now,
        }
    }

    pub(crate) fn options(&self) -> &Options<'a> {
        &self.options
    }

    pub(crate) fn options_mut(&mut self) -> &mut Options<'a> {
        &mut self.options
    }

    pub(crate) fn rx_capacity(&self) -> usize {
        self.inbound.capacity()
    }

    pub(crate) fn is_connecting(&self) -> bool {
        self.connecting
    }

    pub(crate) fn packets_received(&self) -> u32 {
        self.packets_received
    }

    pub(crate) fn skipped_messages(&self) -> u32 {
        self.skipped_messages
    }

    pub(crate) fn pending_messages(&self) -> u32 {
        self.outbound.pending_messages()
    }

    pub(crate) fn dropped_messages(&self) -> u32 {
        self.outbound.dropped_messages()
    }

    /// The packet id the next request takes.
    pub(crate) fn next_packet_id(&self) -> u16 {
        self.ids.peek()
    }

    /// Takes the next packet id that is not in flight in the window.
    // Out of line for code size: subscribe, unsubscribe and two publish
    // paths take ids.
    #[inline(never)]
    pub(crate) fn take_packet_id(&mut self) -> u16 {
        loop {
            let id = self.ids.take();
            if !self.window.contains(id) {
                return id;
            }
        }
    }

    /// Lends the QoS 1 window its slots (see `Engine::set_window`).
    pub(crate) fn set_window(&mut self, slots: &'a mut [u16]) {
        self.window = Window::new(slots);
    }

    /// How many QoS 1 messages may be in flight at once (0: no window).
    pub(crate) fn window_capacity(&self) -> usize {
        self.window.capacity()
    }

    /// Windowed QoS 1 messages sent and not acknowledged yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.window.in_flight()
    }

    /// Whether the window has room for another message.
    pub(crate) fn window_room(&self) -> usize {
        self.window.room()
    }

    /// Whether `id` is in flight in the window.
    pub(crate) fn is_in_flight(&self, id: u16) -> bool {
        self.window.contains(id)
    }

    /// Puts `id` in flight in the window (before its PUBLISH is sent);
    /// false if there is no room or it already is.
    pub(crate) fn send_windowed(&mut self, id: u16) -> bool {
        self.window.insert(id)
    }

    /// Checks the buffers and options and encodes CONNECT into the transmit
    /// buffer; returns its length. Writes nothing when it fails.
    pub(crate) fn encode_connect(&mut self) -> Result<usize, EncodeError> {
        let too_small = |needed, available| EncodeError::BufferTooSmall { needed, available };
        if self.inbound.capacity() < MIN_RX_BUFFER {
            return Err(too_small(MIN_RX_BUFFER, self.inbound.capacity()));
        }
        if self.outbound.capacity() < MIN_TX_BUFFER {
            return Err(too_small(MIN_TX_BUFFER, self.outbound.capacity()));
        }
        let connect = self.connect_packet();
        self.outbound.encode_connect(connect)
    }

    /// The CONNECT the options make.
    fn connect_packet(&self) -> Connect<'a> {
        let o = &self.options;
        Connect {
            client_id: o.client_id.as_bytes(),
            keepalive: o.keepalive_s,
            clean_session: o.clean_session,
            will: o.will,
            username: o.username.map(str::as_bytes),
            password: o.password,
        }
    }

    /// A TCP connection opened at `now`: the session waits for CONNACK
    /// (the driver sends the CONNECT [`Session::encode_connect`] encoded).
    pub(crate) fn opened(&mut self, now: u64) {
        log::debug!(target: PACKET_LOG, "sending {}", Packet::Connect(self.connect_packet()));
        self.connecting = true;
        self.inbound.reset();
        self.packets_received = 0;
        self.awaited.set(None);
        self.owed = None;
        self.window.clear();
        let keepalive_ms = u32::from(self.options.keepalive_s) * 1000;
        let ping_timeout = self.options.effective_ping_timeout_ms();
        self.keepalive = KeepAlive::new(keepalive_ms, ping_timeout, now);
    }

    /// The connection ended: batched messages are dropped with it.
    pub(crate) fn closed(&mut self) {
        self.outbound.drop_pending();
        self.connecting = false;
    }

    /// Where received bytes go; `now` is when the driver reads.
    pub(crate) fn receive_space(&mut self, now: u64) -> &mut [u8] {
        self.last_read_ms = now;
        self.inbound.space()
    }

    /// `n` bytes were written at the start of [`Session::receive_space`].
    pub(crate) fn received(&mut self, n: usize) {
        self.inbound.received(n);
    }

    /// Whether a publish at `now` should first read what has arrived: a
    /// PINGRESP is due, or nothing was read for a while.
    pub(crate) fn read_due(&self, now: u64) -> bool {
        self.keepalive.ping_pending()
            || now.saturating_sub(self.last_read_ms) >= READ_BEFORE_PUBLISH_MS
    }

    /// Keepalive at `now`: whether PINGREQ is due. With `judge_ping` (only
    /// once everything received is handled), an unanswered ping is
    /// [`Error::Timeout`]`(PingResp)`.
    pub(crate) fn keep_alive(&self, now: u64, judge_ping: bool) -> Result<bool, CoreError> {
        if self.connecting {
            return Ok(false);
        }
        match self.keepalive.poll(now) {
            KeepAliveAction::Idle => Ok(false),
            KeepAliveAction::SendPing => Ok(true),
            KeepAliveAction::PingTimedOut if judge_ping => Err(Error::Timeout(Waiting::PingResp)),
            KeepAliveAction::PingTimedOut => Ok(false),
        }
    }

    /// A PINGREQ went out at `now`.
    pub(crate) fn ping_sent(&mut self, now: u64) {
        self.keepalive.ping_sent(now);
    }

    /// When keepalive next needs the driver (none before CONNACK).
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        if self.connecting {
            None
        } else {
            self.keepalive.next_deadline()
        }
    }

    /// The acknowledgement the driver now waits for (`None`: none).
    pub(crate) fn expect(&mut self, awaited: Option<(Waiting, u16)>) {
        self.awaited.set(awaited);
    }

    /// A message skipped with nobody to tell, for a later report.
    pub(crate) fn defer_report(&mut self, size: usize) {
        self.unreported = Some(u32::try_from(size).unwrap_or(u32::MAX));
    }

    /// The size of a message skipped earlier and not reported yet.
    pub(crate) fn take_unreported(&mut self) -> Option<usize> {
        self.unreported
            .take()
            .map(|size| usize::try_from(size).unwrap_or(usize::MAX))
    }

    /// The SUBACK handled last, still in the receive buffer.
    ///
    /// Only its return codes are read again: the packet was decoded and its
    /// codes validated when it was handled, so they are found without
    /// parsing it again: after the remaining length (whose last byte has no
    /// continuation bit) and the packet id.
    pub(crate) fn last_suback(&self) -> Result<SubAck<'_>, CoreError> {
        let packet = self.inbound.packet();
        let length_bytes = packet.iter().skip(1).take(4).position(|&b| b & 0x80 == 0);
        match (packet.first(), length_bytes) {
            (Some(&0x90), Some(n)) => Ok(SubAck {
                packet_id: 0,
                return_codes: packet.get(n + 4..).unwrap_or_default(),
            }),
            _ => Err(Error::UnexpectedPacket(PacketType::SubAck)),
        }
    }

    /// Encodes `packet` behind the batch (see [`Encoded`]).
    pub(crate) fn encode<P: Outgoing + ?Sized>(
        &mut self,
        packet: &P,
    ) -> Result<Encoded, EncodeError> {
        let encoded = self.outbound.encode(packet)?;
        if !matches!(encoded, Encoded::FlushFirst(_)) {
            log::debug!(target: PACKET_LOG, "sending {}", packet.packet());
        }
        Ok(encoded)
    }

    /// Encodes a checked PUBLISH (see [`Encoded`]); QoS 0 is batched when
    /// the options say so.
    pub(crate) fn encode_publish(&mut self, publish: &Publish<'_>) -> Result<Encoded, EncodeError> {
        let batch = self.options.batch_qos0;
        let encoded = self.outbound.encode_publish(publish, batch)?;
        if !matches!(encoded, Encoded::FlushFirst(_)) {
            log::debug!(target: PACKET_LOG, "sending {}", Packet::Publish(*publish));
        }
        Ok(encoded)
    }

    /// How many bytes of batched messages wait in the transmit buffer.
    pub(crate) fn pending_len(&self) -> usize {
        self.outbound.pending_len()
    }

    /// The first `len` bytes of the transmit buffer, to send.
    pub(crate) fn tx(&self, len: usize) -> &[u8] {
        self.outbound.bytes(len)
    }

    /// Everything encoded went out; the send began at `now`.
    pub(crate) fn sent(&mut self, now: u64) {
        self.outbound.sent();
        // Stamped with the time the send began: keepalive errs early, never late.
        self.keepalive.packet_sent(now);
    }

    /// A send failed: the connection is lost, the batch with it.
    pub(crate) fn send_failed(&mut self) {
        self.outbound.drop_pending();
    }

    /// The answer owed to the broker for the event [`Session::poll`] gave
    /// last (PUBACK, PUBREC, PUBCOMP), if any: call it after every event,
    /// once the message it carried was delivered.
    pub(crate) fn reply(&mut self) -> Option<Packet<'static>> {
        let declined = self.declined.take();
        self.owed
            .take()
            .and_then(|owed| owed.answer(declined, &mut self.released))
    }

    /// Handles the next whole packet received, if there is one; `now` is
    /// when its bytes were read.
    pub(crate) fn poll(&mut self, now: u64) -> Result<Option<Event<'_>>, CoreError> {
        self.owed = None;
        match self.inbound.next()? {
            None => Ok(None),
            Some(Frame::Drained(discard)) => Ok(Some(self.skipped(discard, now)?)),
            Some(Frame::Packet { header, header_len }) => {
                let is_ping_response = header.packet_type == PacketType::PingResp;
                self.keepalive.packet_received(now, is_ping_response);
                self.dispatch(&header, header_len).map(Some)
            }
        }
    }

    /// Handles the packet just taken, `header_len` bytes of fixed header.
    fn dispatch(
        &mut self,
        header: &FixedHeader,
        header_len: usize,
    ) -> Result<Event<'_>, CoreError> {
        let body = self.inbound.packet().get(header_len..).unwrap_or_default();
        let Some(decoded) = Packet::decode_from_broker(header, body) else {
            // Only a client sends it: refused before it is decoded.
            return Err(Error::UnexpectedPacket(header.packet_type));
        };
        let packet = decoded?;
        log::debug!(target: PACKET_LOG, "received {packet}");
        if self.connecting {
            // The broker's first packet must be CONNACK.
            return match packet {
                Packet::ConnAck(connack) => match Error::from_refusal(connack.code) {
                    Some(refusal) => {
                        log::warn!("broker refused the connection: {}", connack.code);
                        Err(refusal)
                    }
                    None => accepted(
                        connack.session_present,
                        self.options.clean_session,
                        &mut self.released,
                        &mut self.connecting,
                    ),
                },
                other => Err(Error::UnexpectedPacket(other.packet_type())),
            };
        }
        let event = match packet {
            Packet::Publish(publish) => {
                self.packets_received = self.packets_received.saturating_add(1);
                let (event, owed) = deliver(publish, &self.released, &self.declined);
                self.owed = Some(owed);
                return Ok(event);
            }
            Packet::PubRel(id) => {
                self.released.remove(id);
                self.owed = Some(Owed::PubComp(id));
                Event::PubRel
            }
            Packet::PingResp => Event::PingResp,
            Packet::PubAck(id)
                if !self.awaited.is(Waiting::PubAck, id) && self.window.capacity() > 0 =>
            {
                if self.window.remove(id) {
                    Event::PubAcked(id)
                } else {
                    // With a window, a message may go out twice under one id
                    // (`republish` of one still in flight): its second PUBACK
                    // finds nothing in flight, and is no fault of the broker.
                    log::debug!("PUBACK {id}: nothing in flight with that id (a copy's)");
                    Event::Ignored
                }
            }
            // The acknowledgements a request waits for, matched in one place.
            Packet::PubAck(_) | Packet::SubAck(_) | Packet::UnsubAck(_) => {
                let (kind, id) = match packet {
                    Packet::PubAck(id) => (Waiting::PubAck, id),
                    Packet::SubAck(suback) => (Waiting::SubAck, suback.packet_id),
                    Packet::UnsubAck(id) => (Waiting::UnsubAck, id),
                    // Not reached: the three above only.
                    _ => (Waiting::UnsubAck, 0),
                };
                self.awaited.arrived(kind, packet.packet_type(), id)?;
                Event::Acked
            }
            other => return Err(Error::UnexpectedPacket(other.packet_type())),
        };
        self.packets_received = self.packets_received.saturating_add(1);
        Ok(event)
    }

    /// The message being skipped has drained: acknowledged as the options
    /// say, and reported.
    fn skipped(&mut self, discard: Discard, now: u64) -> Result<Event<'_>, CoreError> {
        self.skipped_messages = self.skipped_messages.saturating_add(1);
        self.packets_received = self.packets_received.saturating_add(1);
        self.keepalive.packet_received(now, false);
        let qos = Publish::qos_of(discard.flags)?;
        let packet_id = discard.packet_id();
        if qos.has_packet_id() && packet_id == 0 {
            // As the decoder refuses it in a message that fits the buffer.
            return Err(Error::Protocol(DecodeError::ZeroPacketId));
        }
        log::debug!(
            target: PACKET_LOG,
            "received {}",
            SkippedPublish {
                flags: discard.flags,
                packet_id,
                size: discard.size
            }
        );
        let acknowledged = qos.has_packet_id() && self.options.acknowledge_undelivered;
        if acknowledged {
            self.owed = Some(Owed::Ack(qos, packet_id));
        }
        log::warn!(
            "skipped a {}-byte message (QoS {}, packet id {packet_id}){}",
            discard.size,
            qos as u8,
            if acknowledged { ", acknowledged" } else { "" }
        );
        Ok(Event::Skipped(Undelivered {
            topic: self.inbound.kept_topic(&discard),
            topic_len: discard.topic_len,
            size: discard.size,
            capacity: self.inbound.capacity(),
            qos,
            packet_id,
            retain: discard.flags & 0b0001 != 0,
            dup: discard.flags & 0b1000 != 0,
            acknowledged,
        }))
    }
}

/// The broker accepted the connection.
fn accepted(
    session_present: bool,
    clean_session: bool,
    released: &mut AwaitingRelease,
    connecting: &mut bool,
) -> Result<Event<'static>, CoreError> {
    if session_present && clean_session {
        log::warn!("the broker answered a clean session with \"session present\"");
        return Err(Error::SessionPresentOnCleanSession);
    }
    if !session_present {
        // A new session: nothing awaits a release any more.
        released.clear();
    }
    *connecting = false;
    Ok(Event::ConnAck { session_present })
}

/// A received PUBLISH: a message to deliver, or a QoS 2 copy; and the
/// answer it owes.
fn deliver<'s>(
    publish: Publish<'s>,
    released: &AwaitingRelease,
    declined: &'s Cell<bool>,
) -> (Event<'s>, Owed) {
    let id = publish.packet_id;
    // A QoS 2 message delivered before and not yet released is a copy:
    // acknowledged again, not delivered twice.
    if publish.qos == QoS::ExactlyOnce && released.contains(id) {
        return (Event::Copy, Owed::Ack(publish.qos, id));
    }
    declined.set(false);
    let message = Message {
        topic: publish.topic,
        payload: publish.payload,
        qos: publish.qos,
        retain: publish.retain,
        dup: publish.dup,
        declined: Some(declined),
    };
    (Event::Message(message), Owed::Delivered(publish.qos, id))
}

/// The packet type an event came from.
pub(crate) fn event_type(event: &Event<'_>) -> PacketType {
    match event {
        Event::Message(_) | Event::Copy | Event::Skipped(_) => PacketType::Publish,
        Event::PubRel => PacketType::PubRel,
        Event::ConnAck { .. } => PacketType::ConnAck,
        Event::Acked | Event::PubAcked(_) | Event::Ignored => PacketType::PubAck,
        Event::PingResp => PacketType::PingResp,
    }
}
