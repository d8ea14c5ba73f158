//! The async reconnecting client (feature `async`): umqtt-simple's async
//! client plus the reconnect policy the blocking [`crate::RobustClient`]
//! uses (`crate::policy`, shared, not copied). This module holds only the
//! async I/O around it: `reconnect.rs` waits out the backoff and reconnects,
//! `call.rs` runs an operation across reconnects within its deadline.

use core::net::SocketAddr;

use embedded_nal_async::TcpConnect;
use umqtt_simple::Timer;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Callback, Error, Options, QoS, UndeliveredCallback, Waiting};

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

/// Error type of an async reconnecting client on stack `N`.
pub type AsyncRobustError<N> = RobustError<<N as TcpConnect>::Error>;

/// A client that reconnects by itself, over an embedded-nal-async stack:
/// the async twin of [`crate::RobustClient`], with the same guarantees
/// (QoS 1 resent with DUP and the same packet id after a reconnect,
/// subscriptions restored, no call past its deadline, a broker that
/// accepts and then fails backed off) and the same events.
///
/// It reconnects to the address given to `connect` (resolve a host name
/// with the stack's DNS first).
///
/// ```no_run
/// use embedded_nal_async::TcpConnect;
/// use umqtt_robust::asynch::{AsyncRobustError, RobustClient};
/// use umqtt_simple::{Message, Options, QoS};
/// use umqtt_simple::Timer;
///
/// async fn telemetry<N: TcpConnect, T: Timer>(
///     net: &N,
///     timer: T,
///     broker: core::net::SocketAddr,
/// ) -> Result<(), AsyncRobustError<N>> {
///     let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
///     let mut on_message = |m: Message<'_>| log::info!("{:?}", m.payload);
///     let mut client = RobustClient::<_, _>::new(net, timer, &mut tx, &mut rx, Options::new("sensor-1"));
///     client.set_callback(&mut on_message);
///     client.connect(broker).await?;
///     client.subscribe(b"sensor-1/cmd", QoS::AtLeastOnce).await?;
///     loop {
///         // Reconnects (and resubscribes) by itself when the broker goes away.
///         client.publish(b"sensor-1/temp", b"21.5", false, QoS::AtLeastOnce).await?;
///         client.wait_msg_for(10_000).await?;
///     }
/// }
/// ```
pub struct RobustClient<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize = 256> {
    inner: Client<'a, N, T>,
    broker: Option<SocketAddr>,
    subscriptions: Subscriptions<SUB_BYTES>,
    policy: Policy<'a>,
    /// Messages accepted and not yet delivered, if the application lent
    /// an outbox.
    flow: Option<Flow<'a>>,
    /// A window given before any outbox: lent to the inner client with the
    /// outbox, since a message in flight must be kept until its PUBACK.
    window: Option<&'a mut [u16]>,
}

impl<'a, N: TcpConnect + 'a, T: Timer, const SUB_BYTES: usize> RobustClient<'a, N, T, SUB_BYTES> {
    /// A client that is not connected yet; see [`Client::new`].
    pub fn new(
        net: &'a N,
        timer: T,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Self {
        Self::from_client(Client::new(net, timer, tx, rx, options))
    }

    /// Wraps a (not yet connected) async client.
    pub fn from_client(inner: Client<'a, N, T>) -> Self {
        let policy = Policy::new(
            inner.options().client_id(),
            inner.timer().now_ms(),
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
    pub fn client(&self) -> &Client<'a, N, T> {
        &self.inner
    }

    /// The inner client, mutably.
    pub fn client_mut(&mut self) -> &mut Client<'a, N, T> {
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

    /// Failed connection attempts since the last connection that worked.
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
    ) -> Result<(), AsyncRobustError<N>> {
        Ok(self.inner.set_last_will(topic, message, retain, qos)?)
    }

    /// Connects to `addr` and remembers it for reconnects; returns "session
    /// present". One attempt, within the call deadline; a failure is
    /// returned as it is (the address is kept, so later calls keep trying).
    pub async fn connect(&mut self, addr: SocketAddr) -> Result<bool, AsyncRobustError<N>> {
        self.broker = Some(addr);
        // A connection still open is replaced: what it did not deliver stays.
        self.outbox_lost();
        self.policy.start();
        self.begin_call(Waiting::ConnAck);
        let result = match self.open_session(addr, false).await {
            // What waits in the outbox goes out now; a connection lost on
            // the way fails the call (`Ok` means connected).
            Ok(session_present) => match self.pump().await {
                Ok(()) if !self.inner.is_connected() => Err(self.policy.offline(self.now())),
                pumped => pumped.map(|()| session_present),
            },
            Err(e) => {
                self.policy.start_failed(self.now());
                Err(e.into())
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// Disconnects and stops reconnecting until the next `connect`.
    pub async fn disconnect(&mut self) -> Result<(), AsyncRobustError<N>> {
        self.broker = None;
        self.policy.stop();
        Ok(self.inner.disconnect().await?)
    }

    /// Sends PINGREQ, reconnecting first if needed.
    pub async fn ping(&mut self) -> Result<(), AsyncRobustError<N>> {
        let call = self.begin_call(Waiting::Send);
        self.with_connection(call, async |c| c.ping().await).await
    }

    /// Publishes like [`Client::publish`]; after a lost connection it
    /// reconnects and sends again (QoS 1: with DUP and the same packet id),
    /// until the call deadline. A QoS 1 message sent but not acknowledged by
    /// then is reported in [`RobustError::TimedOut`]'s `unacked`: send it
    /// again with [`RobustClient::republish`].
    pub async fn publish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), AsyncRobustError<N>> {
        if self.flow.as_ref().is_some_and(|flow| flow.takes(qos)) {
            return self
                .queue_inner(Queued::new(topic, payload, qos, retain))
                .await
                .map(drop);
        }
        window_without_outbox(qos, self.window.is_some())?;
        let call = self.begin_call(publish_waits_for(qos));
        let mut sent_id: Option<u16> = None;
        let result = self
            .with_connection(call, async |c| match (qos, sent_id) {
                (QoS::AtLeastOnce, Some(id)) => {
                    log::info!("sending QoS 1 message {id} again (DUP) after reconnect");
                    c.republish(topic, payload, retain, id).await
                }
                (QoS::AtLeastOnce, None) => {
                    let id = c.take_packet_id();
                    sent_id = Some(id);
                    c.publish_with_id(topic, payload, retain, id).await
                }
                // QoS 0 goes out again; QoS 2 is refused before anything is sent.
                (QoS::AtMostOnce | QoS::ExactlyOnce, _) => {
                    c.publish(topic, payload, retain, qos).await
                }
            })
            .await;
        unacked(result, sent_id)
    }

    /// Sends again, with DUP set and the same packet id, a QoS 1 message
    /// whose PUBACK never came; reconnects and resends like `publish`.
    pub async fn republish(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        packet_id: u16,
    ) -> Result<(), AsyncRobustError<N>> {
        let call = self.begin_call(Waiting::PubAck);
        let result = self
            .with_connection(call, async |c| {
                c.republish(topic, payload, retain, packet_id).await
            })
            .await;
        unacked(result, Some(packet_id))
    }

    /// Sends the batched QoS 0 messages, reconnecting first if needed (see
    /// [`crate::RobustClient::flush`]).
    pub async fn flush(&mut self) -> Result<(), AsyncRobustError<N>> {
        let call = self.begin_call(Waiting::Send);
        self.with_connection(call, async |c| c.flush().await)
            .await?;
        if self.flow.is_none() {
            return Ok(());
        }
        let call = self.begin_call(Waiting::PubAck);
        let result = self.drain(call.deadline).await;
        self.inner.limit_waits(None);
        result.map_err(|e| self.policy.call_failed(call, e))
    }

    /// Lends the client an outbox (see [`crate::RobustClient::set_outbox`]):
    /// `publish` takes QoS 1 messages (and QoS 0 with
    /// [`OutboxOptions::queue_qos0`]) into it and returns at once; they
    /// leave in order as the connection and the window allow, until
    /// acknowledged. A window given earlier with
    /// [`RobustClient::set_window`] takes effect now.
    pub fn set_outbox(&mut self, outbox: &'a mut dyn Outbox, options: OutboxOptions) {
        self.flow = Some(Flow::new(outbox, options));
        if let Some(slots) = self.window.take() {
            self.inner.set_window(slots);
        }
    }

    /// The outbox lent with [`RobustClient::set_outbox`].
    pub fn outbox(&self) -> Option<&dyn Outbox> {
        self.flow.as_ref().map(|flow| flow.outbox())
    }

    /// Messages the outbox dropped to make room since it was lent.
    pub fn outbox_dropped(&self) -> u32 {
        self.flow.as_ref().map_or(0, |flow| flow.dropped())
    }

    /// The QoS 1 window for the outbox (see
    /// [`crate::RobustClient::set_window`]): it works only with an outbox,
    /// lent now if one was, else with the next [`RobustClient::set_outbox`];
    /// until then a QoS 1 `publish` is refused with
    /// [`RobustError::WindowWithoutOutbox`].
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        if self.flow.is_some() {
            self.inner.set_window(slots);
        } else {
            self.window = Some(slots);
        }
    }

    /// A QoS 1 window whose messages are kept until their PUBACK in a RAM
    /// outbox over `storage`, waiting for room when it is full (see
    /// [`crate::RobustClient::set_window_in_ram`]).
    pub fn set_window_in_ram(&mut self, slots: &'a mut [u16], storage: &'a mut [u8]) {
        self.flow = Some(Flow::window_in_ram(storage));
        self.window = None;
        self.inner.set_window(slots);
    }

    /// Takes a message into the outbox and returns its sequence number
    /// (see [`crate::RobustClient::queue`]).
    pub async fn queue(
        &mut self,
        topic: &[u8],
        payload: &[u8],
        retain: bool,
        qos: QoS,
    ) -> Result<u32, AsyncRobustError<N>> {
        self.queue_inner(Queued::new(topic, payload, qos, retain))
            .await
    }

    /// Subscribes like [`Client::subscribe`] and remembers the filter, so it
    /// is restored whenever the broker forgets it; a refusal forgets it.
    pub async fn subscribe(&mut self, filter: &[u8], qos: QoS) -> Result<QoS, AsyncRobustError<N>> {
        umqtt_simple::packet::validate_filter(filter).map_err(Error::Invalid)?;
        self.subscriptions
            .insert(filter, qos)
            .map_err(|full| RobustError::SubscriptionsFull {
                needed: full.needed,
                free: full.free,
            })?;
        let call = self.begin_call(Waiting::SubAck);
        let result = self
            .with_connection(call, async |c| c.subscribe(filter, qos).await)
            .await;
        if let Err(RobustError::Client(Error::SubscribeRefused { .. })) = result {
            self.subscriptions.remove(filter);
        }
        result
    }

    /// Unsubscribes and forgets the filter.
    pub async fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), AsyncRobustError<N>> {
        self.subscriptions.remove(filter);
        let call = self.begin_call(Waiting::UnsubAck);
        self.with_connection(call, async |c| c.unsubscribe(filter).await)
            .await
    }

    /// Waits for one packet like [`Client::wait_msg`], reconnecting as
    /// needed; during an outage it returns [`RobustError::Offline`] once the
    /// call deadline has passed.
    pub async fn wait_msg(&mut self) -> Result<(), AsyncRobustError<N>> {
        loop {
            if self.wait_msg_for(u32::MAX).await? {
                return Ok(());
            }
        }
    }

    /// Like [`Client::wait_msg_for`], reconnecting as needed within the
    /// same `timeout_ms`.
    pub async fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, AsyncRobustError<N>> {
        let call = self.begin_call_for(timeout_ms, Waiting::PingResp);
        let call_start = self.now();
        let result = loop {
            let deadline = call.deadline.min(self.policy.outage_deadline(call_start));
            match self.ensure_connected(Some(deadline)).await {
                Ok(()) => {}
                Err(RobustError::Offline { .. }) if deadline == call.deadline => break Ok(false),
                Err(e) => break Err(e),
            }
            let left = call.deadline.saturating_sub(self.now());
            match self
                .inner
                .wait_msg_for(u32::try_from(left).unwrap_or(u32::MAX))
                .await
            {
                Ok(handled) => {
                    self.note_progress();
                    self.keep_outbox_moving().await;
                    break Ok(handled);
                }
                Err(e) if e.is_connection_lost() => self.lost(&e),
                Err(e) => break Err(e.into()),
            }
        };
        self.inner.limit_waits(None);
        result
    }

    /// Handles one packet if one has arrived, like [`Client::check_msg`];
    /// during an outage it returns `Ok(false)` at once, except when a
    /// reconnect attempt is due: then it makes one.
    pub async fn check_msg(&mut self) -> Result<bool, AsyncRobustError<N>> {
        match self.ensure_connected(None).await {
            Ok(()) => {}
            Err(RobustError::Offline { .. }) => return Ok(false),
            Err(e) => return Err(e),
        }
        match self.inner.check_msg().await {
            Ok(handled) => {
                self.note_progress();
                self.keep_outbox_moving().await;
                Ok(handled)
            }
            Err(e) if e.is_connection_lost() => {
                self.lost(&e);
                match self.ensure_connected(None).await {
                    Ok(()) | Err(RobustError::Offline { .. }) => Ok(false),
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e.into()),
        }
    }
}
