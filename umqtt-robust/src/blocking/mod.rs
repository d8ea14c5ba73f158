//! The blocking reconnecting client: a pump over the reconnect engine
//! (`crate::engine`), which makes every decision. This front-end owns the
//! blocking umqtt-simple client and performs what the engine asks of it
//! (`pump.rs`); its public calls are written once for both front-ends
//! (`crate::front_end`), its settings and state are [`Reconnecting`]'s.

use core::net::SocketAddr;

use embedded_nal::{Dns, TcpClientStack};
use umqtt_simple::{Client, Clock, Options, QoS, Spin, Wait};

mod pump;

use crate::engine::{Answer, Target, Task};
use crate::error::RobustError;
use crate::outbox::Queued;
use crate::reconnecting::Reconnecting;

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
/// - no call outlives its deadline ([`RobustOptions::call_timeout_ms`](crate::RobustOptions::call_timeout_ms)),
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
///
/// The calls that talk to the broker are below; the settings and state
/// (`set_callback`, `set_event_callback`, `set_outbox`, `set_window`,
/// `set_robust_options`, `is_connected`, …) are [`Reconnecting`]'s, the type
/// this one names, shared with the async client.
pub type RobustClient<'a, S, C, W = Spin, const SUB_BYTES: usize = 256> =
    Reconnecting<'a, Client<'a, S, C, W>, SUB_BYTES>;

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
    /// The same client, waiting with `waiter` (see [`Client::with_waiter`]).
    /// Call it before connecting: a broker given by name
    /// ([`RobustClient::connect_host`]) is forgotten, and must be given again.
    pub fn with_waiter<W2: Wait<S>>(self, waiter: W2) -> RobustClient<'a, S, C, W2, SUB_BYTES> {
        self.map_inner(|inner| inner.with_waiter(waiter))
    }

    robust_calls!(RobustClientError<S>);
}

impl<'a, S: TcpClientStack + Dns, C: Clock, W: Wait<S>, const SUB_BYTES: usize>
    RobustClient<'a, S, C, W, SUB_BYTES>
{
    /// Connects to `host` like [`Client::connect_host`] and remembers the
    /// name: every reconnect looks it up again, so a broker that moved to
    /// another address is found. Returns "session present"; a failure here
    /// is returned as it is (the name is kept, so later calls keep trying).
    pub fn connect_host(&mut self, host: &'a str, port: u16) -> Result<bool, RobustClientError<S>> {
        self.connect_host = Some(Client::connect_host);
        self.aim(Target::Host { name: host, port });
        self.run(Task::Connect).map(Answer::flag)
    }
}
