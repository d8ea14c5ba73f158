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
use receive::Listen;

use core::net::SocketAddr;

use crate::error::CoreError;
use crate::options::Options;
use crate::packet::{Packet, QoS};
use crate::session::{Encoded, Session};

/// What the front-end does next for the request it pumps.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Io {
    /// Send [`Engine::outgoing`], whole, before `deadline` (a clock
    /// reading); then [`Engine::sent`], or [`Engine::send_failed`] and the
    /// connection is lost.
    Send {
        /// No byte of it goes out after this.
        deadline: u64,
    },
    /// Read what the connection has now into [`Engine::receive_space`],
    /// without waiting; then [`Engine::received`] (0: nothing there).
    Read,
    /// Wait until data may have arrived, or the clock reads `until`; then
    /// [`Engine::waited`] (or [`Engine::received`], if the wait read).
    Wait {
        /// The latest wake-up.
        until: u64,
    },
    /// The request settled: its answer (see each front-end method for
    /// what the `bool` means), or why it failed.
    Done(Result<bool, CoreError>),
}

/// Bytes the front-end sends next: `len` bytes of the transmit buffer,
/// then the request's payload if `with_payload`.
#[derive(Debug, Clone, Copy)]
struct Out {
    len: usize,
    with_payload: bool,
    deadline: u64,
    /// A PINGREQ: keepalive waits for its answer once it went out.
    ping: bool,
}

/// The sans-IO core both clients pump: one MQTT session and the sequence of
/// every request over it. Its methods here are the clients' too (they
/// dereference to it).
pub struct Engine<'a> {
    session: Session<'a>,
    callbacks: Callbacks<'a>,
    /// No wait for the broker goes past this clock reading.
    wait_limit: Option<u64>,
    /// The front-end holds an open connection.
    open: bool,
    /// Bytes to send before anything else.
    out: Option<Out>,
    /// A send began and did not end: a cancelled async call left half a
    /// packet on the wire.
    sending: bool,
    /// A packet owed to the broker (a reply, a ping), to encode next.
    owed: Option<Packet<'static>>,
    /// A packet handled while its reply goes out: the request hears of it
    /// once the reply is sent.
    handled: Option<callbacks::Handled>,
    /// Where the wait for packets stands.
    rx: Listen,
}

impl<'a> Engine<'a> {
    /// An engine over the client's buffers, not connected.
    pub(crate) fn new(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>, now: u64) -> Self {
        Engine {
            session: Session::new(tx, rx, options, now),
            callbacks: Callbacks::default(),
            wait_limit: None,
            open: false,
            out: None,
            sending: false,
            owed: None,
            handled: None,
            rx: Listen::default(),
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
        self.wait_limit = until;
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
    pub fn wait_deadline(&self, now: u64, timeout_ms: u32) -> u64 {
        let deadline = now.saturating_add(u64::from(timeout_ms));
        self.wait_limit
            .map_or(deadline, |limit| deadline.min(limit))
    }

    /// Checks the buffers and options and encodes CONNECT, before the
    /// front-end touches the network (an open connection's batch stays as
    /// it was when this fails). The request it returns, pumped once the
    /// front-end opened a connection to `addr`, sends it and awaits CONNACK
    /// until `deadline`; it answers "session present".
    pub fn connect(
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
    pub fn closed(&mut self) {
        self.session.closed();
        self.open = false;
        self.out = None;
        self.sending = false;
        self.owed = None;
        self.handled = None;
    }

    /// What the request does next; `now` is a fresh clock reading.
    pub fn step(&mut self, request: &mut dyn Request, now: u64) -> Io {
        match self.advance(request, now) {
            Ok(io) => io,
            Err(e) => {
                self.session.expect(None);
                Io::Done(Err(e))
            }
        }
    }

    fn advance(&mut self, request: &mut dyn Request, now: u64) -> Result<Io, CoreError> {
        loop {
            if let Some(out) = self.out {
                self.sending = true;
                return Ok(Io::Send {
                    deadline: out.deadline,
                });
            }
            if let Some(packet) = self.owed.take() {
                self.queue(packet, now)?;
                continue;
            }
            if let Some(io) = request.advance(self, now)? {
                return Ok(io);
            }
        }
    }

    /// The bytes [`Io::Send`] asks for: the head from the transmit buffer,
    /// then the request's payload (a publish too large for the buffer).
    pub fn outgoing<'s>(&'s self, request: &'s dyn Request) -> (&'s [u8], &'s [u8]) {
        match self.out {
            Some(out) => {
                let tail = if out.with_payload {
                    request.payload()
                } else {
                    &[]
                };
                (self.session.tx(out.len), tail)
            }
            None => (&[], &[]),
        }
    }

    /// What [`Io::Send`] asked for went out; the send began at `now`.
    pub fn sent(&mut self, now: u64) {
        self.sending = false;
        if let Some(out) = self.out.take() {
            self.session.sent(now);
            if out.ping {
                self.session.ping_sent(now);
                log::trace!("PINGREQ sent");
            }
        }
    }

    /// The send [`Io::Send`] asked for failed: the connection is lost.
    pub fn send_failed(&mut self) {
        self.sending = false;
        self.out = None;
        self.session.send_failed();
    }

    /// Where [`Io::Read`] (or a wait that reads) puts the bytes; `now` is
    /// when the front-end reads.
    pub fn receive_space(&mut self, now: u64) -> &mut [u8] {
        self.session.receive_space(now)
    }

    /// `n` bytes were read into [`Engine::receive_space`] (0: none were
    /// there).
    pub fn received(&mut self, n: usize) {
        self.session.received(n);
        self.rx.read(n > 0);
    }

    /// An [`Io::Wait`] ended without reading.
    pub fn waited(&mut self) {
        self.rx.woke();
    }

    /// Encodes `packet` behind the batch, to send next.
    fn queue(&mut self, packet: Packet<'static>, now: u64) -> Result<(), CoreError> {
        let ping = packet == Packet::PingReq;
        match self.session.encode(&packet)? {
            Encoded::FlushFirst(len) => {
                self.owed = Some(packet);
                self.send(len, now, false, false);
            }
            Encoded::Send(len) | Encoded::SendWithPayload(len) => self.send(len, now, false, ping),
            Encoded::Batched => {}
        }
        Ok(())
    }

    /// Sends `len` bytes of the transmit buffer (and the payload) next,
    /// within the send timeout from `now`.
    fn send(&mut self, len: usize, now: u64, with_payload: bool, ping: bool) {
        let send_timeout = self.session.options().send_timeout_ms;
        self.out = Some(Out {
            len,
            with_payload,
            deadline: now.saturating_add(u64::from(send_timeout)),
            ping,
        });
    }

    /// Sends the batched messages next, if there are any.
    fn flush_batch(&mut self, now: u64) {
        match self.session.pending_len() {
            0 => {}
            len => self.send(len, now, false, false),
        }
    }

    fn connected(&self) -> Result<(), CoreError> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(crate::Error::NotConnected)
        }
    }

    /// Handles the next whole packet received, if there is one: delivers a
    /// message or a report to its callback, and queues what the session
    /// owes the broker for it.
    fn take_packet(&mut self, now: u64) -> Result<Option<callbacks::Handled>, CoreError> {
        let handled = match self.session.poll(now)? {
            None => return Ok(None),
            Some(event) => self.callbacks.hand_over(event),
        };
        if let Some(reply) = self.session.reply() {
            self.queue(reply, now)?;
        }
        Ok(Some(handled))
    }
}
