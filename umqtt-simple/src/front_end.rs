//! What both clients are made of, written once, as macros each front-end
//! expands (the two flavours differ only by `async` and `.await`, over
//! which Rust cannot be generic yet): the blocking one with
//! `(ClientError<S>)`, the async one with `(AsyncClientError<N>, async,
//! await)`.
//!
//! - `client_requests!`: the requests both clients offer; each public
//!   method makes a request ([`crate::engine::requests`]) and runs it.
//! - `client_pump!`: running a request, the one loop of every call, and
//!   connecting; it asks the front-end for its I/O steps only.
//! - `deref_to_engine!`: the settings and counters both clients share are
//!   the [`Engine`](crate::Engine)'s, which each client dereferences to.
//!
//! What differs stays in each front-end: the I/O steps (`now`, `open`,
//! `send`, `read`, `wait`, `close`, `is_open`), `disconnect` (which closes
//! the connection its own way), `connect_host` and `pause`.

/// The loop of every call and connecting, for a client with a field
/// `engine` and these I/O steps of its own (each `async` in the async
/// flavour):
///
/// - `now(&self) -> u64`: the time on the client's clock;
/// - `open(&mut self, addr, deadline) -> Result<(), E>`: opens a
///   connection to `addr` before `deadline` (none is open);
/// - `send(&mut self, &dyn Request, deadline) -> Result<(), E>`: sends
///   what the engine has to send (`Engine::outgoing`), whole, before
///   `deadline` (anything less leaves the broker with half a packet, so
///   the connection is then lost);
/// - `read(&mut self, now) -> Result<(), E>`: reads what has arrived
///   into the engine's receive buffer, without waiting;
/// - `wait(&mut self, now, until) -> Result<(), E>`: waits for data
///   until `until` (reading it, if it can) and tells the engine;
/// - `is_open(&self) -> bool` and `close(&mut self)`: whether a connection
///   is open; drop it and tell the engine.
macro_rules! client_pump {
    ($Error:ty $(, $async:ident, $await:ident)?) => {
        /// Runs `request` until it settles; closes the connection if it
        /// was lost. Out of line: every public call runs through it, and a
        /// copy in each is larger code for no speed (measured on the no_std
        /// demo).
        #[inline(never)]
        pub(super) $($async)? fn run(
            &mut self,
            request: &mut dyn $crate::engine::Request,
        ) -> Result<bool, $Error> {
            let result = self.pump(request)$(.$await)?;
            self.settle(result)
        }

        /// The one loop of every call: does the I/O the engine asks for.
        pub(super) $($async)? fn pump(
            &mut self,
            request: &mut dyn $crate::engine::Request,
        ) -> Result<bool, $Error> {
            use $crate::engine::Io;
            loop {
                let now = self.now();
                match self.engine.step(request, now) {
                    Io::Send { deadline } => {
                        let sent = self.send(request, deadline)$(.$await)?;
                        match sent {
                            Ok(()) => self.engine.sent(now),
                            Err(_) => self.engine.send_failed(),
                        }
                        sent?
                    }
                    Io::Read => self.read(now)$(.$await)??,
                    Io::Wait { until } => self.wait(now, until)$(.$await)??,
                    Io::Done(result) => return result.map_err($crate::Error::on_stack),
                }
            }
        }

        /// Closes the connection if `result` is an error that lost it.
        pub(super) fn settle<V>(&mut self, result: Result<V, $Error>) -> Result<V, $Error> {
            if self.is_open() && self.engine.lost(&result) {
                self.close();
            }
            result
        }

        /// Connects to `addr` before `deadline`: everything is checked (and
        /// CONNECT encoded) before the network is touched, then an open
        /// connection is closed, a new one opened and CONNECT sent.
        pub(super) $($async)? fn connect_by(
            &mut self,
            addr: core::net::SocketAddr,
            deadline: u64,
        ) -> Result<bool, $Error> {
            let mut request = self
                .engine
                .connect(addr, deadline)
                .map_err($crate::Error::on_stack)?;
            self.close();
            self.open(addr, deadline)$(.$await)??;
            self.pump(&mut request)$(.$await)?
        }

        /// Sends DISCONNECT (behind any batched messages, in the same send)
        /// and closes the connection, whatever the send did: the front-end's
        /// `disconnect`.
        pub(super) $($async)? fn close_politely(&mut self) -> Result<(), $Error> {
            let result = self.pump(&mut $crate::engine::requests::Control::disconnect())$(.$await)?;
            self.close();
            log::info!("disconnected");
            result.map(drop)
        }

        /// Connects to the broker at `addr` and returns whether the broker
        /// kept a session ("session present").
        ///
        /// TCP connect, CONNECT and CONNACK share one deadline (the connect
        /// timeout). An open connection is closed first (batched messages
        /// still waiting are dropped with it). The options are checked
        /// before anything is sent.
        pub $($async)? fn connect(&mut self, addr: core::net::SocketAddr) -> Result<bool, $Error> {
            let deadline = self.engine.connect_deadline(self.now());
            let result = self.connect_by(addr, deadline)$(.$await)?;
            self.settle(result)
        }
    };
}

/// `Deref` and `DerefMut` to the client's field `engine`, for the client
/// type `$Client` with the generics in brackets.
macro_rules! deref_to_engine {
    ([$($generics:tt)*] $Client:ty) => {
        impl<$($generics)*> core::ops::Deref for $Client {
            type Target = $crate::Engine<'a>;

            fn deref(&self) -> &Self::Target {
                &self.engine
            }
        }

        impl<$($generics)*> core::ops::DerefMut for $Client {
            fn deref_mut(&mut self) -> &mut Self::Target {
                &mut self.engine
            }
        }
    };
}

/// The requests both clients offer, inside an `impl` of a client that has
/// the methods of `client_pump!`.
macro_rules! client_requests {
    ($Error:ty $(, $async:ident, $await:ident)?) => {
        /// Sets the last will (call before `connect`). The topic is checked now.
        pub fn set_last_will(
            &mut self,
            topic: &'a [u8],
            message: &'a [u8],
            retain: bool,
            qos: $crate::QoS,
        ) -> Result<(), $Error> {
            self.engine
                .set_will(topic, message, retain, qos)
                .map_err($crate::Error::on_stack)
        }

        /// Sends PINGREQ now; the PINGRESP is handled by later calls. The
        /// client also pings by itself when keepalive is due.
        pub $($async)? fn ping(&mut self) -> Result<(), $Error> {
            self.run(&mut $crate::engine::requests::Control::ping())$(.$await)?
                .map(drop)
        }

        /// Publishes `payload` to `topic`.
        ///
        /// With QoS 0, returns once the connection has the whole packet, or,
        /// in batched mode ([`Options::batch_qos0`](crate::Options::batch_qos0)),
        /// once it waits in the transmit buffer. With QoS 1, returns once the
        /// broker's PUBACK arrived (or the ack timeout passed); batched
        /// messages leave first, in the same send. With a window
        /// ([`Engine::set_window`](crate::Engine::set_window)), a QoS 1 publish
        /// returns once the message is sent, waiting only for room. Messages
        /// arriving meanwhile go to the callback: a QoS 1 message to a topic
        /// this client subscribes to usually comes back here, before the
        /// PUBACK, so a program that then waits for it with `wait_msg` would
        /// wait for a message already delivered.
        pub $($async)? fn publish(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            qos: $crate::QoS,
        ) -> Result<(), $Error> {
            let mut request = $crate::engine::requests::Publish::new(topic, payload, retain, qos);
            self.run(&mut request)$(.$await)?.map(drop)
        }

        /// Publishes again a QoS 1 message whose PUBACK never came, with DUP
        /// set and the packet id it was first sent with (after a reconnect).
        pub $($async)? fn republish(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            packet_id: u16,
        ) -> Result<(), $Error> {
            let mut request =
                $crate::engine::requests::Publish::with_id(topic, payload, retain, packet_id, true);
            self.run(&mut request)$(.$await)?.map(drop)
        }

        /// Publishes a QoS 1 message with a packet id from
        /// [`Engine::take_packet_id`](crate::Engine::take_packet_id);
        /// otherwise like `publish`.
        pub $($async)? fn publish_with_id(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            packet_id: u16,
        ) -> Result<(), $Error> {
            let mut request =
                $crate::engine::requests::Publish::with_id(topic, payload, retain, packet_id, false);
            self.run(&mut request)$(.$await)?.map(drop)
        }

        /// Subscribes to `filter` and returns the QoS the broker granted.
        /// A refusal (SUBACK 0x80) is [`Error::SubscribeRefused`](crate::Error::SubscribeRefused).
        pub $($async)? fn subscribe(&mut self, filter: &[u8], qos: $crate::QoS) -> Result<$crate::QoS, $Error> {
            let mut granted = [None];
            self.subscribe_many(&[(filter, qos)], &mut granted)$(.$await)??;
            granted[0].ok_or($crate::Error::SubscribeRefused { index: 0 })
        }

        /// Subscribes to several filters in one SUBSCRIBE. `granted[i]`
        /// receives the QoS granted for `filters[i]`, or `None` if the broker
        /// refused it; any refusal also makes the call return
        /// [`Error::SubscribeRefused`](crate::Error::SubscribeRefused) for the
        /// first refused filter, after all results are written.
        pub $($async)? fn subscribe_many(
            &mut self,
            filters: &[(&[u8], $crate::QoS)],
            granted: &mut [Option<$crate::QoS>],
        ) -> Result<(), $Error> {
            let mut request = $crate::engine::requests::Subscribe::new(filters, granted);
            self.run(&mut request)$(.$await)?.map(drop)
        }

        /// Unsubscribes from `filter` and waits for the UNSUBACK.
        pub $($async)? fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), $Error> {
            let mut request = $crate::engine::requests::Unsubscribe::new(filter);
            self.run(&mut request)$(.$await)?.map(drop)
        }

        /// Waits for one packet from the broker and handles it: a message
        /// goes to the callback, anything else is handled inside.
        ///
        /// Sends PINGREQ when keepalive is due while it waits, and fails with
        /// [`Error::Timeout`](crate::Error::Timeout)`(PingResp)` if the broker
        /// stops answering. With keepalive 0 it waits until something
        /// arrives: use `wait_msg_for` to bound the wait.
        pub $($async)? fn wait_msg(&mut self) -> Result<(), $Error> {
            while !self.wait_msg_for(u32::MAX)$(.$await)?? {}
            Ok(())
        }

        /// Like `wait_msg`, for at most `timeout_ms`; returns whether a
        /// packet was handled.
        pub $($async)? fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, $Error> {
            let mut request = $crate::engine::requests::Receive::one(Some(timeout_ms));
            self.run(&mut request)$(.$await)?
        }

        /// Handles one packet if one has arrived, and returns at once
        /// otherwise; returns whether a packet was handled. Never waits (and
        /// sends PINGREQ when keepalive is due).
        pub $($async)? fn check_msg(&mut self) -> Result<bool, $Error> {
            let mut request = $crate::engine::requests::Receive::one(None);
            self.run(&mut request)$(.$await)?
        }

        /// Sends the batched QoS 0 messages waiting in the transmit buffer
        /// ([`Options::batch_qos0`](crate::Options::batch_qos0)), in one send;
        /// returns at once if there are none. Like every call but `connect`,
        /// fails with [`Error::NotConnected`](crate::Error::NotConnected)
        /// without a connection (batched messages never outlive theirs).
        ///
        /// If the send fails, the connection is closed, the error returned
        /// and the messages are counted by
        /// [`Engine::dropped_messages`](crate::Engine::dropped_messages).
        pub $($async)? fn flush(&mut self) -> Result<(), $Error> {
            self.run(&mut $crate::engine::requests::Control::flush())$(.$await)?
                .map(drop)
        }

        /// Sends the batched QoS 0 messages and waits until every windowed
        /// QoS 1 message is acknowledged, for at most `timeout_ms`; returns
        /// whether all were (the connection stays up either way).
        pub $($async)? fn flush_for(&mut self, timeout_ms: u32) -> Result<bool, $Error> {
            let mut request = $crate::engine::requests::FlushFor::new(timeout_ms);
            self.run(&mut request)$(.$await)?
        }
    };
}

pub(crate) use {client_pump, client_requests, deref_to_engine};
