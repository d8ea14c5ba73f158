//! The request engine: every request's sequence, without sockets, clocks or
//! waiting, over the sans-IO session (`crate::session`).
//!
//! A front-end (the blocking [`crate::Client`], the async
//! [`crate::asynch::Client`]) owns the connection and the time. It makes a
//! [`Request`] and pumps the [`Engine`] until the request settles:
//!
//! ```text
//! loop {
//!     match engine.step(&mut request, now) {
//!         Io::Send { deadline } => send engine.outgoing(&request), whole, before deadline;
//!                                  then engine.sent(now) (or engine.send_failed()),
//!         Io::Read              => read what has arrived into engine.receive_space(now),
//!                                  without waiting; then engine.received(n),
//!         Io::Wait { until }    => wait for data or `until`; then engine.waited()
//!                                  (or engine.received(n) if the wait read bytes),
//!         Io::Done(result)      => return result,
//!     }
//! }
//! ```
//!
//! Everything else (checking the arguments, being connected, the window,
//! packet ids, encoding, answering the broker, keepalive, the deadline of
//! each wait, matching the acknowledgement, handing messages to the
//! callbacks) is decided here, once for both front-ends. The shared settings
//! and counters ([`Engine::set_callback`], [`Engine::in_flight`], ...) are
//! the clients' too: both dereference to their engine.
//!
//! Adding a request kind (MQTT 5's AUTH, say) is a type in [`requests`]
//! implementing [`Request`], and a one-line public method in each
//! front-end; see docs/ENGINE.md.

mod callbacks;
mod checks;
mod publish;
mod receive;
mod request;
pub mod requests;

pub use callbacks::{AckCallback, Callback, UndeliveredCallback};
pub use request::Request;

use callbacks::Callbacks;

use core::net::SocketAddr;

use crate::error::{CoreError, Error, Waiting};
use crate::options::Options;
use crate::packet::{
    EncodeError, FixedHeader, Outgoing, Packet, PacketType, QoS, Writer, header_of,
};
use crate::session::{Encoded, Session};

/// What the front-end does next for the request it pumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Send `Engine::outgoing`, whole, before `deadline` (a clock
    /// reading); then `Engine::sent`, or `Engine::send_failed` and the
    /// connection is lost.
    Send {
        /// No byte of it goes out after this.
        deadline: u64,
    },
    /// Read what the connection has now into `Engine::receive_space`,
    /// without waiting; then `Engine::received` (0: nothing there).
    Read,
    /// Wait until data may have arrived, or the clock reads `until`; then
    /// `Engine::waited` (or `Engine::received`, if the wait read).
    Wait {
        /// The latest wake-up.
        until: u64,
    },
    /// The request settled: its answer (see each front-end method for
    /// what the `bool` means), or why it failed.
    Done(Result<bool, CoreError>),
}

/// A packet the engine owes the broker: a reply the session made (PUBACK,
/// PUBREC, PUBCOMP), PINGREQ or DISCONNECT. None carries more than a packet
/// id, so it is kept as its type and id: this is what the client's RAM
/// holds of it (a `Packet` would take 100 bytes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Owed {
    packet_type: PacketType,
    id: u16,
}

impl Owed {
    const PING: Owed = Owed {
        packet_type: PacketType::PingReq,
        id: 0,
    };
    const DISCONNECT: Owed = Owed {
        packet_type: PacketType::Disconnect,
        id: 0,
    };

    /// One of the packets above, kept.
    fn of(packet: &Packet<'_>) -> Owed {
        let id = match *packet {
            Packet::PubAck(id) | Packet::PubRec(id) | Packet::PubComp(id) => id,
            _ => 0,
        };
        Owed {
            packet_type: packet.packet_type(),
            id,
        }
    }

    /// PINGREQ and DISCONNECT carry no packet id.
    fn has_id(self) -> bool {
        !matches!(
            self.packet_type,
            PacketType::PingReq | PacketType::Disconnect
        )
    }
}

/// Encoded by itself: two or four bytes, without [`Packet`]'s encoder.
impl Outgoing for Owed {
    fn header(&self) -> FixedHeader {
        header_of(self.packet_type, if self.has_id() { 2 } else { 0 })
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        if self.has_id() {
            w.u16(self.id);
        }
    }

    /// The fixed header's two bytes, then the packet id if there is one.
    fn encode_checked(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let [hi, lo] = self.id.to_be_bytes();
        let first = self.header().first_byte();
        let (bytes, len) = if self.has_id() {
            ([first, 2, hi, lo], 4)
        } else {
            ([first, 0, 0, 0], 2)
        };
        let available = buf.len();
        let (Some(dst), Some(src)) = (buf.get_mut(..len), bytes.get(..len)) else {
            return Err(EncodeError::BufferTooSmall {
                needed: len,
                available,
            });
        };
        dst.copy_from_slice(src);
        Ok(len)
    }

    fn packet(&self) -> Packet<'_> {
        match self.packet_type {
            PacketType::PubAck => Packet::PubAck(self.id),
            PacketType::PubRec => Packet::PubRec(self.id),
            PacketType::PubComp => Packet::PubComp(self.id),
            PacketType::PingReq => Packet::PingReq,
            _ => Packet::Disconnect,
        }
    }
}

/// What follows the bytes of the transmit buffer the front-end sends next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Out {
    /// Nothing.
    Buffer,
    /// The request's payload (a publish too large for the buffer).
    WithPayload,
    /// Nothing; the bytes are a PINGREQ, whose answer keepalive awaits once
    /// it went out.
    Ping,
}

/// The sans-IO core both clients pump: one MQTT session and the sequence of
/// every request over it. Its methods here are the clients' too (they
/// dereference to it).
pub struct Engine<'a> {
    session: Session<'a>,
    callbacks: Callbacks<'a>,
    /// No wait for the broker goes past this clock reading (`u64::MAX`:
    /// none).
    wait_limit: u64,
    /// The front-end holds an open connection.
    open: bool,
    /// Bytes of the transmit buffer to send before anything else (0:
    /// none), and what follows them.
    out_len: usize,
    out: Out,
    /// A send began and did not end: a cancelled async call left half a
    /// packet on the wire.
    sending: bool,
    /// A packet owed to the broker (a reply, a ping), to encode next.
    owed: Option<Owed>,
    /// Where the current round of reading stands.
    read: receive::Read,
}

impl<'a> Engine<'a> {
    /// An engine over the client's buffers, not connected.
    pub(crate) fn new(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>, now: u64) -> Self {
        Engine {
            session: Session::new(tx, rx, options, now),
            callbacks: Callbacks::default(),
            wait_limit: u64::MAX,
            open: false,
            out_len: 0,
            out: Out::Buffer,
            sending: false,
            owed: None,
            read: receive::Read::NotAsked,
        }
    }

    /// The options in use.
    pub fn options(&self) -> &Options<'a> {
        self.session.options()
    }

    /// Replaces the options; they take effect at the next `connect`.
    pub fn set_options(&mut self, options: Options<'a>) {
        *self.session.options_mut() = options;
    }

    /// Sets the callback that receives every message, including those that
    /// arrive while `publish`, `subscribe` or `unsubscribe` wait for their
    /// acknowledgement.
    ///
    /// The callback cannot use the client: the client borrows it. So it
    /// cannot publish from inside a delivery, which in the original can
    /// recurse without bound (its README warns of it); the compiler refuses:
    ///
    /// ```compile_fail
    /// use umqtt_simple::{Client, Message, Options, QoS};
    /// use umqtt_transports::std_tcp::{StdClock, StdTcpStack};
    ///
    /// let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    /// let mut client =
    ///     Client::new(StdTcpStack::new(), StdClock::new(), &mut tx, &mut rx, Options::new("c"));
    /// let mut answer = |_: Message<'_>| {
    ///     let _ = client.publish(b"replies", b"pong", false, QoS::AtLeastOnce);
    /// };
    /// client.set_callback(&mut answer); // error: `client` is already borrowed by `answer`
    /// ```
    ///
    /// Keep what the answer needs (in a `Cell`, a `RefCell` or a fixed-size
    /// queue the closure borrows) and publish it after `wait_msg` returns:
    /// the `reply` example does so.
    // Out of line for code size (measured).
    #[inline(never)]
    pub fn set_callback(&mut self, callback: Callback<'a>) {
        self.callbacks.message = Some(callback);
    }

    /// Sets the callback that hears of every message too large for the
    /// receive buffer: read to its end, thrown away, acknowledged or not as
    /// [`Options::acknowledge_undelivered`] says, then reported here with
    /// its topic (as much as fits), size, QoS and packet id, also when it
    /// arrives inside `publish`, `subscribe` or `unsubscribe`.
    ///
    /// Without it, `wait_msg`, `wait_msg_for` and `check_msg` report such a
    /// message as [`crate::Error::MessageTooLarge`] (the next one does, for
    /// one that arrived inside another call).
    pub fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
        self.callbacks.undelivered = Some(callback);
    }

    /// Lends the QoS 1 window its slots: up to `slots.len()` QoS 1 messages
    /// may then be in flight at once. A QoS 1 `publish` (and
    /// `publish_with_id`, `republish`) returns once the message is handed
    /// to the stack, waiting only while the window is full (for at most the
    /// ack timeout: then [`crate::Error::Timeout`]`(PubAck)`); PUBACKs are
    /// matched by packet id in any order and reported to the
    /// [`Engine::set_ack_callback`] callback; `flush_for` waits until all
    /// are in. Ids are never reused while in flight; the wire order is the
    /// publish order.
    ///
    /// Without a window (the default, as in the original) every QoS 1
    /// publish waits for its PUBACK. A lost connection forgets what was in
    /// flight: a message whose PUBACK did not come is the application's to
    /// send again (umqtt-robust's outbox does it).
    ///
    /// ```
    /// # use umqtt_simple::{Client, Options};
    /// # use umqtt_transports::std_tcp::{StdClock, StdTcpStack};
    /// let (mut tx, mut rx, mut window) = ([0u8; 512], [0u8; 512], [0u16; 32]);
    /// let mut client = Client::new(StdTcpStack::new(), StdClock::new(), &mut tx, &mut rx, Options::new("w"));
    /// client.set_window(&mut window);
    /// assert_eq!((client.in_flight(), client.window_capacity()), (0, 32));
    /// ```
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        self.session.set_window(slots);
    }

    /// Sets the callback that hears of every PUBACK of a windowed message,
    /// with its packet id (from [`Engine::take_packet_id`] with
    /// `publish_with_id`, to tie it to a message).
    pub fn set_ack_callback(&mut self, callback: AckCallback<'a>) {
        self.callbacks.acked = Some(callback);
    }

    /// How many QoS 1 messages may be in flight at once (0: no window).
    pub fn window_capacity(&self) -> usize {
        self.session.window_capacity()
    }

    /// Windowed QoS 1 messages sent and not acknowledged yet.
    pub fn in_flight(&self) -> usize {
        self.session.in_flight()
    }

    /// Whether the windowed message with `packet_id` is still unacknowledged.
    pub fn is_in_flight(&self, packet_id: u16) -> bool {
        self.session.is_in_flight(packet_id)
    }

    /// Whether a connection is open and its CONNACK in (as far as the
    /// client knows).
    pub fn is_connected(&self) -> bool {
        self.open && !self.session.is_connecting()
    }

    /// Caps every wait for the broker (TCP connect, CONNACK, acknowledgements,
    /// `wait_msg_for`) at `until`, a reading of the client's clock; `None`
    /// lifts the cap. Each wait keeps its own timeout too, and ends at the
    /// earlier of the two; an acknowledgement wait cut short by the cap ends
    /// the connection like any other missing acknowledgement.
    ///
    /// For layers that bound a whole call made of several waits: umqtt-robust
    /// sets it to the call's deadline, so reconnects cannot stretch a call.
    pub fn limit_waits(&mut self, until: Option<u64>) {
        self.wait_limit = until.unwrap_or(u64::MAX);
    }

    /// How many packets the broker sent on the current connection after its
    /// CONNACK and the client handled: messages (skipped oversize ones
    /// included), acknowledgements and PINGRESPs. Starts again from 0 on
    /// every `connect`.
    ///
    /// It tells whether a connection ever worked beyond its CONNACK:
    /// umqtt-robust counts one lost before its count grew as a failed
    /// attempt, so a broker that accepts and then never answers is backed off.
    pub fn packets_received(&self) -> u32 {
        self.session.packets_received()
    }

    /// How many received messages were too large for the receive buffer and
    /// were skipped since the client was created.
    pub fn skipped_messages(&self) -> u32 {
        self.session.skipped_messages()
    }

    /// How many batched QoS 0 messages ([`Options::batch_qos0`]) were lost
    /// since the client was created: accepted by `publish`, then dropped with
    /// a connection that failed or was closed before they were sent.
    pub fn dropped_messages(&self) -> u32 {
        self.session.dropped_messages()
    }

    /// How many batched QoS 0 messages wait in the transmit buffer.
    pub fn pending_messages(&self) -> u32 {
        self.session.pending_messages()
    }

    /// The packet id the next QoS 1 publish, subscribe or unsubscribe uses.
    pub fn next_packet_id(&self) -> u16 {
        self.session.next_packet_id()
    }

    /// Takes a packet id (1 to 65 535, never 0) for a QoS 1 message the
    /// caller sends with `publish_with_id` and keeps until it is
    /// acknowledged, so that it can send it again as the same message
    /// (`republish`) after a lost connection.
    pub fn take_packet_id(&mut self) -> u16 {
        self.session.take_packet_id()
    }

    /// Sets the last will, checked (the front-ends' `set_last_will`).
    pub(crate) fn set_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), CoreError> {
        self.session.options_mut().will = Some(checks::checked_will(topic, message, retain, qos)?);
        Ok(())
    }

    /// The deadline of a wait for the broker of `timeout_ms` from `now`,
    /// within the cap set by [`Engine::limit_waits`].
    pub(crate) fn wait_deadline(&self, now: u64, timeout_ms: u32) -> u64 {
        now.saturating_add(u64::from(timeout_ms))
            .min(self.wait_limit)
    }

    /// When a connect begun at `now` must be done: the connect timeout,
    /// within the cap of [`Engine::limit_waits`].
    pub(crate) fn connect_deadline(&self, now: u64) -> u64 {
        self.wait_deadline(now, self.options().connect_timeout_ms)
    }

    /// Whether `result` is an error that lost the connection (logged): the
    /// front-end then closes it.
    pub(crate) fn lost<T, E: core::fmt::Debug>(&self, result: &Result<T, Error<E>>) -> bool {
        match result {
            Err(e) if e.is_connection_lost() => {
                log::warn!("connection lost: {e:?}");
                true
            }
            _ => false,
        }
    }

    /// Checks the buffers and options and encodes CONNECT, before the
    /// front-end touches the network (an open connection's batch stays as
    /// it was when this fails). The request it returns, pumped once the
    /// front-end opened a connection to `addr`, sends it and awaits CONNACK
    /// until `deadline`; it answers "session present".
    pub(crate) fn connect(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<requests::Connect, CoreError> {
        let len = self.session.encode_connect()?;
        log::info!("connecting to {addr} as {:?}", self.options().client_id);
        Ok(requests::Connect::new(addr, len, deadline))
    }

    /// The connection ended (the front-end closed or lost it): batched
    /// messages and what was owed to it go with it.
    // Out of line for code size: every call's settle closes on a lost
    // connection (five copies in a program that makes five calls).
    #[inline(never)]
    pub(crate) fn closed(&mut self) {
        self.session.closed();
        self.open = false;
        self.out_len = 0;
        self.sending = false;
        self.owed = None;
    }

    /// What the request does next; `now` is a fresh clock reading.
    pub(crate) fn step(&mut self, request: &mut dyn Request, now: u64) -> Io {
        match self.advance(request, now) {
            Ok(io) => io,
            Err(e) => {
                self.session.expect(None);
                Io::Done(Err(e))
            }
        }
    }

    fn advance(&mut self, request: &mut dyn Request, now: u64) -> Result<Io, CoreError> {
        if core::mem::take(&mut self.sending) {
            // A send began and the front-end never said how it ended: an
            // async call was dropped in the middle of it, leaving part of a
            // packet on the wire. Nothing sent after it could be read.
            self.out_len = 0;
            return Err(Error::Timeout(Waiting::Send));
        }
        loop {
            if self.out_len > 0 {
                // Each send gets the send timeout from when it begins (and
                // no more than the request allows: CONNECT, its deadline).
                self.sending = true;
                let send_timeout = self.session.options().send_timeout_ms;
                let deadline = now.saturating_add(u64::from(send_timeout));
                return Ok(Io::Send {
                    deadline: request
                        .send_deadline()
                        .map_or(deadline, |d| d.min(deadline)),
                });
            }
            if let Some(owed) = self.owed.take() {
                self.queue(owed)?;
                continue;
            }
            if let Some(io) = request.advance(self, now)? {
                return Ok(io);
            }
        }
    }

    /// The bytes [`Io::Send`] asks for: the head from the transmit buffer,
    /// then the request's payload (a publish too large for the buffer).
    pub(crate) fn outgoing<'s>(&'s self, request: &'s dyn Request) -> (&'s [u8], &'s [u8]) {
        let tail = match self.out {
            Out::WithPayload => request.payload(),
            Out::Buffer | Out::Ping => &[],
        };
        (self.session.tx(self.out_len), tail)
    }

    /// What [`Io::Send`] asked for went out; the send began at `now`.
    // Out of line for code size: one copy for every call's pump.
    #[inline(never)]
    pub(crate) fn sent(&mut self, now: u64) {
        self.sending = false;
        if core::mem::take(&mut self.out_len) > 0 {
            self.session.sent(now);
            if self.out == Out::Ping {
                self.session.ping_sent(now);
                log::trace!("PINGREQ sent");
            }
        }
    }

    /// The send [`Io::Send`] asked for failed: the connection is lost.
    // Out of line for code size (measured).
    #[inline(never)]
    pub(crate) fn send_failed(&mut self) {
        self.sending = false;
        self.out_len = 0;
        self.session.send_failed();
    }

    /// Where [`Io::Read`] (or a wait that reads) puts the bytes; `now` is
    /// when the front-end reads.
    pub(crate) fn receive_space(&mut self, now: u64) -> &mut [u8] {
        self.session.receive_space(now)
    }

    /// `n` bytes were read into `Engine::receive_space` (0: none were
    /// there).
    pub(crate) fn received(&mut self, n: usize) {
        self.session.received(n);
        self.read = if n > 0 {
            receive::Read::Got
        } else {
            receive::Read::Empty
        };
    }

    /// An [`Io::Wait`] ended without reading.
    pub(crate) fn waited(&mut self) {
        self.read = receive::Read::NotAsked;
    }

    /// Encodes `packet` behind the batch, to send next.
    fn queue(&mut self, owed: Owed) -> Result<(), CoreError> {
        let ping = owed == Owed::PING;
        match self.session.encode(&owed)? {
            Encoded::FlushFirst(len) => {
                self.owed = Some(owed);
                self.send(len, Out::Buffer);
            }
            Encoded::Send(len) | Encoded::SendWithPayload(len) => {
                self.send(len, if ping { Out::Ping } else { Out::Buffer })
            }
            Encoded::Batched => {}
        }
        Ok(())
    }

    /// Sends `len` bytes of the transmit buffer next, then what `out` says
    /// (the send timeout is counted when the send begins: `advance`).
    fn send(&mut self, len: usize, out: Out) {
        self.out_len = len;
        self.out = out;
    }

    /// Sends the batched messages next, if there are any.
    fn flush_batch(&mut self) {
        match self.session.pending_len() {
            0 => {}
            len => self.send(len, Out::Buffer),
        }
    }

    fn connected(&self) -> Result<(), CoreError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }

    /// Handles the next whole packet received, if there is one: delivers a
    /// message or a report to its callback, and keeps what the session
    /// owes the broker for it (`owed`: the engine's loop encodes it next).
    // Out of line for code size: its error paths cost more inlined into
    // the receive loop than a call does.
    #[inline(never)]
    fn take_packet(&mut self, now: u64) -> Result<Option<callbacks::Handled>, CoreError> {
        let handled = match self.session.poll(now)? {
            None => return Ok(None),
            Some(event) => self.callbacks.hand_over(event),
        };
        if let Some(reply) = self.session.reply() {
            // Encoded by the engine's loop, before the request hears of
            // the packet.
            self.owed = Some(Owed::of(&reply));
        }
        Ok(Some(handled))
    }
}
