//! The async reconnecting client (feature `async`): a pump over the same
//! reconnect engine (`crate::engine`) as the blocking
//! [`crate::RobustClient`], so every decision is made once. This front-end
//! owns the async umqtt-simple client and performs, `.await`ing, what the
//! engine asks of it (`pump.rs`); its public calls are written once for
//! both front-ends (`crate::front_end`), its settings and state are
//! [`Reconnecting`]'s.

use core::net::SocketAddr;

use embedded_nal_async::TcpConnect;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Options, QoS, Timer};

mod pump;

use crate::engine::{Answer, Target, Task};
use crate::error::RobustError;
use crate::outbox::Queued;
use crate::reconnecting::Reconnecting;

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
///
/// The calls that talk to the broker are below; the settings and state
/// (`set_callback`, `set_event_callback`, `set_outbox`, `set_window`,
/// `set_robust_options`, `is_connected`, …) are [`Reconnecting`]'s, the type
/// this one names, shared with the blocking client.
pub type RobustClient<'a, N, T, const SUB_BYTES: usize = 256> =
    Reconnecting<'a, Client<'a, N, T>, SUB_BYTES>;

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

    robust_calls!(AsyncRobustError<N>, async, await);
}
