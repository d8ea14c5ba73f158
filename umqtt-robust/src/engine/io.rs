//! How the engine and a front-end talk: the engine asks for one
//! [`Command`] at a time and is resumed with its answer; the front-end
//! performs it on its client and hands the answer back.
//!
//! The engine is written as straight-line `async` Rust that awaits nothing
//! but [`Io::request`]: a request parks the command in [`Io`] and suspends
//! the engine once. The front-end polls the engine with [`Io::resume`] (a
//! no-op waker: nothing else ever makes the engine wait), takes the command,
//! runs it on its own client (blocking, or `.await`ing), and returns the
//! answer with [`Io::answer`]. So the engine never touches a socket, a clock
//! or a waker, and both front-ends drive it with the same three calls.
//!
//! The inner client and the outbox are shared by the two sides through
//! `RefCell`s. The borrows never meet: the engine borrows only inside
//! synchronous helpers, never across a request, and the front-end borrows
//! only while the engine is suspended on one.

use core::cell::{Cell, Ref, RefCell, RefMut};
use core::future::Future;
use core::net::SocketAddr;
use core::pin::Pin;
use core::task::{Context, Poll, Waker};

use umqtt_simple::{Error, QoS};

use crate::inner::InnerClient;
use crate::outbox::{Flow, Queued};
use crate::subscriptions::Filters;

/// Where the client connects, and connects again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Target<'c> {
    /// An address.
    Addr(SocketAddr),
    /// A host name, looked up again on every attempt: a broker that moves
    /// to another address is found after the reconnect.
    Host {
        /// The name.
        name: &'c str,
        /// The port.
        port: u16,
    },
}

impl core::fmt::Display for Target<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Target::Addr(addr) => write!(f, "{addr}"),
            Target::Host { name, port } => write!(f, "{name}:{port}"),
        }
    }
}

/// A message of the outbox to send: the front-end reads its topic and
/// payload from the outbox ([`Command::resolve`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FromOutbox {
    /// Its sequence number.
    pub(crate) seq: u32,
    /// Its packet id (QoS 1).
    pub(crate) packet_id: Option<u16>,
    /// Whether it was sent before: then again with DUP and the same id.
    pub(crate) resend: bool,
}

/// One operation of the inner client the engine asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Command<'c> {
    /// Open a connection (CONNACK included); answers "session present".
    Connect(Target<'c>),
    /// Subscribe; answers the granted QoS.
    Subscribe(&'c [u8], QoS),
    /// Unsubscribe.
    Unsubscribe(&'c [u8]),
    /// Send PINGREQ.
    Ping,
    /// Send the batched QoS 0 messages.
    Flush,
    /// Send DISCONNECT and close.
    Disconnect,
    /// Handle a packet if one arrived; answers whether one did.
    CheckMsg,
    /// Wait up to this many ms for a packet; answers whether one came.
    WaitMsgFor(u32),
    /// Sleep this many ms, touching no connection.
    Pause(u32),
    /// Publish (QoS 1: under a new packet id of the client's).
    Publish(Queued<'c>),
    /// Publish at QoS 1 under this packet id, taken by the engine.
    PublishWithId(Queued<'c>, u16),
    /// Send a QoS 1 message again, with DUP, under its packet id.
    Republish(Queued<'c>, u16),
    /// Send a message of the outbox. After [`Command::resolve`], one that
    /// is still this command is not in the outbox: answer
    /// [`Answer::NotInOutbox`].
    FromOutbox(FromOutbox),
}

impl<'c> Command<'c> {
    /// Turns [`Command::FromOutbox`] into the publish it stands for, with
    /// the message's topic and payload read from `flow`; every other
    /// command is returned as it is.
    pub(crate) fn resolve<'g>(self, flow: &'g Option<Flow<'_>>) -> Command<'g>
    where
        'c: 'g,
    {
        let Command::FromOutbox(send) = self else {
            return self;
        };
        let Some(message) = flow.as_ref().and_then(|flow| flow.get(send.seq)) else {
            return self;
        };
        match (send.packet_id, send.resend) {
            (Some(packet_id), true) => Command::Republish(message, packet_id),
            (Some(packet_id), false) => Command::PublishWithId(message, packet_id),
            (None, _) => Command::Publish(message),
        }
    }
}

/// What a command, or a whole call, answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// Done.
    Unit,
    /// Connect: session present; `check_msg`, `wait_msg_for`: a packet was
    /// handled.
    Flag(bool),
    /// Subscribe: the granted QoS.
    Granted(QoS),
    /// Queue: the message's sequence number.
    Seq(u32),
    /// The outbox has no message of that number.
    NotInOutbox,
}

impl Answer {
    /// The flag (`false` for any other answer).
    pub(crate) fn flag(self) -> bool {
        matches!(self, Answer::Flag(true))
    }

    /// The granted QoS (`QoS::AtMostOnce` for any other answer).
    pub(crate) fn granted(self) -> QoS {
        match self {
            Answer::Granted(qos) => qos,
            _ => QoS::AtMostOnce,
        }
    }

    /// The sequence number (0 for any other answer).
    pub(crate) fn seq(self) -> u32 {
        match self {
            Answer::Seq(seq) => seq,
            _ => 0,
        }
    }

    /// Nothing: for calls that return `()`.
    pub(crate) fn unit(self) {}
}

/// What the front-end does next.
pub(crate) enum Step<'c, T> {
    /// Perform this command and [`Io::answer`].
    Perform(Command<'c>),
    /// The call is over, with this result.
    Done(T),
}

/// Where the engine's request and its answer wait.
enum Exchange<'c, E> {
    Idle,
    Asked(Command<'c>),
    Answered(Result<Answer, Error<E>>),
}

/// What the engine and the front-end share during one call.
pub(crate) struct Io<'c, 'a, I: InnerClient<'a>> {
    client: RefCell<&'c mut I>,
    flow: RefCell<&'c mut Option<Flow<'a>>>,
    filters: Filters<'c>,
    exchange: Cell<Exchange<'c, I::Error>>,
}

/// Suspends the engine once, so its front-end can perform the request.
struct YieldOnce(bool);

impl Future for YieldOnce {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<()> {
        if self.0 {
            Poll::Ready(())
        } else {
            self.0 = true;
            Poll::Pending
        }
    }
}

impl<'c, 'a, I: InnerClient<'a>> Io<'c, 'a, I> {
    pub(crate) fn new(
        client: &'c mut I,
        flow: &'c mut Option<Flow<'a>>,
        filters: Filters<'c>,
    ) -> Self {
        Io {
            client: RefCell::new(client),
            flow: RefCell::new(flow),
            filters,
            exchange: Cell::new(Exchange::Idle),
        }
    }

    // The engine's side.

    /// Asks the front-end to perform `command`; its answer.
    pub(crate) async fn request(&self, command: Command<'c>) -> Result<Answer, Error<I::Error>> {
        self.exchange.set(Exchange::Asked(command));
        YieldOnce(false).await;
        match self.exchange.replace(Exchange::Idle) {
            Exchange::Answered(answer) => answer,
            // Resumed without an answer: the front-end never does that.
            Exchange::Idle | Exchange::Asked(_) => Err(Error::NotConnected),
        }
    }

    /// Reads the inner client.
    pub(crate) fn inner<R>(&self, read: impl FnOnce(&I) -> R) -> R {
        read(&self.client.borrow())
    }

    /// Changes the inner client (no I/O).
    pub(crate) fn inner_mut<R>(&self, change: impl FnOnce(&mut I) -> R) -> R {
        change(&mut self.client.borrow_mut())
    }

    /// Uses the outbox, if one was lent.
    pub(crate) fn flow<R>(&self, use_flow: impl FnOnce(&mut Flow<'a>) -> R) -> Option<R> {
        self.flow.borrow_mut().as_mut().map(use_flow)
    }

    /// The remembered subscriptions.
    pub(crate) fn filters(&self) -> Filters<'c> {
        self.filters
    }

    /// The inner client's clock.
    pub(crate) fn now(&self) -> u64 {
        self.inner(|c| c.now_ms())
    }

    /// Whether a connection is up.
    pub(crate) fn connected(&self) -> bool {
        self.inner(|c| c.is_connected())
    }

    /// Whether the message sent with `packet_id` waits for its PUBACK.
    pub(crate) fn is_in_flight(&self, packet_id: u16) -> bool {
        self.inner(|c| c.is_in_flight(packet_id))
    }

    /// Cuts every wait of the inner client at `until`.
    pub(crate) fn limit_waits(&self, until: Option<u64>) {
        self.inner_mut(|c| c.limit_waits(until));
    }

    // The front-end's side.

    /// Runs the engine's `work` until it asks for a command or is done.
    pub(crate) fn resume<T>(&self, mut work: Pin<&mut impl Future<Output = T>>) -> Step<'c, T> {
        let mut cx = Context::from_waker(Waker::noop());
        loop {
            match work.as_mut().poll(&mut cx) {
                Poll::Ready(result) => return Step::Done(result),
                // Only `request` suspends the engine, and it leaves a
                // command first; without one there is nothing to do but
                // resume the engine.
                Poll::Pending => {
                    if let Exchange::Asked(command) = self.exchange.replace(Exchange::Idle) {
                        return Step::Perform(command);
                    }
                }
            }
        }
    }

    /// The inner client, to perform a command on.
    pub(crate) fn client(&self) -> RefMut<'_, &'c mut I> {
        self.client.borrow_mut()
    }

    /// The outbox, to [`Command::resolve`] a command with.
    pub(crate) fn outbox(&self) -> Ref<'_, &'c mut Option<Flow<'a>>> {
        self.flow.borrow()
    }

    /// Hands the engine the answer to its command.
    pub(crate) fn answer(&self, answer: Result<Answer, Error<I::Error>>) {
        self.exchange.set(Exchange::Answered(answer));
    }
}

/// A wait in ms, from a span in ms that may not fit.
pub(crate) fn ms(span: u64) -> u32 {
    u32::try_from(span).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{OutboxOptions, RamOutbox};

    #[test]
    fn a_message_of_the_outbox_resolves_to_the_publish_its_packet_id_and_history_call_for() {
        let mut storage = [0u8; 256];
        let mut outbox = RamOutbox::new(&mut storage);
        let mut flow = Flow::new(&mut outbox, OutboxOptions::default());
        let (seq, _) = flow
            .accept(&Queued::new(b"t", b"m", QoS::AtLeastOnce, true))
            .unwrap();
        let flow = Some(flow);
        let send = |packet_id, resend| {
            Command::FromOutbox(FromOutbox {
                seq,
                packet_id,
                resend,
            })
        };
        let message = |c: Command<'_>| match c {
            Command::Publish(m) | Command::PublishWithId(m, _) | Command::Republish(m, _) => {
                (m.topic.to_vec(), m.payload.to_vec(), m.retain)
            }
            other => panic!("not a publish: {other:?}"),
        };
        let first = send(Some(7), false).resolve(&flow);
        assert!(matches!(first, Command::PublishWithId(_, 7)));
        assert_eq!(message(first), (b"t".to_vec(), b"m".to_vec(), true));
        assert!(matches!(
            send(Some(7), true).resolve(&flow),
            Command::Republish(_, 7)
        ));
        assert!(matches!(
            send(None, false).resolve(&flow),
            Command::Publish(_)
        ));
        // One the outbox does not have stays unresolved: the front-end
        // answers NotInOutbox, and so it does without an outbox.
        let missing = Command::FromOutbox(FromOutbox {
            seq: seq + 1,
            packet_id: None,
            resend: false,
        });
        assert_eq!(missing.resolve(&flow), missing);
        assert_eq!(send(None, false).resolve(&None), send(None, false));
        // Every other command is left as it is.
        assert_eq!(Command::Ping.resolve(&flow), Command::Ping);
    }

    #[test]
    fn the_engine_waits_for_each_answer_and_a_call_ends_with_its_result() {
        use core::pin::pin;
        use umqtt_simple::{Client, Options};
        use umqtt_transports::memory::{MemoryStack, VirtualClock};

        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let mut client = Client::new(
            MemoryStack::new(),
            VirtualClock::starting_at(0),
            &mut tx,
            &mut rx,
            Options::new("io"),
        );
        let mut flow = None;
        let subscriptions = crate::Subscriptions::<8>::new();
        let io = Io::new(&mut client, &mut flow, subscriptions.filters());
        let mut work = pin!(async {
            let pinged = io.request(Command::Ping).await;
            let handled = io.request(Command::CheckMsg).await;
            (pinged, handled)
        });
        assert!(matches!(
            io.resume(work.as_mut()),
            Step::Perform(Command::Ping)
        ));
        io.answer(Ok(Answer::Unit));
        assert!(matches!(
            io.resume(work.as_mut()),
            Step::Perform(Command::CheckMsg)
        ));
        io.answer(Err(Error::Closed));
        match io.resume(work.as_mut()) {
            Step::Done((pinged, handled)) => {
                assert_eq!(pinged, Ok(Answer::Unit));
                assert_eq!(handled, Err(Error::Closed));
            }
            Step::Perform(command) => panic!("asked for {command:?} again"),
        }
    }
}
