//! The async client: the seed's API as `async fn`s over an
//! embedded-nal-async stack (embassy-net, or any other), a driver of the
//! same sans-IO session as the blocking [`crate::Client`].
//!
//! The driver owns the connection, the [`Timer`] and the deadlines of
//! calls: every wait for the broker races the timer, so a silent broker
//! cannot hang a call here either. `requests.rs` holds the requests and
//! their waits, `io.rs` the reads, sends and sleeps, `race.rs` the two
//! ways a future is bounded. It names no executor and allocates nothing.

use core::net::SocketAddr;

use crate::Timer;
use embedded_nal_async::{AddrType, Dns, TcpConnect};

use crate::driver::{AckCallback, Callback, Callbacks, UndeliveredCallback, checked_will};
use crate::error::{Error, Waiting};
use crate::options::Options;
use crate::packet::{Packet, QoS};
use crate::session::Session;

mod io;
mod race;
mod requests;

/// The error type of an async client on stack `N`.
pub type AsyncClientError<N> = Error<<N as TcpConnect>::Error>;

/// An MQTT 3.1.1 client over any embedded-nal-async stack: the async twin
/// of [`crate::Client`], with the same methods as `async fn`s.
///
/// - `N`: the stack, borrowed: any [`TcpConnect`] (embassy-net's
///   `TcpClient`, for one). Its connections are embedded-io-async streams.
/// - `T`: the [`Timer`] every deadline is measured and awaited on
///   (`umqtt_transports::embassy::EmbassyTimer` on embassy,
///   `umqtt_transports::std_tcp::StdTimer` on std).
///
/// Buffers are borrowed as for the blocking client; nothing is allocated,
/// no executor is named, and every future it returns can be dropped (the
/// connection is then best closed: a half-sent packet cannot be resumed).
///
/// ```no_run
/// use embedded_nal_async::TcpConnect;
/// use umqtt_simple::asynch::{AsyncClientError, Client};
/// use umqtt_simple::{Message, Options, QoS};
/// use umqtt_transports::Timer;
///
/// async fn demo<N: TcpConnect, T: Timer>(
///     net: &N,
///     timer: T,
///     broker: core::net::SocketAddr,
/// ) -> Result<(), AsyncClientError<N>> {
///     let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
///     let mut received = 0;
///     let mut on_message = |msg: Message<'_>| {
///         log::info!("{:?}: {:?}", msg.topic, msg.payload);
///         received += 1;
///     };
///     let mut client = Client::new(net, timer, &mut tx, &mut rx, Options::new("umqtt_async"));
///     client.set_callback(&mut on_message);
///     client.connect(broker).await?;
///     client.subscribe(b"foo_topic", QoS::AtLeastOnce).await?;
///     client.publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce).await?;
///     client.wait_msg().await?;
///     client.disconnect().await?;
///     Ok(())
/// }
/// ```
pub struct Client<'a, N: TcpConnect + 'a, T: Timer> {
    net: &'a N,
    timer: T,
    connection: Option<N::Connection<'a>>,
    /// The protocol: buffers, packet ids, keepalive, acknowledgements.
    session: Session<'a>,
    callbacks: Callbacks<'a>,
    /// No wait for the broker goes past this timer reading
    /// ([`Client::limit_waits`]).
    wait_limit: Option<u64>,
    flush_after_send: bool,
}

impl<'a, N: TcpConnect + 'a, T: Timer> Client<'a, N, T> {
    /// A client that is not connected yet.
    pub fn new(
        net: &'a N,
        timer: T,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Self {
        let now = timer.now_ms();
        Client {
            net,
            timer,
            connection: None,
            session: Session::new(tx, rx, options, now),
            callbacks: Callbacks::default(),
            wait_limit: None,
            flush_after_send: true,
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

    /// The timer.
    pub fn timer(&self) -> &T {
        &self.timer
    }

    /// Whether every packet is followed by the connection's `flush` (the
    /// default: embedded-io lets a writer keep bytes until then, as a TLS
    /// connection does). embassy-net's `flush` waits until the broker's TCP
    /// stack acknowledged the bytes, a round trip per packet: over a plain
    /// embassy-net socket, which sends without it, `false` lets QoS 0
    /// messages follow each other without that wait.
    pub fn set_flush_after_send(&mut self, flush: bool) {
        self.flush_after_send = flush;
    }

    /// Sets the callback that receives every message, including those that
    /// arrive while `publish`, `subscribe` or `unsubscribe` wait for their
    /// acknowledgement (see [`crate::Client::set_callback`]).
    pub fn set_callback(&mut self, callback: Callback<'a>) {
        self.callbacks.message = Some(callback);
    }

    /// Sets the callback that hears of every message too large for the
    /// receive buffer (see [`crate::Client::set_undelivered_callback`]).
    pub fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
        self.callbacks.undelivered = Some(callback);
    }

    /// Lends the QoS 1 window its slots (see [`crate::Client::set_window`]):
    /// up to `slots.len()` QoS 1 messages in flight at once.
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        self.session.set_window(slots);
    }

    /// Sets the callback that hears of every PUBACK of a windowed message
    /// (see [`crate::Client::set_ack_callback`]).
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

    /// Sends the batched QoS 0 messages and waits until every windowed QoS 1
    /// message is acknowledged, for at most `timeout_ms`; returns whether
    /// all were (see [`crate::Client::flush_for`]).
    pub async fn flush_for(&mut self, timeout_ms: u32) -> Result<bool, AsyncClientError<N>> {
        let deadline = self.wait_deadline(self.timer.now_ms(), timeout_ms);
        let result = match self.connected() {
            Ok(()) => self.await_window_empty(deadline).await,
            Err(e) => Err(e),
        };
        self.settle(result)
    }

    /// Sets the last will (call before `connect`). The topic is checked now.
    pub fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), AsyncClientError<N>> {
        self.session.options_mut().will = Some(checked_will(topic, message, retain, qos)?);
        Ok(())
    }

    /// Waits `ms` milliseconds on the timer, without touching any
    /// connection.
    pub async fn pause(&mut self, ms: u32) {
        let until = self.timer.now_ms().saturating_add(u64::from(ms));
        self.timer.sleep_until(until).await;
    }

    /// Whether a connection is open (as far as the client knows).
    pub fn is_connected(&self) -> bool {
        self.connection.is_some() && !self.session.is_connecting()
    }

    /// Caps every wait for the broker at `until`, a reading of the timer;
    /// `None` lifts the cap (see [`crate::Client::limit_waits`]).
    pub fn limit_waits(&mut self, until: Option<u64>) {
        self.wait_limit = until;
    }

    /// Packets the broker sent on the current connection after its CONNACK
    /// (see [`crate::Client::packets_received`]).
    pub fn packets_received(&self) -> u32 {
        self.session.packets_received()
    }

    /// Received messages skipped as too large since the client was created.
    pub fn skipped_messages(&self) -> u32 {
        self.session.skipped_messages()
    }

    /// Batched QoS 0 messages lost with a connection (see
    /// [`crate::Client::dropped_messages`]).
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

    /// Takes a packet id for [`Client::publish_with_id`] (see
    /// [`crate::Client::take_packet_id`]).
    pub fn take_packet_id(&mut self) -> u16 {
        self.session.take_packet_id()
    }

    /// Connects to the broker at `addr` and returns whether the broker kept
    /// a session ("session present"). TCP connect, CONNECT and CONNACK share
    /// one deadline (the connect timeout); an open connection is closed
    /// first; the options are checked before anything is sent.
    pub async fn connect(&mut self, addr: SocketAddr) -> Result<bool, AsyncClientError<N>> {
        let deadline = self.wait_deadline(
            self.timer.now_ms(),
            self.session.options().connect_timeout_ms,
        );
        let result = self.connect_by(addr, deadline).await;
        self.settle(result)
    }

    /// Resolves `host` with `dns` and connects to it; one deadline (the
    /// connect timeout) spans the lookup, TCP connect and CONNACK. A failed
    /// lookup is [`Error::Dns`] (the resolver's reason is logged).
    pub async fn connect_host<D: Dns>(
        &mut self,
        dns: &D,
        host: &str,
        port: u16,
    ) -> Result<bool, AsyncClientError<N>> {
        let deadline = self.wait_deadline(
            self.timer.now_ms(),
            self.session.options().connect_timeout_ms,
        );
        let lookup = dns.get_host_by_name(host, AddrType::Either);
        let ip = match race::before(&mut self.timer, deadline, lookup).await {
            None => return Err(Error::Timeout(Waiting::Dns)),
            Some(Err(e)) => {
                log::warn!("DNS lookup of {host} failed: {e:?}");
                return Err(Error::Dns);
            }
            Some(Ok(ip)) => ip,
        };
        let result = self.connect_by(SocketAddr::new(ip, port), deadline).await;
        self.settle(result)
    }

    /// Closes the connection politely: DISCONNECT (behind any batched
    /// messages, in the same send), flushed whatever
    /// [`Client::set_flush_after_send`] says (a connection dropped with
    /// bytes unsent may lose them: embassy-net's does), then close. The
    /// broker discards the will.
    pub async fn disconnect(&mut self) -> Result<(), AsyncClientError<N>> {
        if self.connection.is_none() {
            return Err(Error::NotConnected);
        }
        let flush = core::mem::replace(&mut self.flush_after_send, true);
        let result = self.send_packet(Packet::Disconnect).await;
        self.flush_after_send = flush;
        self.close();
        log::info!("disconnected");
        result
    }

    /// Sends PINGREQ now; the PINGRESP is handled by later calls. The client
    /// also pings by itself when keepalive is due.
    pub async fn ping(&mut self) -> Result<(), AsyncClientError<N>> {
        let result = self.send_ping().await;
        self.settle(result)
    }

    /// Publishes `payload` to `topic` (see [`crate::Client::publish`]): QoS
    /// 0 returns once the connection took the packet, QoS 1 once the PUBACK
    /// arrived; messages arriving meanwhile go to the callback.
    pub async fn publish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), AsyncClientError<N>> {
        let result = self.publish_inner(topic, payload, retain, qos).await;
        self.settle(result)
    }

    /// Publishes again a QoS 1 message whose PUBACK never came, with DUP set
    /// and the packet id it was first sent with (after a reconnect).
    pub async fn republish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), AsyncClientError<N>> {
        let result = self
            .publish_with_id_inner(topic, payload, retain, packet_id, true)
            .await;
        self.settle(result)
    }

    /// Publishes a QoS 1 message with a packet id from
    /// [`Client::take_packet_id`]; otherwise like [`Client::publish`].
    pub async fn publish_with_id(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), AsyncClientError<N>> {
        let result = self
            .publish_with_id_inner(topic, payload, retain, packet_id, false)
            .await;
        self.settle(result)
    }

    /// Sends the batched QoS 0 messages waiting in the transmit buffer
    /// (see [`crate::Client::flush`]).
    pub async fn flush(&mut self) -> Result<(), AsyncClientError<N>> {
        let result = match self.connected() {
            Ok(()) => self.flush_pending().await,
            Err(e) => Err(e),
        };
        self.settle(result)
    }

    /// Subscribes to `filter` and returns the QoS the broker granted.
    /// A refusal (SUBACK 0x80) is [`Error::SubscribeRefused`].
    pub async fn subscribe(&mut self, filter: &[u8], qos: QoS) -> Result<QoS, AsyncClientError<N>> {
        let mut granted = [None];
        self.subscribe_many(&[(filter, qos)], &mut granted).await?;
        granted[0].ok_or(Error::SubscribeRefused { index: 0 })
    }

    /// Subscribes to several filters in one SUBSCRIBE (see
    /// [`crate::Client::subscribe_many`]).
    pub async fn subscribe_many(
        &mut self,
        filters: &[(&[u8], QoS)],
        granted: &mut [Option<QoS>],
    ) -> Result<(), AsyncClientError<N>> {
        let result = self.subscribe_inner(filters, granted).await;
        self.settle(result)
    }

    /// Unsubscribes from `filter` and waits for the UNSUBACK.
    pub async fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), AsyncClientError<N>> {
        let result = self.unsubscribe_inner(filter).await;
        self.settle(result)
    }

    /// Waits for one packet from the broker and handles it: a message goes
    /// to the callback, anything else is handled inside. Pings when
    /// keepalive is due and fails with [`Error::Timeout`]`(PingResp)` if the
    /// broker stops answering.
    pub async fn wait_msg(&mut self) -> Result<(), AsyncClientError<N>> {
        loop {
            if self.wait_msg_for(u32::MAX).await? {
                return Ok(());
            }
        }
    }

    /// Like [`Client::wait_msg`], for at most `timeout_ms`; returns whether
    /// a packet was handled.
    pub async fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, AsyncClientError<N>> {
        let deadline = self.wait_deadline(self.timer.now_ms(), timeout_ms);
        let result = self.next_unsolicited(Some(deadline)).await;
        self.settle(result)
    }

    /// Handles one packet if one has arrived, and returns at once otherwise;
    /// returns whether a packet was handled.
    pub async fn check_msg(&mut self) -> Result<bool, AsyncClientError<N>> {
        let result = self.next_unsolicited(None).await;
        self.settle(result)
    }
}

/// The internals: the connection and the deadlines around the
/// [`Session`], which holds the protocol.
impl<'a, N: TcpConnect + 'a, T: Timer> Client<'a, N, T> {
    /// The deadline of a wait for the broker of `timeout_ms` from `now`,
    /// within the cap set by [`Client::limit_waits`].
    fn wait_deadline(&self, now: u64, timeout_ms: u32) -> u64 {
        let deadline = now.saturating_add(u64::from(timeout_ms));
        self.wait_limit
            .map_or(deadline, |limit| deadline.min(limit))
    }

    /// Closes the connection if `result` is an error that lost it.
    fn settle<V>(
        &mut self,
        result: Result<V, AsyncClientError<N>>,
    ) -> Result<V, AsyncClientError<N>> {
        if let Err(e) = &result
            && e.is_connection_lost()
            && self.connection.is_some()
        {
            log::warn!("connection lost: {e:?}");
            self.close();
        }
        result
    }

    /// Drops the connection (which closes it) and what was batched for it.
    fn close(&mut self) {
        self.session.closed();
        self.connection = None;
    }

    fn connected(&self) -> Result<(), AsyncClientError<N>> {
        if self.is_connected() {
            Ok(())
        } else {
            Err(Error::NotConnected)
        }
    }
}
