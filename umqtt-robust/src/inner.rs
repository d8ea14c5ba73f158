//! What the reconnecting client needs of the umqtt-simple client it wraps
//! besides its I/O: the clock, the connection's state, the QoS 1 window and
//! the settings the application makes through the reconnecting client.
//! Implemented here, once, for the blocking and the async client, so the
//! reconnect engine and [`Reconnecting`](crate::Reconnecting) are written once
//! for both; the I/O (connect, publish, wait) stays in each front-end.

use embedded_nal::TcpClientStack;
use umqtt_simple::{Callback, Client, Clock, Error, QoS, UndeliveredCallback, Wait};

mod sealed {
    /// Only umqtt-simple's clients are inner clients.
    pub trait Sealed {}
}

/// An umqtt-simple client that a reconnecting client can wrap: the blocking
/// [`umqtt_simple::Client`], or (feature `async`) the async
/// `umqtt_simple::asynch::Client`. Sealed: it names what both already offer.
pub trait InnerClient<'a>: sealed::Sealed {
    /// The network stack's error.
    type Error: core::fmt::Debug;
    /// The client's clock, in ms.
    fn now_ms(&self) -> u64;
    /// The client id of its options.
    fn client_id(&self) -> &str;
    /// Whether a connection is up.
    fn is_connected(&self) -> bool;
    /// Packets received since the client was created.
    fn packets_received(&self) -> u32;
    /// Batched QoS 0 messages lost with a connection so far.
    fn dropped_messages(&self) -> u32;
    /// The QoS 1 window's size (0: no window).
    fn window_capacity(&self) -> usize;
    /// QoS 1 messages in flight.
    fn in_flight(&self) -> usize;
    /// Whether the message sent with `packet_id` still waits for its PUBACK.
    fn is_in_flight(&self, packet_id: u16) -> bool;
    /// A fresh packet id, taken.
    fn take_packet_id(&mut self) -> u16;
    /// Cuts every wait at `until` (`None`: no limit).
    fn limit_waits(&mut self, until: Option<u64>);
    /// Lends the QoS 1 window's slots.
    fn set_window(&mut self, slots: &'a mut [u16]);
    /// Sets the message callback.
    fn set_callback(&mut self, callback: Callback<'a>);
    /// Sets the callback for messages that could not be delivered.
    fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>);
    /// Sets the last will.
    fn set_last_will(
        &mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: QoS,
    ) -> Result<(), Error<Self::Error>>;
}

/// Implements [`InnerClient`] for a client type by forwarding to the
/// methods of the same names: its own (`set_last_will`) or those of the
/// [`Engine`](umqtt_simple::Engine) it dereferences to, named by path (a
/// method call would find this trait's method first and recurse).
macro_rules! forward_inner_client {
    ($now:ident) => {
        fn now_ms(&self) -> u64 {
            self.$now().now_ms()
        }
        fn client_id(&self) -> &str {
            self.options().client_id()
        }
        fn is_connected(&self) -> bool {
            umqtt_simple::Engine::is_connected(self)
        }
        fn packets_received(&self) -> u32 {
            umqtt_simple::Engine::packets_received(self)
        }
        fn dropped_messages(&self) -> u32 {
            umqtt_simple::Engine::dropped_messages(self)
        }
        fn window_capacity(&self) -> usize {
            umqtt_simple::Engine::window_capacity(self)
        }
        fn in_flight(&self) -> usize {
            umqtt_simple::Engine::in_flight(self)
        }
        fn is_in_flight(&self, packet_id: u16) -> bool {
            umqtt_simple::Engine::is_in_flight(self, packet_id)
        }
        fn take_packet_id(&mut self) -> u16 {
            umqtt_simple::Engine::take_packet_id(self)
        }
        fn limit_waits(&mut self, until: Option<u64>) {
            umqtt_simple::Engine::limit_waits(self, until)
        }
        fn set_window(&mut self, slots: &'a mut [u16]) {
            umqtt_simple::Engine::set_window(self, slots)
        }
        fn set_callback(&mut self, callback: Callback<'a>) {
            umqtt_simple::Engine::set_callback(self, callback)
        }
        fn set_undelivered_callback(&mut self, callback: UndeliveredCallback<'a>) {
            umqtt_simple::Engine::set_undelivered_callback(self, callback)
        }
        fn set_last_will(
            &mut self,
            topic: &'a [u8],
            message: &'a [u8],
            retain: bool,
            qos: QoS,
        ) -> Result<(), Error<Self::Error>> {
            self.set_last_will(topic, message, retain, qos)
        }
    };
}

impl<S: TcpClientStack, C: Clock, W: Wait<S>> sealed::Sealed for Client<'_, S, C, W> {}

impl<'a, S: TcpClientStack, C: Clock, W: Wait<S>> InnerClient<'a> for Client<'a, S, C, W> {
    type Error = S::Error;
    forward_inner_client!(clock);
}

#[cfg(feature = "async")]
mod asynch {
    use embedded_nal_async::TcpConnect;
    use umqtt_simple::asynch::Client;
    use umqtt_simple::{Callback, Error, QoS, Timer, UndeliveredCallback};

    use super::{InnerClient, sealed};

    impl<'a, N: TcpConnect + 'a, T: Timer> sealed::Sealed for Client<'a, N, T> {}

    impl<'a, N: TcpConnect + 'a, T: Timer> InnerClient<'a> for Client<'a, N, T> {
        type Error = N::Error;
        forward_inner_client!(timer);
    }
}
