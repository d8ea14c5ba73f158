//! What the blocking and the async front-end are made of, written once:
//! the public calls (each starts a task of the engine and converts its
//! answer), the loop that runs a task, and how the engine's commands map
//! onto umqtt-simple's client. The two flavours differ only by `async` and
//! `.await`, and Rust cannot be generic over that yet, so these are three
//! small macros that each front-end expands, once with and once without
//! `.await`. Every decision is the engine's (`crate::engine`); every
//! setting and state the [`Reconnecting`](crate::Reconnecting) type's.

/// The public calls of a reconnecting client: `robust_calls!(Error)` for
/// the blocking front-end, `robust_calls!(Error, async, await)` for the
/// async one, inside an `impl` of [`Reconnecting`](crate::Reconnecting)
/// over that front-end's inner client. The expansion site has
/// `SocketAddr`, `QoS`, `Client` (the inner client type), `RobustClient`,
/// `RobustError`, `Answer`, `Target`, `Task` and `Queued` in scope, and a
/// `run(task)` method that runs a task on the engine.
macro_rules! robust_calls {
    ($Error:ty $(, $async:ident, $await:ident)?) => {
        /// Connects to `addr` and remembers it for reconnects; returns "session
        /// present". One attempt, within the call deadline (resubscribing
        /// included); a failure is returned as it is (the address is kept, so
        /// later calls keep trying). With an outbox, what waits in it is sent
        /// first; if the connection is lost while it goes out, `connect` fails
        /// with [`RobustError::Offline`] and the messages stay for the next
        /// connection: `Ok` always means connected.
        pub $($async)? fn connect(&mut self, addr: SocketAddr) -> Result<bool, $Error> {
            self.aim(Target::Addr(addr));
            self.run(Task::Connect)$(.$await)?.map(Answer::flag)
        }

        /// Disconnects and stops reconnecting until the next `connect`.
        pub $($async)? fn disconnect(&mut self) -> Result<(), $Error> {
            self.run(Task::Disconnect)$(.$await)?.map(Answer::unit)
        }

        /// Sends PINGREQ, reconnecting first if needed.
        pub $($async)? fn ping(&mut self) -> Result<(), $Error> {
            self.run(Task::Ping)$(.$await)?.map(Answer::unit)
        }

        /// Publishes like [`Client::publish`]; after a lost connection it
        /// reconnects and sends again (QoS 1: with DUP and the same packet id),
        /// until the call deadline
        /// ([`RobustOptions::call_timeout_ms`](crate::RobustOptions::call_timeout_ms)).
        ///
        /// A QoS 1 message that was sent but not acknowledged by then is
        /// reported in [`RobustError::TimedOut`]'s `unacked`, with its packet
        /// id: send it again with [`RobustClient::republish`], not `publish`,
        /// so the broker sees the same message rather than a new one.
        ///
        /// With an outbox that takes the message (QoS 1, or QoS 0 with
        /// [`OutboxOptions::queue_qos0`](crate::outbox::OutboxOptions::queue_qos0)),
        /// it is queued instead (see [`RobustClient::queue`]).
        pub $($async)? fn publish(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            qos: QoS,
        ) -> Result<(), $Error> {
            let message = Queued::new(topic, payload, qos, retain);
            self.run(Task::Publish(message))$(.$await)?.map(Answer::unit)
        }

        /// Sends again, with DUP set and the same packet id, a QoS 1 message
        /// whose PUBACK never came: the one a [`RobustError::TimedOut`] reported
        /// as `unacked`. Reconnects and resends like `publish`, until the call
        /// deadline.
        pub $($async)? fn republish(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            packet_id: u16,
        ) -> Result<(), $Error> {
            let message = Queued::new(topic, payload, QoS::AtLeastOnce, retain);
            self.run(Task::Republish(message, packet_id))$(.$await)?.map(Answer::unit)
        }

        /// Sends the batched QoS 0 messages like [`Client::flush`], reconnecting
        /// first if needed. If the connection is lost on the way, the messages
        /// are lost with it ([`Event::Dropped`](crate::Event::Dropped)); the
        /// call reconnects and returns `Ok` (there is nothing left to send).
        /// With an outbox, it then waits until the outbox is empty (every
        /// message acknowledged), within the call deadline.
        pub $($async)? fn flush(&mut self) -> Result<(), $Error> {
            self.run(Task::Flush)$(.$await)?.map(Answer::unit)
        }

        /// Takes a message into the outbox (see [`RobustClient::set_outbox`])
        /// and returns its sequence number, which
        /// [`Event::Delivered`](crate::Event::Delivered) reports; sends what it
        /// can now, never waiting for a reconnect.
        /// [`RobustError::NotStarted`] without an outbox.
        pub $($async)? fn queue(
            &mut self,
            topic: &[u8],
            payload: &[u8],
            retain: bool,
            qos: QoS,
        ) -> Result<u32, $Error> {
            let message = Queued::new(topic, payload, qos, retain);
            self.run(Task::Queue(message))$(.$await)?.map(Answer::seq)
        }

        /// Subscribes like [`Client::subscribe`] and remembers the filter, so it
        /// is restored whenever the broker forgets it. The filter stays
        /// remembered when the call deadline passes (it is subscribed on the
        /// next reconnect); a refusal forgets it.
        pub $($async)? fn subscribe(&mut self, filter: &[u8], qos: QoS) -> Result<QoS, $Error> {
            self.run(Task::Subscribe(filter, qos))$(.$await)?.map(Answer::granted)
        }

        /// Unsubscribes and forgets the filter.
        pub $($async)? fn unsubscribe(&mut self, filter: &[u8]) -> Result<(), $Error> {
            self.run(Task::Unsubscribe(filter))$(.$await)?.map(Answer::unit)
        }

        /// Waits for one packet like [`Client::wait_msg`], reconnecting as needed;
        /// during an outage it returns [`RobustError::Offline`] once the call
        /// deadline has passed.
        pub $($async)? fn wait_msg(&mut self) -> Result<(), $Error> {
            self.run(Task::WaitMsg)$(.$await)?.map(Answer::unit)
        }

        /// Like [`Client::wait_msg_for`], reconnecting as needed within the
        /// same `timeout_ms`: it returns by then, a reconnect attempt included
        /// (over a link where connecting takes longer than `timeout_ms`, wait
        /// longer, or poll with `check_msg`, whose attempts get the whole
        /// connect timeout).
        pub $($async)? fn wait_msg_for(&mut self, timeout_ms: u32) -> Result<bool, $Error> {
            self.run(Task::WaitMsgFor(timeout_ms))$(.$await)?.map(Answer::flag)
        }

        /// Handles one packet if one has arrived, like [`Client::check_msg`].
        ///
        /// During an outage it returns `Ok(false)` at once, except when the
        /// backoff says a reconnect attempt is due: then it makes one attempt
        /// (bounded by the connect timeout).
        pub $($async)? fn check_msg(&mut self) -> Result<bool, $Error> {
            self.run(Task::CheckMsg)$(.$await)?.map(Answer::flag)
        }
    };
}

/// How a front-end runs a task of the engine: `robust_pump!(Error)` for
/// the blocking front-end, `robust_pump!(Error, async, await)` for the
/// async one, inside an `impl` of its `RobustClient`. The expansion site
/// has a function `perform(client, connect_host, command)` (`async` in the
/// async flavour) that performs one command on the inner client, with
/// `perform_command!`. Generates `run(task)`: the engine's task is polled
/// and each command it hands out performed, one at a time, until it ends.
/// A call dropped on the way (async) leaves the client usable, with the
/// command in progress cut short as the inner client's own call would be.
macro_rules! robust_pump {
    ($Error:ty $(, $async:ident, $await:ident)?) => {
        #[allow(
            clippy::await_holding_refcell_ref,
            reason = "the engine, the only other borrower, is suspended until the command is answered"
        )]
        pub(super) $($async)? fn run(
            &mut self,
            task: $crate::engine::Task<'_>,
        ) -> Result<$crate::engine::Answer, $Error> {
            use $crate::engine::Step;
            self.subscriptions_before(&task)?;
            let connect_host = self.connect_host;
            let result = {
                let (engine, io) = self.split();
                let mut work = core::pin::pin!(engine.run(&io, task));
                loop {
                    match io.resume(work.as_mut()) {
                        Step::Done(result) => break result,
                        Step::Perform(command) => {
                            let outbox = io.outbox();
                            let command = command.resolve(&outbox);
                            let answer = perform(&mut io.client(), connect_host, command)$(.$await)?;
                            io.answer(answer);
                        }
                    }
                }
            };
            self.subscriptions_after(&task, result)
        }
    };
}

/// Performs one command of the engine on an umqtt-simple client:
/// `perform_command!(client, connect_host, command)` for the blocking
/// front-end, with `, await` appended for the async one. A broker given by
/// name is reached through `connect_host` (set by the blocking
/// `connect_host` only: without it, a name is [`Error::Dns`](umqtt_simple::Error::Dns));
/// everything else maps onto the client's method of the same name.
macro_rules! perform_command {
    ($client:ident, $connect_host:ident, $command:expr $(, $await:ident)?) => {{
        use $crate::engine::{Answer, Command, Target};
        let done = |()| Answer::Unit;
        match $command {
            Command::Connect(Target::Addr(addr)) => $client.connect(addr)$(.$await)?.map(Answer::Flag),
            Command::Connect(Target::Host { name, port }) => match $connect_host {
                Some(connect) => connect($client, name, port).map(Answer::Flag),
                None => Err(umqtt_simple::Error::Dns),
            },
            Command::Subscribe(filter, qos) => {
                $client.subscribe(filter, qos)$(.$await)?.map(Answer::Granted)
            }
            Command::Unsubscribe(filter) => $client.unsubscribe(filter)$(.$await)?.map(done),
            Command::Ping => $client.ping()$(.$await)?.map(done),
            Command::Flush => $client.flush()$(.$await)?.map(done),
            Command::Disconnect => $client.disconnect()$(.$await)?.map(done),
            Command::CheckMsg => $client.check_msg()$(.$await)?.map(Answer::Flag),
            Command::WaitMsgFor(ms) => $client.wait_msg_for(ms)$(.$await)?.map(Answer::Flag),
            Command::Pause(ms) => Ok(done($client.pause(ms)$(.$await)?)),
            Command::Publish(m) => $client.publish(m.topic, m.payload, m.retain, m.qos)$(.$await)?.map(done),
            Command::PublishWithId(m, id) => {
                $client.publish_with_id(m.topic, m.payload, m.retain, id)$(.$await)?.map(done)
            }
            Command::Republish(m, id) => {
                $client.republish(m.topic, m.payload, m.retain, id)$(.$await)?.map(done)
            }
            Command::FromOutbox(_) => Ok(Answer::NotInOutbox),
        }
    }};
}
