//! The reconnecting client's type, [`Reconnecting`], whichever front-end
//! drives it: the inner client, the reconnect engine, the outbox and the
//! subscriptions, and every method that does no I/O (settings and state),
//! written once. The blocking front-end (`crate::blocking`) and the async
//! one (`crate::asynch`) add the calls that do I/O, each for its inner
//! client type.

use umqtt_simple::{Callback, Error, QoS, UndeliveredCallback};

use crate::backoff::Random;
use crate::engine::{Answer, Engine, Failure, Io, Target, Task};
use crate::error::RobustError;
use crate::event::EventCallback;
use crate::inner::InnerClient;
use crate::options::RobustOptions;
use crate::outbox::{Flow, Outbox, OutboxOptions};
use crate::subscriptions::Subscriptions;

/// Connects the inner client to a host by name (the blocking
/// `Client::connect_host`), kept as a function pointer so that
/// reconnecting needs no `Dns` bound.
pub(crate) type ConnectHost<'a, I> =
    fn(&mut I, &str, u16) -> Result<bool, Error<<I as InnerClient<'a>>::Error>>;

/// A client that reconnects by itself, wrapping the umqtt-simple client
/// `I`; `SUB_BYTES` is the memory for remembered subscriptions. Use it by
/// its front-ends' names: [`RobustClient`](crate::RobustClient) (blocking)
/// and `asynch::RobustClient` (feature `async`). The methods here are
/// theirs: settings and state; each front-end adds the calls that do I/O.
pub struct Reconnecting<'a, I: InnerClient<'a>, const SUB_BYTES: usize> {
    inner: I,
    /// How to reach a broker given by name (blocking `connect_host`).
    pub(crate) connect_host: Option<ConnectHost<'a, I>>,
    engine: Engine<'a>,
    subscriptions: Subscriptions<SUB_BYTES>,
    /// Messages accepted and not yet delivered, if the application lent
    /// an outbox.
    flow: Option<Flow<'a>>,
}

impl<'a, I: InnerClient<'a>, const SUB_BYTES: usize> Reconnecting<'a, I, SUB_BYTES> {
    /// Wraps a (not yet connected) umqtt-simple client.
    pub fn from_client(inner: I) -> Self {
        Reconnecting {
            engine: Engine::new(&inner),
            inner,
            connect_host: None,
            subscriptions: Subscriptions::new(),
            flow: None,
        }
    }

    /// The same client around another inner client (`with_waiter`); a
    /// broker given by name is forgotten (its connector was made for the
    /// old client type).
    pub(crate) fn map_inner<J: InnerClient<'a>>(
        self,
        f: impl FnOnce(I) -> J,
    ) -> Reconnecting<'a, J, SUB_BYTES> {
        let mut engine = self.engine;
        if let Some(Target::Host { .. }) = engine.broker {
            engine.broker = None;
        }
        Reconnecting {
            inner: f(self.inner),
            connect_host: None,
            engine,
            subscriptions: self.subscriptions,
            flow: self.flow,
        }
    }

    /// Sets backoff and call deadline.
    pub fn set_robust_options(&mut self, robust: RobustOptions) {
        self.engine.policy.options = robust;
    }

    /// The backoff and call deadline in use.
    pub fn robust_options(&self) -> &RobustOptions {
        &self.engine.policy.options
    }

    /// Uses `random` for jitter instead of the built-in generator.
    pub fn set_random(&mut self, random: &'a mut dyn Random) {
        self.engine.policy.set_random(random);
    }

    /// Sets the callback that hears about connection changes.
    pub fn set_event_callback(&mut self, events: EventCallback<'a>) {
        self.engine.policy.set_events(events);
    }

    /// The inner client (to read its state; operations on it do not reconnect).
    pub fn client(&self) -> &I {
        &self.inner
    }

    /// The inner client, mutably.
    pub fn client_mut(&mut self) -> &mut I {
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
    /// (see [`RobustClient`](crate::RobustClient) for what counts as
    /// working).
    pub fn failed_attempts(&self) -> u32 {
        self.engine.policy.failures()
    }

    /// Sets the message callback (see [`umqtt_simple::Client::set_callback`]).
    pub fn set_callback(&mut self, callback: Callback<'a>) {
        self.inner.set_callback(callback);
    }

    /// See [`umqtt_simple::Client::set_undelivered_callback`].
    pub fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
        self.inner.set_undelivered_callback(callback);
    }

    /// See [`umqtt_simple::Client::set_last_will`].
    pub fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), RobustError<I::Error>> {
        Ok(self.inner.set_last_will(topic, message, retain, qos)?)
    }

    /// Lends the client an outbox: from now on `publish` at QoS 1 (and QoS
    /// 0 with [`OutboxOptions::queue_qos0`]) takes the message into it and
    /// returns at once, connected or not; messages leave in order whenever
    /// a connection is up and the window ([`Reconnecting::set_window`]) has
    /// room, and stay until the broker acknowledged them, across reconnects
    /// (sent again with DUP and their packet id) and, with a persistent
    /// outbox, restarts. Each delivery is reported as [`Event::Delivered`];
    /// a full outbox refuses or drops the oldest as `options` say
    /// ([`Event::Dropped`]). `flush` waits until it is empty.
    ///
    /// [`Event::Delivered`]: crate::Event::Delivered
    /// [`Event::Dropped`]: crate::Event::Dropped
    ///
    /// A window given earlier with [`Reconnecting::set_window`] takes
    /// effect now.
    pub fn set_outbox(&mut self, outbox: &'a mut dyn Outbox, options: OutboxOptions) {
        self.flow = Some(Flow::new(outbox, options));
        if let Some(slots) = self.engine.window.take() {
            self.inner.set_window(slots);
        }
    }

    /// Messages the outbox dropped to make room
    /// ([`WhenFull::DropOldest`](crate::outbox::WhenFull::DropOldest)) since
    /// it was lent.
    pub fn outbox_dropped(&self) -> u32 {
        self.flow.as_ref().map_or(0, |flow| flow.dropped())
    }

    /// The outbox lent with [`Reconnecting::set_outbox`].
    pub fn outbox(&self) -> Option<&dyn Outbox> {
        self.flow.as_ref().map(|flow| flow.outbox())
    }

    /// The QoS 1 window for the outbox (see [`umqtt_simple::Client::set_window`]): up to
    /// `slots.len()` messages in flight at once.
    ///
    /// A message in flight is kept until its PUBACK so that a reconnect can
    /// send it again, so the window works only with an outbox: lent now if
    /// [`Reconnecting::set_outbox`] was called, else when it is. Until
    /// then a QoS 1 `publish` is refused with
    /// [`RobustError::WindowWithoutOutbox`] (nothing is sent). For a window
    /// and its storage in one call, see [`Reconnecting::set_window_in_ram`].
    pub fn set_window(&mut self, slots: &'a mut [u16]) {
        if self.flow.is_some() {
            self.inner.set_window(slots);
        } else {
            self.engine.window = Some(slots);
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
        self.engine.window = None;
        self.inner.set_window(slots);
    }

    /// Remembers the broker `connect` goes to, and every reconnect.
    pub(crate) fn aim(&mut self, broker: Target<'a>) {
        self.engine.broker = Some(broker);
    }

    /// The engine, and what it shares with the front-end during one call.
    pub(crate) fn split(&mut self) -> (&mut Engine<'a>, Io<'_, 'a, I>) {
        let io = Io::new(
            &mut self.inner,
            &mut self.flow,
            self.subscriptions.filters(),
        );
        (&mut self.engine, io)
    }

    /// What a call does to the remembered subscriptions before it runs:
    /// `subscribe` checks the filter and remembers it, `unsubscribe`
    /// forgets it.
    pub(crate) fn subscriptions_before(&mut self, task: &Task<'_>) -> Result<(), Failure<'a, I>> {
        match *task {
            Task::Subscribe(filter, qos) => {
                umqtt_simple::packet::validate_filter(filter).map_err(Error::Invalid)?;
                self.subscriptions.insert(filter, qos).map_err(|full| {
                    RobustError::SubscriptionsFull {
                        needed: full.needed,
                        free: full.free,
                    }
                })
            }
            Task::Unsubscribe(filter) => {
                self.subscriptions.remove(filter);
                Ok(())
            }
            _ => Ok(()),
        }
    }

    /// What a call's `result` does to the remembered subscriptions: a
    /// refused filter is forgotten (one whose deadline passed stays, to be
    /// subscribed on the next reconnect).
    pub(crate) fn subscriptions_after(
        &mut self,
        task: &Task<'_>,
        result: Result<Answer, Failure<'a, I>>,
    ) -> Result<Answer, Failure<'a, I>> {
        if let (
            Task::Subscribe(filter, _),
            Err(RobustError::Client(Error::SubscribeRefused { .. })),
        ) = (task, &result)
        {
            self.subscriptions.remove(filter);
        }
        result
    }
}
