//! The reconnecting client: umqtt-simple's client plus a connection state
//! machine.
//!
//! Every operation runs the same loop: make sure a connection is up (waiting
//! out the backoff within the call's deadline), do the inner client's
//! operation, and on an error that lost the connection, note the loss and go
//! round again. A reconnect restores what the broker forgot: subscriptions,
//! when it reports no session present.

use core::net::SocketAddr;

use embedded_nal::{Dns, TcpClientStack};
use umqtt_simple::{Callback, Client, Error, Options, QoS, UndeliveredCallback, Waiting};
use umqtt_simple::{Clock, Spin, Wait};

mod call;
mod outbox;
mod reconnect;

use crate::backoff::Random;
use crate::error::RobustError;
use crate::event::EventCallback;
use crate::options::RobustOptions;
use crate::outbox::{Flow, Outbox, OutboxOptions, Queued};
use crate::policy::{Policy, publish_waits_for, unacked, window_without_outbox};
use crate::subscriptions::Subscriptions;

/// Connects the inner client to a host by name: `Client::connect_host`,
/// kept as a function pointer so that reconnecting needs no `Dns` bound.
type ConnectHost<'a, S, C, W> =
    fn(&mut Client<'a, S, C, W>, &str, u16) -> Result<bool, Error<<S as TcpClientStack>::Error>>;

/// Where the client connects, and connects again.
enum Broker<'a, S: TcpClientStack, C: Clock, W: Wait<S>> {
    Addr(SocketAddr),
    /// A host name, looked up again on every attempt: a broker that moves
    /// to another address is found after the reconnect.
    Host {
        name: &'a str,
        port: u16,
        connect: ConnectHost<'a, S, C, W>,
    },
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Clone for Broker<'_, S, C, W> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> Copy for Broker<'_, S, C, W> {}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> core::fmt::Display for Broker<'_, S, C, W> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Broker::Addr(addr) => write!(f, "{addr}"),
            Broker::Host { name, port, .. } => write!(f, "{name}:{port}"),
        }
    }
}

/// Error type of a reconnecting client on stack `S`.
pub type RobustClientError<S> = RobustError<<S as TcpClientStack>::Error>;

/// A client that reconnects by itself: the API of [`umqtt_simple::Client`],
/// plus backoff, resubscription and QoS 1 retransmission.
///
/// `SUB_BYTES` is the memory for remembered subscriptions (each filter takes
/// its length plus 3 bytes; default 256).
///
/// What it guarantees:
/// - a QoS 1 `publish` that returned `Ok` was received by the broker at least
///   once; if the connection drops before the PUBACK, the message is sent
///   again with DUP set and the same packet id after the reconnect, within
///   the same call. One whose deadline passed first returns
///   [`RobustError::TimedOut`] with the packet id it was sent with
///   (`unacked`): [`RobustClient::republish`] sends it again as the same
///   message.
/// - with a window or an outbox ([`RobustClient::set_window_in_ram`],
///   [`RobustClient::set_outbox`]), a QoS 1 message `publish` accepted stays
///   in the outbox until its PUBACK; after a reconnect every one not
///   acknowledged goes again, DUP and same packet id, oldest first, before
///   newer ones. A window never runs without that storage.
/// - subscriptions survive broker restarts: after a reconnect without a
///   session, they are sent again.
/// - no call outlives its deadline ([`RobustOptions::call_timeout_ms`]),
///   whatever the broker does; `check_msg` never waits for the backoff, it
///   only tries to reconnect when an attempt is due.
/// - a broker that accepts connections and then fails them (no CONNACK, no
///   answer in time, a protocol error) is backed off like one that refuses
///   them: until the broker sent a packet on a connection after its CONNACK
///   (an acknowledgement, a message or a PINGRESP; answers to the
///   resubscription do not count), such a failure counts as a failed
///   attempt, and `max_attempts` applies. A connection closed by the broker
///   or the network is an ordinary loss: the reconnect comes at once.
///
/// QoS 0 can still lose messages: one written into a connection that had
/// just died (without the stack noticing yet) is gone, and so are batched
/// ones ([`Options::batch_qos0`]) still waiting in the transmit buffer when
/// the connection is lost. The loss of the connection is reported
/// ([`Event::Lost`](crate::Event::Lost)) when it is noticed, the batched messages lost with it
/// as [`Event::Dropped`](crate::Event::Dropped).
pub struct RobustClient<
    'a,
    S: TcpClientStack,
    C: Clock,
    W: Wait<S> = Spin,
    const SUB_BYTES: usize = 256,
> {
    inner: Client<'a, S, C, W>,
    broker: Option<Broker<'a, S, C, W>>,
    subscriptions: Subscriptions<SUB_BYTES>,
    policy: Policy<'a>,
    /// Messages accepted and not yet delivered, if the application lent
    /// an outbox.
    flow: Option<Flow<'a>>,
    /// A window given before any outbox: lent to the inner client with the
    /// outbox, since a message in flight must be kept until its PUBACK.
    window: Option<&'a mut [u16]>,
}

impl<'a, S: TcpClientStack, C: Clock> RobustClient<'a, S, C, Spin> {
    /// A client that is not connected yet; see [`Client::new`].
    pub fn new(
        stack: S,
        clock: C,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Self {
        Self::from_client(Client::new(stack, clock, tx, rx, options))
    }
}

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Wraps a (not yet connected) simple client.
    pub fn from_client(inner: Client<'a, S, C, W>) -> Self {
        let policy = Policy::new(
            inner.options().client_id(),
            inner.clock().now_ms(),
            inner.dropped_messages(),
        );
        RobustClient {
            inner,
            broker: None,
            subscriptions: Subscriptions::new(),
            policy,
            flow: None,
            window: None,
        }
    }

    /// The same client, waiting with `waiter` (see [`Client::with_waiter`]).
    /// Call it before connecting: a broker given by name
    /// ([`RobustClient::connect_host`]) is forgotten, and must be given again.
    pub fn with_waiter<W2: Wait<S>>(self, waiter: W2) -> RobustClient<'a, S, C, W2, SUB_BYTES> {
        RobustClient {
            inner: self.inner.with_waiter(waiter),
            broker: match self.broker {
                Some(Broker::Addr(addr)) => Some(Broker::Addr(addr)),
                // Its connector is made for the old client type.
                Some(Broker::Host { .. }) | None => None,
            },
            subscriptions: self.subscriptions,
            policy: self.policy,
            flow: self.flow,
            window: self.window,
        }
    }

    /// Sets backoff and call deadline.
    pub fn set_robust_options(&mut self, robust: RobustOptions) {
        self.policy.options = robust;
    }

    /// The backoff and call deadline in use.
    pub fn robust_options(&self) -> &RobustOptions {
        &self.policy.options
    }

    /// Uses `random` for jitter instead of the built-in generator.
    pub fn set_random(&mut self, random: &'a mut dyn Random) {
        self.policy.set_random(random);
    }

    /// Sets the callback that hears about connection changes.
    pub fn set_event_callback(&mut self, events: EventCallback<'a>) {
        self.policy.set_events(events);
    }

    /// The inner client (to read its state; operations on it do not reconnect).
    pub fn client(&self) -> &Client<'a, S, C, W> {
        &self.inner
    }

    /// The inner client, mutably.
    pub fn client_mut(&mut self) -> &mut Client<'a, S, C, W> {
        &mut self.inner
    }

    /// The subscriptions that are restored after a reconnect.
    pub fn subscriptions(&self) -> &Subscriptions<SUB_BYTES> {
        &self.subscriptions
    }

    /// Whether a connection is up now.
    pub fn is_connected(&self) -> bool {
        self.inner.is_connected()
    }

    /// Failed connection attempts since the last connection that worked
    /// (see [`RobustClient`] for what counts as working).
    pub fn failed_attempts(&self) -> u32 {
        self.policy.failures()
    }

    /// See [`Client::set_callback`].
    pub fn set_callback(&mut self, callback: Callback<'a>) {
        self.inner.set_callback(callback);
    }

    /// See [`Client::set_undelivered_callback`].
    pub fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
        self.inner.set_undelivered_callback(callback);
    }

    /// See [`Client::set_last_will`].
    pub fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), RobustClientError<S>> {
        Ok(self.inner.set_last_will(topic, message, retain, qos)?)
    }

    /// Connects to `addr` and remembers it for reconnects; returns "session
    /// present". One attempt, within the call deadline (resubscribing
    /// included); a failure is returned as it is (the address is kept, so
    /// later calls keep trying). With an outbox, what waits in it is sent
    /// first; if the connection is lost while it goes out, `connect` fails
    /// with [`RobustError::Offline`] and the messages stay for the next
    /// connection: `Ok` always means connected.
    pub fn connect(&mut self, addr: SocketAddr) -> Result<bool, RobustClientError<S>> {
        self.start(Broker::Addr(addr))
    }

    fn start(&mut self, broker: Broker<'a, S, C, W>) -> Result<bool, RobustClientError<S>> {
        self.broker = Some(broker);
        // A connection still open is replaced: what it did not deliver stays.
        self.outbox_lost();
        self.policy.start();
        self.begin_call(Waiting::ConnAck);
        let result = self.open_session(broker, false);
        // What waits in the outbox (queued before, or left by a lost
        // connection) goes out now. A connection lost on the way fails the
        // call, as one lost while resubscribing does: `Ok` means connected.
        let result = match result {
            Ok(session_present) => self.pump().and_then(|()| {
                if self.inner.is_connected() {
                    Ok(session_present)
                } else {
                    Err(self.policy.offline(self.now()))
                }
            }),
            Err(e) => {
                self.policy.start_failed(self.now());
                Err(e.into())
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// Disconnects and stops reconnecting until the next `connect`.
    pub fn disconnect(&mut self) -> Result<(), RobustClientError<S>> {
        self.broker = None;
        self.policy.stop();
        Ok(self.inner.disconnect()?)
    }

    /// Sends PINGREQ, reconnecting first if needed.
    pub fn ping(&mut self) -> Result<(), RobustClientError<S>> {
        let call = self.begin_call(Waiting::Send);
        self.with_connection(call, |c| c.ping())
    }

    /// Publishes like [`Client::publish`]; after a lost connection it
    /// reconnects and sends again (QoS 1: with DUP and the same packet id),
    /// until the call deadline ([`RobustOptions::call_timeout_ms`]).
    ///
    /// A QoS 1 message that was sent but not acknowledged by then is
    /// reported in [`RobustError::TimedOut`]'s `unacked`, with its packet
    /// id: send it again with [`RobustClient::republish`], not `publish`,
    /// so the broker sees the same message rather than a new one.
    pub fn publish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), RobustClientError<S>> {
        if self.flow.as_ref().is_some_and(|flow| flow.takes(qos)) {
            return self
                .queue_inner(Queued::new(topic, payload, qos, retain))
                .map(drop);
        }
        window_without_outbox(qos, self.window.is_some())?;
        let call = self.begin_call(publish_waits_for(qos));
        let mut sent_id: Option<u16> = None;
        let result = self.with_connection(call, |c| match (qos, sent_id) {
            (QoS::AtLeastOnce, Some(id)) => {
                log::info!("sending QoS 1 message {id} again (DUP) after reconnect");
                c.republish(topic, payload, retain, id)
            }
            (QoS::AtLeastOnce, None) => {
                let id = c.take_packet_id();
                sent_id = Some(id);
                c.publish_with_id(topic, payload, retain, id)
            }
            // QoS 0 goes out again; QoS 2 is refused before anything is sent.
            (QoS::AtMostOnce | QoS::ExactlyOnce, _) => c.publish(topic, payload, retain, qos),
        });
        unacked(result, sent_id)
    }

    /// Sends again, with DUP set and the same packet id, a QoS 1 message
    /// whose PUBACK never came: the one a [`RobustError::TimedOut`] reported
    /// as `unacked`. Reconnects and resends like `publish`, until the call
    /// deadline.
    pub fn republish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), RobustClientError<S>> {
        let call = self.begin_call(Waiting::PubAck);
        let result = self.with_connection(call, |c| c.republish(topic, payload, retain, packet_id));
        unacked(result, Some(packet_id))
    }

    /// Sends the batched QoS 0 messages like [`Client::flush`], reconnecting
    /// first if needed. If the connection is lost on the way, the messages
    /// are lost with it ([`Event::Dropped`](crate::Event::Dropped)); the call reconnects and returns
    /// `Ok` (there is nothing left to send).
    pub fn flush(&mut self) -> Result<(), RobustClientError<S>> {
        let call = self.begin_call(Waiting::Send);
        self.with_connection(call, |c| c.flush())?;
        if self.flow.is_none() {
            return Ok(());
        }
        let call = self.begin_call(Waiting::PubAck);
        let result = self.drain(call.deadline);
        self.inner.limit_waits(None);
        result.map_err(|e| self.policy.call_failed(call, e))
    }

    /// Lends the client an outbox: from now on `publish` at QoS 1 (and QoS
    /// 0 with [`OutboxOptions::queue_qos0`]) takes the message into it and
    /// returns at once, connected or not; messages leave in order whenever
    /// a connection is up and the window ([`RobustClient::set_window`]) has
    /// room, and stay until the broker acknowledged them, across reconnects
    /// (sent again with DUP and their packet id) and, with a persistent
    /// outbox, restarts. Each delivery is reported as [`Event::Delivered`];
    /// a full outbox refuses or drops the oldest as `options` say
    /// ([`Event::Dropped`]). `flush` waits until it is empty.
    ///
    /// [`Event::Delivered`]: crate::Event::Delivered
    /// [`Event::Dropped`]: crate::Event::Dropped
    ///
    /// A window given earlier with [`RobustClient::set_window`] takes
    /// effect now.
    pub fn set_outbox(&mut self, outbox: &'a mut dyn Outbox, options: OutboxOptions) {
        self.flow = Some(Flow::new(outbox, options));
        if let Some(slots) = self.window.take() {
            self.inner.set_window(slots);
        }
    }

    /// Messages the outbox dropped to make room
    /// ([`WhenFull::DropOldest`](crate::outbox::WhenFull::DropOldest)) since
    /// it was lent.
    pub fn outbox_dropped(&self) -> u32 {
        self.flow.as_ref().map_or(0, |flow| flow.dropped())
    }

    /// The outbox lent with [`RobustClient::set_outbox`].
    pub fn outbox(&self) -> Option<&dyn Outbox> {
        self.flow.as_ref().map(|flow| flow.outbox())
    }

    /// The QoS 1 window for the outbox (see [`Client::set_window`]): up to
    /// `slots.len()` messages in flight at once.
    ///
    /// A message in flight is kept until its PUBACK so that a reconnect can
    /// send it again, so the window works only with an outbox: lent now if
    /// [`RobustClient::set_outbox`] was called, else when it is. Until
    /// then a QoS 1 `publish` is refused with
    /// [`RobustError::WindowWithoutOutbox`] (nothing is sent). For a window
    /// and its storage in one call, see [`RobustClient::set_window_in_ram`].
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        if self.flow.is_some() {
            self.inner.set_window(slots);
        } else {
            self.window = Some(slots);
        }
    }

    /// A QoS 1 window of `slots.len()` messages whose messages are kept, until
    /// their PUBACK, in a [`RamOutbox`](crate::outbox::RamOutbox) over
    /// `storage` (no heap): the outbox and the window in one call, replacing
    /// any outbox lent before.
    ///
    /// `publish` at QoS 1 returns once the message is in `storage` (sending
    /// it as soon as the window has room); while `storage` is full it waits
    /// for PUBACKs to make room, reconnecting as needed, at most the call
    /// timeout ([`WhenFull::Wait`](crate::outbox::WhenFull::Wait)). After a
    /// lost connection every message not acknowledged goes again, with DUP
    /// and its packet id, oldest first, before newer ones; `flush` waits
    /// until all are acknowledged. Each acknowledgement is reported as
    /// [`Event::Delivered`](crate::Event::Delivered), numbered 1, 2, … in
    /// publish order. Size `storage` for the window at least: each message
    /// takes [`RamOutbox::needed`](crate::outbox::RamOutbox::needed) bytes
    /// (its topic and payload plus 17).
    pub fn set_window_in_ram(&mut self, slots: &'a mut [u16], storage: &'a mut [u8]) {
        self.flow = Some(Flow::window_in_ram(storage));
        self.window = None;
        self.inner.set_window(slots);
    }

    /// Takes a message into the outbox (see [`RobustClient::set_outbox`])
    /// and returns its sequence number, which [`Event::Delivered`] reports;
    /// sends what it can now, never waiting for a reconnect.
    /// [`RobustError::NotStarted`] without an outbox.
    ///
    /// [`Event::Delivered`]: crate::Event::Delivered
    pub fn queue(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<u32, RobustClientError<S>> {
        self.queue_inner(Queued::new(topic, payload, qos, retain))
    }

    /// Subscribes like [`Client::subscribe`] and remembers the filter, so it
    /// is restored whenever the broker forgets it. The filter stays
    /// remembered when the call deadline passes (it is subscribed on the
    /// next reconnect); a refusal forgets it.
    pub fn subscribe(&mut self, filter: &[u8], qos: QoS) -> Result<QoS, RobustClientError<S>> {
        umqtt_simple::packet::validate_filter(filter).map_err(Error::Invalid)?;
        self.subscriptions
            .insert(filter, qos)
            .map_err(|full| RobustError::SubscriptionsFull {
                needed: full.needed,
                free: full.free,
            })?;
        let call = self.begin_call(Waiting::SubAck);
        let result = self.with_connection(call, |c| c.subscribe(filter, qos));
        if let Err(RobustError::Client(Error::SubscribeRefused { .. })) = result {
            self.subscriptions.remove(filter);
        }
        result
    }

    /// Unsubscribes and forgets the filter.
    pub fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), RobustClientError<S>> {
        self.subscriptions.remove(filter);
        let call = self.begin_call(Waiting::UnsubAck);
        self.with_connection(call, |c| c.unsubscribe(filter))
    }

    /// Waits for one packet like [`Client::wait_msg`], reconnecting as needed;
    /// during an outage it returns [`RobustError::Offline`] once the call
    /// deadline has passed.
    pub fn wait_msg(&mut self) -> Result<(), RobustClientError<S>> {
        loop {
            if self.wait_msg_for(u32::MAX)? {
                return Ok(());
            }
        }
    }

    /// Like [`Client::wait_msg_for`], reconnecting as needed within the
    /// same `timeout_ms`: it returns by then, a reconnect attempt included
    /// (over a link where connecting takes longer than `timeout_ms`, wait
    /// longer, or poll with `check_msg`, whose attempts get the whole
    /// connect timeout).
    pub fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, RobustClientError<S>> {
        let call = self.begin_call_for(timeout_ms, Waiting::PingResp);
        let call_start = self.now();
        let result = loop {
            let deadline = call.deadline.min(self.policy.outage_deadline(call_start));
            match self.ensure_connected(Some(deadline)) {
                Ok(()) => {}
                Err(RobustError::Offline { .. }) if deadline == call.deadline => break Ok(false),
                Err(e) => break Err(e),
            }
            let left = call.deadline.saturating_sub(self.now());
            match self
                .inner
                .wait_msg_for(u32::try_from(left).unwrap_or(u32::MAX))
            {
                Ok(handled) => {
                    self.note_progress();
                    self.keep_outbox_moving();
                    break Ok(handled);
                }
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// Handles one packet if one has arrived, like [`Client::check_msg`].
    ///
    /// During an outage it returns `Ok(false)` at once, except when the
    /// backoff says a reconnect attempt is due: then it makes one attempt
    /// (bounded by the connect timeout).
    pub fn check_msg(&mut self) -> Result<bool, RobustClientError<S>> {
        match self.ensure_connected(None) {
            Ok(()) => {}
            Err(RobustError::Offline { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        match self.inner.check_msg() {
            Ok(handled) => {
                self.note_progress();
                self.keep_outbox_moving();
                Ok(handled)
            }
            Err(e) if e.is_connection_lost() => {
                self.lost(&e);
                // The first attempt may be due at once.
                match self.ensure_connected(None) {
                    Ok(()) | Err(RobustError::Offline { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}

impl<'a, S: TcpClientStack + Dns, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Connects to `host` like [`Client::connect_host`] and remembers the
    /// name: every reconnect looks it up again, so a broker that moved to
    /// another address is found. Returns "session present"; a failure here
    /// is returned as it is (the name is kept, so later calls keep trying).
    pub fn connect_host(&mut self, host: &'a str, port: u16) -> Result<bool, RobustClientError<S>> {
        self.start(Broker::Host {
            name: host,
            port,
            connect: Client::connect_host,
        })
    }
}
