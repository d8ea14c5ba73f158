//! The `robust` target: the `client` target's script run on a
//! `umqtt_robust::RobustClient`, which reconnects by itself. A `Close` step
//! kills the connection and its chunk answers the next CONNECT, so the
//! fuzzer also writes the CONNACKs of reconnects (and the SUBACKs of the
//! resubscriptions that follow). With friendly reconnects (see `script`),
//! a valid CONNACK is also kept queued for every CONNECT.
//!
//! Checks, for any input, besides "never panics":
//! - never hangs: each call returns within a bound in virtual time: its own
//!   deadline (call timeout for `publish`, `subscribe`, `unsubscribe` and
//!   `ping`; the timeout for `wait_msg_for`; nothing for `check_msg` and
//!   `disconnect`), plus, for each TCP connection it opened meanwhile, one
//!   connect timeout and an ack timeout per resubscription and for the call
//!   itself;
//! - `connect`, `publish`, `subscribe`, `unsubscribe` and `ping` that return `Ok` leave
//!   the client connected (for `connect`: finding R1 in README.md);
//!   `disconnect` leaves it not connected;
//! - no call but `connect` and `disconnect` returns an inner error that lost
//!   the connection: those are recovered from by reconnecting;
//! - what the client sends passes the exchange oracle ([`Exchange`], with
//!   DUP ids the client's own: the application never picks one here).
//!
//! The `outbox` target runs the same script with an outbox
//! (`set_outbox(RamOutbox)`, 64 to 1024 bytes, refusing or dropping the
//! oldest when full, optionally taking QoS 0) and optionally a QoS 1 window
//! (`set_window`, 1 to 4 slots), from the extras byte of
//! [`Script::parse_extended`]. Every message it publishes has a payload of
//! its own (a two-byte number first). Checks besides, with the exchange
//! oracle's window bound:
//! - every QoS 1 PUBLISH on the wire (and QoS 0 one, when the outbox takes
//!   QoS 0) carries a message the outbox took, and first sendings (no DUP)
//!   go in the order the messages were taken, each once; resends carry DUP
//!   and an id the client sent before;
//! - each `Event::Delivered` names a different sequence number, and the
//!   outbox holds what it took less what was delivered, dropped, and (QoS 0
//!   leaves it once handed to the inner client) sent at QoS 0, batched or
//!   lost with the batch;
//! - `flush` that returns `Ok` leaves the outbox empty;
//! - `publish` returns at once whether or not connected (its `Ok` does not
//!   promise a connection), within the same bound as without an outbox.

use core::cell::RefCell;
use std::collections::HashSet;

use umqtt_robust::outbox::{OutboxOptions, RamOutbox, WhenFull};
use umqtt_robust::{Backoff, Event, RobustClient, RobustError, RobustOptions};
use umqtt_simple::{Client, Message, QoS};
use umqtt_transports::Clock;
use umqtt_transports::memory::VirtualClock;

use crate::client::options;
use crate::script::{Config, Op, Script, Step, WAIT_TIMEOUTS};
use crate::wire::{
    ACK_MS, BROKER, CONNACK, CONNECT_MS, Exchange, FILTER, FILTER_2, PAYLOAD, Recording,
    RecordingWait, Rig, SentPublish, TOPIC,
};
use crate::{Trace, Value};

/// How long a call may spend reconnecting.
pub const OUTAGE_MS: u32 = 10_000;
/// Filters the script can subscribe to, so resubscriptions after a reconnect.
const MAX_SUBSCRIPTIONS: u64 = 2;

type Fuzzed<'a> = RobustClient<'a, Recording, VirtualClock, RecordingWait>;

/// What one operation of a robust client returned, whichever front-end ran
/// it.
pub enum Outcome {
    /// `Ok`, with its value.
    Ok(Value),
    /// An error: whether it is the inner client's and lost the connection
    /// (which the robust client should have recovered from), and the error
    /// for the trace.
    Err {
        /// `RobustError::Client(e)` with `e.is_connection_lost()`.
        inner_lost: bool,
        /// The error itself.
        error: Box<dyn core::fmt::Debug>,
    },
}

impl core::fmt::Debug for Outcome {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            Outcome::Ok(value) => write!(f, "Ok({value:?})"),
            Outcome::Err { error, .. } => write!(f, "Err({error:?})"),
        }
    }
}

impl<T: Into<Value>, E: core::fmt::Debug + 'static> From<Result<T, RobustError<E>>> for Outcome {
    fn from(result: Result<T, RobustError<E>>) -> Self {
        match result {
            Ok(value) => Outcome::Ok(value.into()),
            Err(e) => Outcome::Err {
                inner_lost: matches!(&e, RobustError::Client(inner) if inner.is_connection_lost()),
                error: Box::new(e),
            },
        }
    }
}

/// A robust client front-end the script drives: the blocking
/// `RobustClient`, or the async one (`crate::asynch`).
pub trait RobustFront {
    /// Does what `step` says, publishing `payload`.
    fn perform(&mut self, rig: &Rig, step: &Step<'_>, payload: &[u8]) -> Outcome;
    /// `connect(BROKER)`.
    fn connect(&mut self) -> Outcome;
    /// `is_connected()`.
    fn is_connected(&self) -> bool;
    /// The outbox's `len()`, if one is lent.
    fn outbox_len(&self) -> Option<usize>;
    /// `outbox_dropped()`.
    fn outbox_dropped(&self) -> u32;
    /// The inner client's `pending_messages()`.
    fn pending_messages(&self) -> u32;
    /// The inner client's `dropped_messages()`.
    fn dropped_messages(&self) -> u32;
}

/// The backoff and deadline every fuzzed robust client uses.
pub fn robust_options(config: &Config) -> RobustOptions {
    RobustOptions {
        backoff: Backoff {
            min_ms: 100,
            max_ms: 1_600,
            max_attempts: config.max_attempts,
        },
        call_timeout_ms: OUTAGE_MS,
    }
}

/// The outbox options of the `outbox` targets, from the input's config.
pub fn outbox_options(config: &Config) -> OutboxOptions {
    OutboxOptions {
        when_full: if config.drop_oldest {
            WhenFull::DropOldest
        } else {
            WhenFull::Refuse
        },
        queue_qos0: config.queue_qos0,
    }
}

/// What the `outbox` target knows of the messages it published.
#[derive(Debug, Default)]
struct Ledger {
    /// Payloads of the messages the outbox took, in order.
    taken: Vec<Vec<u8>>,
    /// How many of `taken` went out a first time (no DUP), in order.
    first_sent: usize,
    /// Sequence numbers `Event::Delivered` named.
    delivered: HashSet<u32>,
    /// Messages published so far (the next payload's number).
    published: u16,
    /// QoS 0 messages of the outbox's that went out (and left it).
    qos0_sent: usize,
}

impl Ledger {
    /// A payload no other message of this input has.
    fn payload(&mut self, len: usize) -> Vec<u8> {
        self.published += 1;
        let mut payload = self.published.to_be_bytes().to_vec();
        payload.extend_from_slice(&PAYLOAD[..len]);
        payload
    }

    fn check_wire(&mut self, publishes: &[SentPublish], queue_qos0: bool) {
        for sent in publishes {
            if sent.qos == QoS::AtMostOnce && !queue_qos0 {
                continue;
            }
            let Some(at) = self.taken.iter().position(|p| *p == sent.payload) else {
                panic!("{sent:?} carries a message the outbox never took");
            };
            if sent.qos == QoS::AtMostOnce {
                self.qos0_sent += 1;
            }
            if !sent.dup {
                assert!(
                    at >= self.first_sent,
                    "message {at} sent a first time again, or out of order (after {})",
                    self.first_sent
                );
                self.first_sent = at + 1;
            }
        }
    }
}

/// Runs one input of the `robust` target; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    run_script(&Script::parse(data), false, trace);
}

/// Runs one input of the `outbox` target (a header of three bytes, the
/// third giving the outbox and window); panics when a check fails.
pub fn run_with_outbox(data: &[u8], trace: &mut Trace) {
    run_script(&Script::parse_extended(data), true, trace);
}

impl RobustFront for Fuzzed<'_> {
    fn perform(&mut self, rig: &Rig, step: &Step<'_>, payload: &[u8]) -> Outcome {
        perform(self, rig, step, payload)
    }

    fn connect(&mut self) -> Outcome {
        RobustClient::connect(self, BROKER).into()
    }

    fn is_connected(&self) -> bool {
        RobustClient::is_connected(self)
    }

    fn outbox_len(&self) -> Option<usize> {
        self.outbox().map(|o| o.len())
    }

    fn outbox_dropped(&self) -> u32 {
        RobustClient::outbox_dropped(self)
    }

    fn pending_messages(&self) -> u32 {
        self.client().pending_messages()
    }

    fn dropped_messages(&self) -> u32 {
        self.client().dropped_messages()
    }
}

fn run_script(script: &Script<'_>, with_outbox: bool, trace: &mut Trace) {
    let config = script.config;
    let window = (config.window > 0).then_some(config.window);
    let mut rig = Rig::new(config.send_limit, Exchange::new(true, window));
    let events = RefCell::new(Vec::new());
    let mut on_event = |event: Event| events.borrow_mut().push(event);
    let mut slots = vec![0u16; config.window];
    let mut outbox_buf = vec![0u8; config.outbox_len];
    let mut outbox = RamOutbox::new(&mut outbox_buf);
    let rx_len = config.rx_len;
    let mut on_message = |m: Message<'_>| {
        assert!(m.topic.len() + m.payload.len() <= rx_len);
    };
    let (mut tx, mut rx) = (vec![0u8; config.tx_len], vec![0u8; config.rx_len]);
    let inner = Client::new(
        rig.stack.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        options(&config),
    )
    .with_waiter(rig.waiter.clone());
    let mut client = RobustClient::from_client(inner);
    client.set_robust_options(robust_options(&config));
    if config.callback {
        client.set_callback(&mut on_message);
    }
    client.set_event_callback(&mut on_event);
    if with_outbox {
        client.set_outbox(&mut outbox, outbox_options(&config));
        if window.is_some() {
            client.set_window(&mut slots);
        }
    }
    drive(&mut client, &mut rig, script, with_outbox, &events, trace);
}

/// Connects `client` (a valid CONNACK), then runs the script's steps on it
/// and checks each; panics when a check fails. `events` is what the
/// client's event callback collects.
pub fn drive(
    client: &mut dyn RobustFront,
    rig: &mut Rig,
    script: &Script<'_>,
    with_outbox: bool,
    events: &RefCell<Vec<Event>>,
    trace: &mut Trace,
) {
    let config = script.config;
    trace.note(|| format!("{config:?} outbox: {with_outbox}"));
    let mut ledger = Ledger::default();
    rig.net.answer(0x10, CONNACK);
    let connected = client.connect();
    assert!(
        matches!(connected, Outcome::Ok(Value::Bool(false))),
        "a valid CONNACK connects: {connected:?}"
    );
    rig.check_sent();

    // Whether a valid CONNACK is queued for the next CONNECT (friendly).
    let mut armed = false;
    for step in script.steps() {
        if config.friendly && !armed {
            rig.net.answer(0x10, CONNACK);
            armed = true;
        }
        rig.deliver(&step);
        let start = rig.clock.now_ms();
        let connects_before = rig.net.connects();
        let taken_by_outbox = with_outbox
            && match step.op {
                Op::PublishQos1 | Op::Republish => true,
                Op::PublishQos0 => config.queue_qos0,
                _ => false,
            };
        let payload = if with_outbox {
            ledger.payload(9 * usize::from(step.param))
        } else {
            PAYLOAD[..9 * usize::from(step.param)].to_vec()
        };
        let outcome = client.perform(rig, &step, &payload);
        if taken_by_outbox && matches!(outcome, Outcome::Ok(_)) {
            ledger.taken.push(payload);
        }
        let elapsed = rig.clock.now_ms() - start;
        let connects = u64::from(rig.net.connects() - connects_before);
        // A CONNECT took the first queued answer; a Close dropped them all.
        armed &= connects == 0 && step.op != Op::Close;
        trace.note(|| {
            format!("{step:?} -> {outcome:?} after {elapsed} ms, {connects} connection(s)")
        });

        let per_connection = u64::from(CONNECT_MS) + MAX_SUBSCRIPTIONS * u64::from(ACK_MS);
        let reconnecting = connects * per_connection;
        let bound = match step.op {
            Op::Disconnect | Op::Close => 0,
            // A flush that loses the connection reconnects, like a publish.
            Op::Flush => u64::from(OUTAGE_MS) + reconnecting + u64::from(CONNECT_MS),
            Op::CheckMsg => reconnecting,
            Op::Advance => 700 * u64::from(step.param),
            Op::WaitMsgFor => {
                u64::from(WAIT_TIMEOUTS[usize::from(step.param)])
                    + reconnecting
                    + u64::from(CONNECT_MS)
            }
            Op::Connect => u64::from(CONNECT_MS) + MAX_SUBSCRIPTIONS * u64::from(ACK_MS),
            Op::PublishQos0
            | Op::PublishQos1
            | Op::Republish
            | Op::Subscribe
            | Op::SubscribeMany
            | Op::Unsubscribe
            | Op::Ping => {
                u64::from(OUTAGE_MS)
                    + reconnecting
                    + u64::from(CONNECT_MS)
                    + (connects + 1) * u64::from(ACK_MS)
            }
        };
        assert!(
            elapsed <= bound,
            "{:?} took {elapsed} ms of virtual time over {connects} connection(s); its bound is {bound} ms",
            step.op
        );

        let connected = client.is_connected();
        let sent = rig.check_sent();
        match (&outcome, step.op) {
            (Outcome::Ok(_), Op::Disconnect) => assert!(!connected),
            (
                Outcome::Ok(_),
                Op::PublishQos0
                | Op::PublishQos1
                | Op::Republish
                | Op::Subscribe
                | Op::SubscribeMany
                | Op::Unsubscribe
                | Op::Ping
                | Op::Connect,
            ) if !taken_by_outbox => {
                assert!(connected, "{:?} returned Ok but is not connected", step.op)
            }
            // Documented: a lost connection is recovered from, not returned,
            // once the broker's address is known (connect returns its own).
            (
                Outcome::Err {
                    inner_lost: true,
                    error,
                },
                op,
            ) if op != Op::Connect && op != Op::Disconnect => {
                panic!("{op:?} returned the inner client's {error:?} instead of reconnecting");
            }
            _ => {}
        }
        for event in events.borrow_mut().drain(..) {
            if let Event::Delivered { seq } = event {
                assert!(
                    ledger.delivered.insert(seq),
                    "message {seq} delivered twice"
                );
            }
        }
        if with_outbox {
            ledger.check_wire(&sent.publishes, config.queue_qos0);
            let outbox = client.outbox_len().unwrap_or(0);
            let mut gone = ledger.delivered.len() + client.outbox_dropped() as usize;
            if config.queue_qos0 {
                // QoS 0 leaves the outbox when handed to the inner client:
                // sent, batched, or batched and lost with a connection.
                gone += ledger.qos0_sent
                    + client.pending_messages() as usize
                    + client.dropped_messages() as usize;
            }
            assert_eq!(
                outbox + gone,
                ledger.taken.len(),
                "the outbox holds {outbox}, {gone} delivered, sent at QoS 0 or dropped, of {} taken",
                ledger.taken.len()
            );
            if step.op == Op::Flush && matches!(outcome, Outcome::Ok(_)) {
                assert_eq!(outbox, 0, "flush returned Ok with messages in the outbox");
            }
        }
    }
}

fn perform(client: &mut Fuzzed<'_>, rig: &Rig, step: &Step<'_>, payload: &[u8]) -> Outcome {
    match step.op {
        Op::PublishQos0 => client
            .publish(TOPIC, payload, false, QoS::AtMostOnce)
            .into(),
        Op::PublishQos1 => client
            .publish(TOPIC, payload, false, QoS::AtLeastOnce)
            .into(),
        // With an outbox: `queue`, which never waits for a reconnect.
        Op::Republish if client.outbox().is_some() => client
            .queue(TOPIC, payload, false, QoS::AtLeastOnce)
            .map(|_| ())
            .into(),
        Op::Republish => client
            .publish(TOPIC, payload, false, QoS::AtLeastOnce)
            .into(),
        Op::Subscribe => {
            let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
            client.subscribe(FILTER, qos).into()
        }
        Op::SubscribeMany => {
            let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
            client.subscribe(FILTER_2, qos).into()
        }
        Op::Unsubscribe => client.unsubscribe(FILTER).into(),
        Op::WaitMsgFor => client
            .wait_msg_for(WAIT_TIMEOUTS[usize::from(step.param)])
            .into(),
        Op::CheckMsg => client.check_msg().into(),
        Op::Ping => client.ping().into(),
        Op::Advance => {
            rig.clock.advance(700 * u64::from(step.param));
            Outcome::Ok(Value::Unit)
        }
        Op::Close => {
            rig.close(step.chunk);
            Outcome::Ok(Value::Unit)
        }
        Op::Connect => client.connect(BROKER).into(),
        Op::Disconnect => client.disconnect().into(),
        Op::Flush => {
            if step.param & 1 == 1 {
                let options = *client.client().options();
                client
                    .client_mut()
                    .set_options(options.batch_qos0(!options.is_batching_qos0()));
            }
            client.flush().into()
        }
    }
}
