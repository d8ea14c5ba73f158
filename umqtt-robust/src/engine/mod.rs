//! The reconnect engine: every decision of the reconnecting client, once,
//! for the blocking and the async front-end. Sans-IO: it is told what
//! happened (a connection opened or was lost, time passed, a call began)
//! and answers what to do next (connect now, sleep until, resubscribe this
//! filter, send this message of the outbox again, or end the call with this
//! result); the front-end does it on its client. How the two talk is in
//! `io.rs`.
//!
//! - `policy.rs`: attempts, backoff, giving up, what a call's deadline
//!   makes of its error, the events the application hears;
//! - `connection.rs`: being connected (waiting out the backoff, one attempt,
//!   restoring the subscriptions) and noting a loss;
//! - `calls.rs`: each call of the public API, run across reconnects within
//!   its deadline;
//! - `delivery.rs`: the outbox's messages through the window, and draining.
//!
//! Adding a call (say MQTT 5's AUTH, once umqtt-simple's client has
//! `auth`): a [`Task`] variant and its procedure here (usually
//! `with_connection(io, call, || Command::Auth(..))`, which brings the
//! reconnects, the deadline and the backoff), a [`Command`] variant if the
//! inner client gains an operation, one line in `perform_command!` and one
//! method in `robust_calls!` (`crate::front_end`). Neither front-end changes.

use umqtt_simple::QoS;

mod calls;
mod connection;
mod delivery;
pub(crate) mod io;
pub(crate) mod policy;
#[cfg(test)]
mod tests;

pub(crate) use io::{Answer, Command, Io, Step, Target};

use crate::error::RobustError;
use crate::inner::InnerClient;
use crate::outbox::Queued;
use policy::Policy;

/// The error of a call on a reconnecting client wrapping `I`.
pub(crate) type Failure<'a, I> = RobustError<<I as InnerClient<'a>>::Error>;

/// What the engine keeps between calls.
pub(crate) struct Engine<'a> {
    pub(crate) policy: Policy<'a>,
    /// Where to connect; `None` before `connect` and after `disconnect`.
    pub(crate) broker: Option<Target<'a>>,
    /// A window given before any outbox: lent to the inner client with the
    /// outbox, since a message in flight must be kept until its PUBACK.
    pub(crate) window: Option<&'a mut [u16]>,
}

/// One call of the public API, with its arguments.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Task<'c> {
    /// `connect` / `connect_host` (to the broker already set).
    Connect,
    /// `disconnect`.
    Disconnect,
    /// `ping`.
    Ping,
    /// `publish`.
    Publish(Queued<'c>),
    /// `republish`, under this packet id.
    Republish(Queued<'c>, u16),
    /// `queue`.
    Queue(Queued<'c>),
    /// `flush`.
    Flush,
    /// `subscribe` (the filter is remembered already).
    Subscribe(&'c [u8], QoS),
    /// `unsubscribe` (the filter is forgotten already).
    Unsubscribe(&'c [u8]),
    /// `wait_msg`.
    WaitMsg,
    /// `wait_msg_for`.
    WaitMsgFor(u32),
    /// `check_msg`.
    CheckMsg,
}

impl<'a> Engine<'a> {
    /// The engine of a client whose inner client is `inner`.
    pub(crate) fn new<I: InnerClient<'a>>(inner: &I) -> Self {
        Engine {
            policy: Policy::new(inner.client_id(), inner.now_ms(), inner.dropped_messages()),
            broker: None,
            window: None,
        }
    }

    /// Runs one call to its end; the front-end performs what it asks for
    /// (see `io.rs`).
    pub(crate) async fn run<'c, I: InnerClient<'a>>(
        &mut self,
        io: &Io<'c, 'a, I>,
        task: Task<'c>,
    ) -> Result<Answer, Failure<'a, I>> {
        match task {
            Task::Connect => self.connect(io).await.map(Answer::Flag),
            Task::Disconnect => self.disconnect(io).await.map(|()| Answer::Unit),
            Task::Ping => self.ping(io).await,
            Task::Publish(message) => self.publish(io, message).await,
            Task::Republish(message, packet_id) => self.republish(io, message, packet_id).await,
            Task::Queue(message) => self.queue(io, message).await.map(Answer::Seq),
            Task::Flush => self.flush(io).await,
            Task::Subscribe(filter, qos) => self.subscribe(io, filter, qos).await,
            Task::Unsubscribe(filter) => self.unsubscribe(io, filter).await,
            Task::WaitMsg => self.wait_msg(io).await,
            Task::WaitMsgFor(timeout_ms) => {
                self.wait_msg_for(io, timeout_ms).await.map(Answer::Flag)
            }
            Task::CheckMsg => self.check_msg(io).await.map(Answer::Flag),
        }
    }
}
