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
use umqtt_transports::{Clock, Spin, Wait};

use crate::backoff::{Backoff, Random, XorShift32};
use crate::error::RobustError;
use crate::subscriptions::Subscriptions;

/// A change of the connection, reported to the event callback and the log.
///
/// More kinds may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// The connection was lost (the reason is logged).
    Lost,
    /// A reconnect attempt failed; the next comes after `retry_in_ms`.
    ReconnectFailed {
        /// Failed attempts in a row.
        attempt: u32,
        /// Milliseconds until the next attempt.
        retry_in_ms: u32,
    },
    /// Connected again.
    Reconnected {
        /// Whether the broker kept the session (subscriptions and queued
        /// QoS 1 messages).
        session_present: bool,
        /// Attempts it took.
        attempts: u32,
    },
    /// The subscriptions were sent again because the broker had forgotten them.
    Resubscribed {
        /// How many filters.
        filters: usize,
    },
    /// `max_attempts` attempts failed in a row; no more until `connect`.
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// Batched QoS 0 messages ([`Options::batch_qos0`]) were lost with the
    /// connection before they were sent (reported right after [`Event::Lost`]).
    Dropped {
        /// How many.
        messages: u32,
    },
}

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

/// How the reconnecting client behaves beyond the inner client's options.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RobustOptions {
    /// Waits between reconnect attempts.
    pub backoff: Backoff,
    /// The longest one call may take, reconnects and resends included, in
    /// ms: `connect`, `publish`, `republish`, `subscribe`, `unsubscribe`,
    /// `ping` and `flush` end by then with [`RobustError::TimedOut`] (the
    /// broker was reached but did not answer) or [`RobustError::Offline`]
    /// (it could not be reached). `wait_msg` and `wait_msg_for` spend at
    /// most this long reconnecting, counted from the call's start or the
    /// loss of the connection, whichever is later (`wait_msg_for`'s own
    /// timeout bounds it too). `check_msg` never waits.
    pub call_timeout_ms: u32,
}

/// The default [`RobustOptions::call_timeout_ms`]: 30 s.
pub const DEFAULT_CALL_TIMEOUT_MS: u32 = 30_000;

impl Default for RobustOptions {
    /// Default backoff, and 30 s per call.
    fn default() -> Self {
        RobustOptions {
            backoff: Backoff::default(),
            call_timeout_ms: DEFAULT_CALL_TIMEOUT_MS,
        }
    }
}

/// Error type of a reconnecting client on stack `S`.
pub type RobustClientError<S> = RobustError<<S as TcpClientStack>::Error>;

/// The callback that hears about connection changes.
pub type EventCallback<'a> = &'a mut dyn FnMut(Event);

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
/// ([`Event::Lost`]) when it is noticed, the batched messages lost with it
/// as [`Event::Dropped`].
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
    robust: RobustOptions,
    events: Option<EventCallback<'a>>,
    random: Option<&'a mut dyn Random>,
    fallback_random: XorShift32,
    /// Failed attempts since the last connection that worked.
    failures: u32,
    next_attempt_ms: u64,
    /// When the current outage was noticed.
    outage_since: Option<u64>,
    gave_up: bool,
    /// The inner client's dropped-message count last reported.
    dropped_reported: u32,
    /// The connection that is up has not shown yet that it works.
    untried: Option<Untried>,
    /// Connections opened since the client was created.
    connections: u32,
    /// The running call reached the broker: its operation ran on a
    /// connection, or a reconnect attempt got an answer.
    call_reached: bool,
}

/// A connection that has not shown yet that it works: the inner client's
/// packet count when it was opened.
#[derive(Debug, Clone, Copy)]
struct Untried {
    packets: u32,
}

/// What a call needs to say why its deadline passed.
#[derive(Debug, Clone, Copy)]
struct Call {
    deadline: u64,
    /// The broker's answer that completes the call.
    waits_for: Waiting,
    /// [`RobustClient::connections`] when it started.
    connections: u32,
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
        // Devices that boot together read the same clock: the client id
        // spreads them.
        let id_hash = inner
            .options()
            .client_id()
            .bytes()
            .fold(0x811c_9dc5_u32, |h, b| {
                (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
            });
        let seed = id_hash ^ (inner.clock().now_ms() as u32);
        let inner_dropped = inner.dropped_messages();
        RobustClient {
            inner,
            broker: None,
            subscriptions: Subscriptions::new(),
            robust: RobustOptions::default(),
            events: None,
            random: None,
            fallback_random: XorShift32::new(seed),
            failures: 0,
            next_attempt_ms: 0,
            outage_since: None,
            gave_up: false,
            dropped_reported: inner_dropped,
            untried: None,
            connections: 0,
            call_reached: false,
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
            robust: self.robust,
            events: self.events,
            random: self.random,
            fallback_random: self.fallback_random,
            failures: self.failures,
            next_attempt_ms: self.next_attempt_ms,
            outage_since: self.outage_since,
            gave_up: self.gave_up,
            dropped_reported: self.dropped_reported,
            untried: self.untried,
            connections: self.connections,
            call_reached: self.call_reached,
        }
    }

    /// Sets backoff and call deadline.
    pub fn set_robust_options(&mut self, robust: RobustOptions) {
        self.robust = robust;
    }

    /// The backoff and call deadline in use.
    pub fn robust_options(&self) -> &RobustOptions {
        &self.robust
    }

    /// Uses `random` for jitter instead of the built-in generator.
    pub fn set_random(&mut self, random: &'a mut dyn Random) {
        self.random = Some(random);
    }

    /// Sets the callback that hears about connection changes.
    pub fn set_event_callback(&mut self, events: EventCallback<'a>) {
        self.events = Some(events);
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
        self.failures
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
    /// later calls keep trying).
    pub fn connect(&mut self, addr: SocketAddr) -> Result<bool, RobustClientError<S>> {
        self.start(Broker::Addr(addr))
    }

    fn start(&mut self, broker: Broker<'a, S, C, W>) -> Result<bool, RobustClientError<S>> {
        self.broker = Some(broker);
        self.gave_up = false;
        self.failures = 0;
        self.outage_since = None;
        self.begin_call(self.robust.call_timeout_ms, Waiting::ConnAck);
        let result = self.open_session(broker, false);
        self.inner.limit_waits(None);
        result.map_err(|e| {
            let now = self.now();
            self.outage_since.get_or_insert(now);
            self.schedule_retry();
            e.into()
        })
    }

    /// Disconnects and stops reconnecting until the next `connect`.
    pub fn disconnect(&mut self) -> Result<(), RobustClientError<S>> {
        self.broker = None;
        self.untried = None;
        Ok(self.inner.disconnect()?)
    }

    /// Sends PINGREQ, reconnecting first if needed.
    pub fn ping(&mut self) -> Result<(), RobustClientError<S>> {
        let call = self.begin_call(self.robust.call_timeout_ms, Waiting::Send);
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
        let waits_for = match qos {
            QoS::AtMostOnce => Waiting::Send,
            QoS::AtLeastOnce | QoS::ExactlyOnce => Waiting::PubAck,
        };
        let call = self.begin_call(self.robust.call_timeout_ms, waits_for);
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
        let call = self.begin_call(self.robust.call_timeout_ms, Waiting::PubAck);
        let result = self.with_connection(call, |c| c.republish(topic, payload, retain, packet_id));
        unacked(result, Some(packet_id))
    }

    /// Sends the batched QoS 0 messages like [`Client::flush`], reconnecting
    /// first if needed. If the connection is lost on the way, the messages
    /// are lost with it ([`Event::Dropped`]); the call reconnects and returns
    /// `Ok` (there is nothing left to send).
    pub fn flush(&mut self) -> Result<(), RobustClientError<S>> {
        let call = self.begin_call(self.robust.call_timeout_ms, Waiting::Send);
        self.with_connection(call, |c| c.flush())
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
        let call = self.begin_call(self.robust.call_timeout_ms, Waiting::SubAck);
        let result = self.with_connection(call, |c| c.subscribe(filter, qos));
        if let Err(RobustError::Client(Error::SubscribeRefused { .. })) = result {
            self.subscriptions.remove(filter);
        }
        result
    }

    /// Unsubscribes and forgets the filter.
    pub fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), RobustClientError<S>> {
        self.subscriptions.remove(filter);
        let call = self.begin_call(self.robust.call_timeout_ms, Waiting::UnsubAck);
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
        let call = self.begin_call(timeout_ms, Waiting::PingResp);
        let call_start = self.now();
        let result = loop {
            let deadline = call.deadline.min(self.outage_deadline(call_start));
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

    /// Starts a call that may take `timeout_ms` and is complete with the
    /// broker's `waits_for`: every wait of the inner client ends by its
    /// deadline (lifted again when the call ends).
    fn begin_call(&mut self, timeout_ms: u32, waits_for: Waiting) -> Call {
        let deadline = self.now().saturating_add(u64::from(timeout_ms));
        self.inner.limit_waits(Some(deadline));
        self.call_reached = false;
        Call {
            deadline,
            waits_for,
            connections: self.connections,
        }
    }

    /// Runs `op` on a live connection, reconnecting and running it again
    /// after each lost connection, until the call's deadline.
    fn with_connection<T>(
        &mut self,
        call: Call,
        mut op: impl FnMut(&mut Client<'a, S, C, W>) -> Result<T, Error<S::Error>>,
    ) -> Result<T, RobustClientError<S>> {
        let result = loop {
            if let Err(e) = self.ensure_connected(Some(call.deadline)) {
                break Err(self.call_failed(call, e));
            }
            self.call_reached = true;
            match op(&mut self.inner) {
                Ok(value) => {
                    self.note_progress();
                    break Ok(value);
                }
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// The error of a call whose deadline passed: [`RobustError::TimedOut`]
    /// when the broker was reached but the call did not complete in time,
    /// else `error` as it is ([`RobustError::Offline`]: never reached).
    fn call_failed(&self, call: Call, error: RobustClientError<S>) -> RobustClientError<S> {
        match error {
            RobustError::Offline { .. } if self.call_reached => RobustError::TimedOut {
                waiting: call.waits_for,
                reconnects: self.connections.wrapping_sub(call.connections),
                unacked: None,
            },
            error => error,
        }
    }

    fn now(&self) -> u64 {
        self.inner.clock().now_ms()
    }

    /// How long a wait that started at `call_start` may spend reconnecting:
    /// the call timeout, counted from the call's start or from the loss of
    /// the connection, whichever is later.
    fn outage_deadline(&self, call_start: u64) -> u64 {
        let from = self
            .outage_since
            .map_or(call_start, |since| since.max(call_start));
        from.saturating_add(u64::from(self.robust.call_timeout_ms))
    }

    fn emit(&mut self, event: Event) {
        if let Some(events) = self.events.as_mut() {
            events(event);
        }
    }

    /// Notes a lost connection. One that the broker failed (no answer in
    /// time, a protocol error) before it ever worked counts as a failed
    /// attempt, so the backoff grows; any other makes the first reconnect
    /// attempt due at once.
    fn lost(&mut self, error: &Error<S::Error>) {
        log::warn!("connection lost: {error:?}");
        let now = self.now();
        self.outage_since.get_or_insert(now);
        self.emit(Event::Lost);
        let dropped = self.inner.dropped_messages();
        let messages = dropped.wrapping_sub(self.dropped_reported);
        self.dropped_reported = dropped;
        if messages > 0 {
            self.emit(Event::Dropped { messages });
        }
        match self.untried.take() {
            Some(untried) if !self.worked(untried) && broker_failed(error) => {
                log::warn!("the broker failed the connection before it ever worked");
                // Giving up is remembered: the next call says so.
                let _ = self.attempt_failed(error);
            }
            _ => {
                self.failures = 0;
                self.next_attempt_ms = now;
            }
        }
    }

    /// Whether the connection opened as `untried` has shown it works: the
    /// broker sent a packet on it after the CONNACK and the resubscription.
    fn worked(&self, untried: Untried) -> bool {
        self.inner.packets_received() > untried.packets
    }

    /// Once the connection has shown it works, the failed attempts before
    /// it are forgotten.
    fn note_progress(&mut self) {
        if let Some(untried) = self.untried
            && self.worked(untried)
        {
            self.untried = None;
            self.failures = 0;
        }
    }

    fn schedule_retry(&mut self) -> u32 {
        self.failures = self.failures.saturating_add(1);
        let random: &mut dyn Random = match self.random.as_mut() {
            Some(r) => &mut **r,
            None => &mut self.fallback_random,
        };
        let delay = self.robust.backoff.delay_ms(self.failures, random);
        self.next_attempt_ms = self.now().saturating_add(u64::from(delay));
        delay
    }

    /// Makes sure a connection is up, attempting reconnects as the backoff
    /// allows until `deadline` (`None`: make at most the one attempt that is
    /// due now, never wait).
    fn ensure_connected(&mut self, deadline: Option<u64>) -> Result<(), RobustClientError<S>> {
        loop {
            if self.inner.is_connected() {
                return Ok(());
            }
            let Some(broker) = self.broker else {
                return Err(RobustError::NotStarted);
            };
            if self.gave_up {
                return Err(RobustError::GaveUp {
                    attempts: self.failures,
                });
            }
            self.wait_for_attempt(deadline)?;
            self.attempt(broker)?;
            if deadline.is_none() && !self.inner.is_connected() {
                return Err(self.offline());
            }
        }
    }

    /// Waits out the backoff until the next attempt is due, if `deadline`
    /// comes later (`None`: never wait); [`RobustError::Offline`] if not.
    fn wait_for_attempt(&mut self, deadline: Option<u64>) -> Result<(), RobustClientError<S>> {
        loop {
            let now = self.now();
            if deadline.is_some_and(|d| now >= d) {
                return Err(self.offline());
            }
            if now >= self.next_attempt_ms {
                return Ok(());
            }
            let Some(deadline) = deadline else {
                return Err(self.offline());
            };
            let until = deadline.min(self.next_attempt_ms);
            self.inner
                .pause(u32::try_from(until - now).unwrap_or(u32::MAX));
        }
    }

    fn offline(&self) -> RobustClientError<S> {
        let left = self.next_attempt_ms.saturating_sub(self.now());
        RobustError::Offline {
            retry_in_ms: u32::try_from(left).unwrap_or(u32::MAX),
        }
    }

    /// Connects and, when the broker kept no session, subscribes again to
    /// every remembered filter; returns "session present". Fails if the
    /// connection is lost on the way (a broker may close it on a forbidden
    /// SUBSCRIBE), so the backoff paces the next try.
    fn open_session(
        &mut self,
        broker: Broker<'a, S, C, W>,
        reconnect: bool,
    ) -> Result<bool, Error<S::Error>> {
        let session_present = match broker {
            Broker::Addr(addr) => self.inner.connect(addr)?,
            Broker::Host {
                name,
                port,
                connect,
            } => connect(&mut self.inner, name, port)?,
        };
        self.connections = self.connections.wrapping_add(1);
        if reconnect {
            let attempts = self.failures + 1;
            log::info!(
                "reconnected after {attempts} attempt(s), session present: {session_present}"
            );
            self.emit(Event::Reconnected {
                session_present,
                attempts,
            });
        }
        if !session_present {
            self.resubscribe()?;
        }
        // Answers to the resubscription do not count: the connection has
        // yet to do what the application asked of it.
        self.untried = Some(Untried {
            packets: self.inner.packets_received(),
        });
        self.outage_since = None;
        Ok(session_present)
    }

    /// One reconnect attempt; on failure schedules the next.
    fn attempt(&mut self, broker: Broker<'a, S, C, W>) -> Result<(), RobustClientError<S>> {
        log::info!("reconnecting to {broker} (attempt {})", self.failures + 1);
        match self.open_session(broker, true) {
            Ok(_) => Ok(()),
            Err(e) => {
                // Anything but an unreachable broker means it was reached.
                self.call_reached |= !matches!(
                    e,
                    Error::Network(_)
                        | Error::Timeout(Waiting::Connect | Waiting::Dns)
                        | Error::Dns
                );
                self.attempt_failed(&e)
            }
        }
    }

    /// Counts a failed attempt, schedules the next, and gives up after
    /// `max_attempts`.
    fn attempt_failed(&mut self, error: &Error<S::Error>) -> Result<(), RobustClientError<S>> {
        let retry_in_ms = self.schedule_retry();
        log::warn!(
            "connection attempt {} failed: {error:?}; next in {retry_in_ms} ms",
            self.failures
        );
        self.emit(Event::ReconnectFailed {
            attempt: self.failures,
            retry_in_ms,
        });
        if self
            .robust
            .backoff
            .max_attempts
            .is_some_and(|max| self.failures >= max)
        {
            log::error!("giving up after {} failed attempts", self.failures);
            self.gave_up = true;
            self.emit(Event::GaveUp {
                attempts: self.failures,
            });
            return Err(RobustError::GaveUp {
                attempts: self.failures,
            });
        }
        Ok(())
    }

    /// Subscribes again to every remembered filter. A refused filter is
    /// logged and skipped; a lost connection ends it with the error.
    fn resubscribe(&mut self) -> Result<(), Error<S::Error>> {
        let mut count = 0;
        for (filter, qos) in self.subscriptions.iter() {
            match self.inner.subscribe(filter, qos) {
                Ok(_) => count += 1,
                Err(e) if e.is_connection_lost() => {
                    log::warn!("connection lost while resubscribing: {e:?}");
                    if let Some(events) = self.events.as_mut() {
                        events(Event::Lost);
                    }
                    return Err(e);
                }
                Err(e) => log::warn!("resubscribing to {filter:?} failed: {e:?}"),
            }
        }
        if count > 0 {
            log::info!("resubscribed to {count} filter(s)");
            self.emit(Event::Resubscribed { filters: count });
        }
        Ok(())
    }
}

/// Whether `error` is the broker failing a connection it accepted: no
/// answer in time, or a packet that breaks the protocol. A connection the
/// broker or the network closed is an ordinary loss (a broker restart, an
/// idle client dropped).
fn broker_failed<E>(error: &Error<E>) -> bool {
    matches!(
        error,
        Error::Timeout(_)
            | Error::Protocol(_)
            | Error::UnexpectedPacket(_)
            | Error::UnexpectedPacketId { .. }
            | Error::PacketTooLarge { .. }
    )
}

/// Says which QoS 1 message a publish whose deadline passed leaves
/// unacknowledged (`sent_id`: the id it was sent with, if it was).
fn unacked<E>(
    result: Result<(), RobustError<E>>,
    sent_id: Option<u16>,
) -> Result<(), RobustError<E>> {
    result.map_err(|e| match (e, sent_id) {
        (
            RobustError::TimedOut {
                waiting,
                reconnects,
                ..
            },
            Some(id),
        ) => RobustError::TimedOut {
            waiting,
            reconnects,
            unacked: Some(id),
        },
        (e, _) => e,
    })
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
