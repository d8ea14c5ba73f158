//! The async client: the seed's API as `async fn`s over an
//! embedded-nal-async stack (embassy-net, or any other), a pump of the same
//! request [`Engine`] as the blocking [`crate::Client`].
//!
//! The pump owns the connection and the [`Timer`]: every wait for the
//! broker races the timer, so a silent broker cannot hang a call here
//! either. `pump.rs` moves bytes and time between the connection and the
//! engine, `race.rs` holds the two ways a future is bounded. It names no
//! executor and allocates nothing.

use core::net::SocketAddr;

use crate::Timer;
use crate::engine::Engine;
use crate::error::{Error, Waiting};
use crate::options::Options;
use embedded_nal_async::{AddrType, Dns, TcpConnect};

mod pump;
mod race;

/// The error type of an async client on stack `N`.
pub type AsyncClientError<N> = Error<<N as TcpConnect>::Error>;

/// An MQTT 3.1.1 client over any embedded-nal-async stack: the async twin
/// of [`crate::Client`], with the same methods as `async fn`s.
///
/// - `N`: the stack, borrowed: any [`TcpConnect`] (embassy-net's
///   `TcpClient`, for one). Its connections are embedded-io-async streams.
/// - `T`: the [`Timer`] every deadline is measured and awaited on
///   (`umqtt_transports::embassy::EmbassyTimer` on embassy,
///   `umqtt_transports::std_async::StdTimer` on std).
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
    /// The protocol and every request's sequence.
    engine: Engine<'a>,
    flush_after_send: bool,
}

crate::front_end::deref_to_engine!(['a, N: TcpConnect + 'a, T: Timer] Client<'a, N, T>);

impl<'a, N: TcpConnect + 'a, T: Timer> Client<'a, N, T> {
    /// A client that is not connected yet.
    pub fn new(
        net: &'a N,
        timer: T,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Self {
        let engine = Engine::new(tx, rx, options, timer.now_ms());
        Client {
            net,
            timer,
            connection: None,
            engine,
            flush_after_send: true,
        }
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

    /// Waits `ms` milliseconds on the timer, without touching any
    /// connection.
    pub async fn pause(&mut self, ms: u32) {
        let until = self.timer.now_ms().saturating_add(u64::from(ms));
        self.timer.sleep_until(until).await;
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
        let deadline = self.engine.connect_deadline(self.timer.now_ms());
        let lookup = dns.get_host_by_name(host, AddrType::Either);
        let ip = match race::before(&mut self.timer, deadline, lookup).await {
            None => return Err(Error::Timeout(Waiting::Dns)),
            Some(Err(e)) => return Err(Error::dns_failed(host, &e)),
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
        let flush = core::mem::replace(&mut self.flush_after_send, true);
        let result = self.close_politely().await;
        self.flush_after_send = flush;
        result
    }

    crate::front_end::client_requests!(AsyncClientError<N>, async, await);
}
