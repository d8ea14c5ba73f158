//! The `client` target: a `umqtt_simple::Client` connected (valid CONNACK)
//! to a broker whose every later byte is fuzzer input.
//!
//! Checks, for any input, besides "never panics":
//! - never hangs: each operation returns within its deadline in virtual time
//!   (QoS 0 publish, `check_msg`, `ping` and `disconnect` take no time at
//!   all; acknowledged operations at most the ack timeout; `wait_msg_for(t)`
//!   at most `t`; `connect` at most the connect timeout), and libFuzzer's
//!   `-timeout` catches a loop that does not advance the clock;
//! - state is consistent: `Ok` leaves the client connected (`disconnect`
//!   leaves it not), an error that loses the connection leaves it not
//!   connected, any other error leaves the connection as it was, and a
//!   connected client never answers `NotConnected`;
//! - what the client sends passes the exchange oracle ([`Exchange`]: whole
//!   packets of the kinds a client sends, each acknowledgement answering a
//!   packet of the broker's, packet ids not reused while waited on), and
//!   each QoS 1 (QoS 2) message delivered to the callback is acknowledged
//!   with a PUBACK (PUBREC) before the call returns, unless the call lost
//!   the connection.
//!
//! The `window` target runs the same script with a QoS 1 window
//! (`Client::set_window`, 1 to 4 slots, from the extras byte of
//! [`Script::parse_extended`]) and checks besides: at most that many QoS 1
//! messages unacknowledged on one connection (on the wire and by
//! `in_flight`), every id the ack
//! callback reports was sent in a PUBLISH; its `Flush` step with
//! `param & 2` is `flush_for(ack timeout)`.
//!
//! With friendly reconnects (see `script`), a call that lost the connection
//! is followed by a reconnect with a valid CONNACK, so one input explores
//! several sessions instead of ending in `NotConnected`.

use core::cell::{Cell, RefCell};

use umqtt_simple::{Client, Engine, Message, Options, QoS};
use umqtt_transports::Clock;
use umqtt_transports::memory::VirtualClock;

use crate::script::{Config, Op, Script, Step, WAIT_TIMEOUTS};
use crate::wire::{
    ACK_MS, BROKER, CONNACK, CONNECT_MS, Exchange, FILTER, FILTER_2, PAYLOAD, Recording,
    RecordingWait, Rig, SEND_MS, TOPIC,
};
use crate::{Trace, Value};

type Fuzzed<'a> = Client<'a, Recording, VirtualClock, RecordingWait>;

/// The options every fuzzed client uses, from the input's config.
pub fn options(config: &Config) -> Options<'static> {
    let options = Options::new("fuzz")
        .keepalive(config.keepalive_s)
        .connect_timeout_ms(CONNECT_MS)
        .ack_timeout_ms(ACK_MS)
        .send_timeout_ms(SEND_MS);
    match config.ping_timeout_ms {
        Some(ms) => options.ping_timeout_ms(ms),
        None => options,
    }
}

/// What one operation returned, whichever front-end ran it.
pub enum Outcome {
    /// `Ok`, with its value.
    Ok(Value),
    /// An error: whether it lost the connection, whether it was
    /// `NotConnected`, and the error for the trace.
    Err {
        /// [`umqtt_simple::Error::is_connection_lost`].
        lost: bool,
        /// Whether it is [`umqtt_simple::Error::NotConnected`].
        not_connected: bool,
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

impl<T: Into<Value>, E: core::fmt::Debug + 'static> From<Result<T, umqtt_simple::Error<E>>>
    for Outcome
{
    fn from(result: Result<T, umqtt_simple::Error<E>>) -> Self {
        match result {
            Ok(value) => Outcome::Ok(value.into()),
            Err(e) => Outcome::Err {
                lost: e.is_connection_lost(),
                not_connected: matches!(e, umqtt_simple::Error::NotConnected),
                error: Box::new(e),
            },
        }
    }
}

/// A client front-end the script drives: the blocking `Client`, or the
/// async one run to completion on virtual time (`crate::asynch`).
pub trait Front {
    /// Does what `step` says.
    fn perform(&mut self, rig: &Rig, step: &Step<'_>) -> Outcome;
    /// `connect(BROKER)`.
    fn reconnect(&mut self) -> Outcome;
    /// `is_connected()`.
    fn is_connected(&self) -> bool;
    /// `pending_messages()`.
    fn pending_messages(&self) -> u32;
    /// `in_flight()`.
    fn in_flight(&self) -> usize;
    /// `window_capacity()`.
    fn window_capacity(&self) -> usize;
    /// `is_in_flight(id)`.
    fn is_in_flight(&self, id: u16) -> bool;
}

/// What a client's callbacks heard during one step.
#[derive(Default)]
pub struct Heard {
    /// QoS 1 messages delivered.
    pub qos1: Cell<usize>,
    /// QoS 2 messages delivered.
    pub qos2: Cell<usize>,
    /// Packet ids the ack callback reported.
    pub acked: RefCell<Vec<u16>>,
}

impl Heard {
    /// Counts a delivered message (checking it fits the receive buffer).
    pub fn message(&self, m: &Message<'_>, rx_len: usize) {
        assert!(m.topic.len() + m.payload.len() <= rx_len);
        match m.qos {
            QoS::AtMostOnce => {}
            QoS::AtLeastOnce => self.qos1.set(self.qos1.get() + 1),
            QoS::ExactlyOnce => self.qos2.set(self.qos2.get() + 1),
        }
    }
}

/// Runs one input of the `client` target; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    run_blocking(&Script::parse(data), trace);
}

/// Runs one input of the `window` target (a header of three bytes, the
/// third giving the window); panics when a check fails.
pub fn run_windowed(data: &[u8], trace: &mut Trace) {
    run_blocking(&Script::parse_extended(data), trace);
}

impl Front for Fuzzed<'_> {
    fn perform(&mut self, rig: &Rig, step: &Step<'_>) -> Outcome {
        perform(self, rig, step)
    }

    fn reconnect(&mut self) -> Outcome {
        self.connect(BROKER).into()
    }

    fn is_connected(&self) -> bool {
        Engine::is_connected(self)
    }

    fn pending_messages(&self) -> u32 {
        Engine::pending_messages(self)
    }

    fn in_flight(&self) -> usize {
        Engine::in_flight(self)
    }

    fn window_capacity(&self) -> usize {
        Engine::window_capacity(self)
    }

    fn is_in_flight(&self, id: u16) -> bool {
        Engine::is_in_flight(self, id)
    }
}

fn run_blocking(script: &Script<'_>, trace: &mut Trace) {
    let config = script.config;
    let window = (config.window > 0).then_some(config.window);
    let mut rig = Rig::new(config.send_limit, Exchange::new(false, window));
    let heard = Heard::default();
    let rx_len = config.rx_len;
    let mut on_message = |m: Message<'_>| heard.message(&m, rx_len);
    let mut on_ack = |id: u16| heard.acked.borrow_mut().push(id);
    let mut slots = vec![0u16; config.window];
    let (mut tx, mut rx) = (vec![0u8; config.tx_len], vec![0u8; config.rx_len]);
    let mut client = Client::new(
        rig.stack.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        options(&config),
    )
    .with_waiter(rig.waiter.clone());
    if config.callback {
        client.set_callback(&mut on_message);
    }
    if window.is_some() {
        client.set_window(&mut slots);
        client.set_ack_callback(&mut on_ack);
    }
    drive(&mut client, &mut rig, script, &heard, trace);
}

/// Connects `client` (a valid CONNACK), then runs the script's steps on it
/// and checks each; panics when a check fails.
pub fn drive(
    client: &mut dyn Front,
    rig: &mut Rig,
    script: &Script<'_>,
    heard: &Heard,
    trace: &mut Trace,
) {
    let config = script.config;
    trace.note(|| format!("{config:?}"));
    let window = (config.window > 0).then_some(config.window);
    rig.net.answer(0x10, CONNACK);
    let connected = client.reconnect();
    assert!(
        matches!(connected, Outcome::Ok(Value::Bool(false))),
        "a valid CONNACK connects: {connected:?}"
    );
    rig.check_sent();

    for step in script.steps() {
        rig.deliver(&step);
        let was_connected = client.is_connected();
        let start = rig.clock.now_ms();
        heard.qos1.set(0);
        heard.qos2.set(0);
        let outcome = client.perform(rig, &step);
        let elapsed = rig.clock.now_ms() - start;
        trace.note(|| format!("{step:?} -> {outcome:?} after {elapsed} ms"));

        let bound = match step.op {
            Op::PublishQos0 | Op::CheckMsg | Op::Ping | Op::Disconnect | Op::Close => 0,
            Op::Flush if window.is_some() && step.param & 2 != 0 => u64::from(ACK_MS),
            Op::Flush => 0,
            Op::PublishQos1
            | Op::Republish
            | Op::Subscribe
            | Op::SubscribeMany
            | Op::Unsubscribe => u64::from(ACK_MS),
            Op::WaitMsgFor => u64::from(WAIT_TIMEOUTS[usize::from(step.param)]),
            Op::Advance => 700 * u64::from(step.param),
            Op::Connect => u64::from(CONNECT_MS),
        };
        assert!(
            elapsed <= bound,
            "{:?} took {elapsed} ms of virtual time; its bound is {bound} ms",
            step.op
        );

        let connected = client.is_connected();
        // Batched messages leave with any call but a QoS 0 publish, and go
        // with a lost connection.
        let keeps_batch = matches!(step.op, Op::PublishQos0 | Op::Advance | Op::Close);
        match &outcome {
            Outcome::Ok(_) if !keeps_batch => assert_eq!(
                client.pending_messages(),
                0,
                "{:?} returned Ok with batched messages unsent",
                step.op
            ),
            Outcome::Err {
                lost: true, error, ..
            } => {
                assert_eq!(client.pending_messages(), 0, "{error:?} kept a batch")
            }
            _ => {}
        }
        match &outcome {
            Outcome::Ok(_) if step.op == Op::Disconnect => assert!(!connected),
            Outcome::Ok(_) if step.op == Op::Close || step.op == Op::Advance => {}
            Outcome::Ok(_) => assert!(connected, "{:?} returned Ok but is not connected", step.op),
            Outcome::Err {
                lost: true,
                not_connected,
                error,
            } => {
                assert!(!connected, "{error:?} lost the connection but is connected");
                assert!(
                    !(was_connected && *not_connected),
                    "NotConnected from a connected client"
                );
            }
            Outcome::Err { error, .. } => assert_eq!(
                connected, was_connected,
                "{error:?} must leave the connection as it was"
            ),
        }

        let sent = rig.check_sent();
        // A PUBACK cannot go out on a connection that died meanwhile (the
        // broker then sends the message again).
        let acks_possible = !matches!(&outcome, Outcome::Err { lost: true, .. });
        assert!(
            !acks_possible || sent.pubacks >= heard.qos1.get(),
            "{} QoS 1 messages delivered but {} PUBACKs sent",
            heard.qos1.get(),
            sent.pubacks
        );
        assert!(
            !acks_possible || sent.pubrecs >= heard.qos2.get(),
            "{} QoS 2 messages delivered but {} PUBRECs sent",
            heard.qos2.get(),
            sent.pubrecs
        );
        if window.is_some() {
            let resent = step.op == Op::Republish;
            check_window(client, rig, &mut heard.acked.borrow_mut(), resent);
        }

        if config.friendly && !connected && step.op != Op::Disconnect {
            // A scripted answer to CONNECT queued earlier comes first.
            rig.net.answer(0x10, CONNACK);
            let start = rig.clock.now_ms();
            let result = client.reconnect();
            let elapsed = rig.clock.now_ms() - start;
            trace.note(|| format!("(harness) connect -> {result:?} after {elapsed} ms"));
            assert!(elapsed <= u64::from(CONNECT_MS));
            assert_eq!(matches!(result, Outcome::Ok(_)), client.is_connected());
            rig.check_sent();
        }
    }
}

/// The window's own account agrees with the wire: no more in flight than
/// it has slots, and every PUBACK the ack callback heard of was for a
/// PUBLISH the client sent and, unless the step `resent` a message under an
/// id of the application's choosing (which may be one just acknowledged),
/// is no longer in flight. (A lost connection's ids stay in flight until
/// the next connection opens, which empties the window: the wire oracle
/// counts per connection.)
fn check_window(client: &dyn Front, rig: &Rig, acked: &mut Vec<u16>, resent: bool) {
    assert!(
        client.in_flight() <= client.window_capacity(),
        "{} in flight in a window of {}",
        client.in_flight(),
        client.window_capacity()
    );
    for id in acked.drain(..) {
        assert!(
            rig.exchange.has_published(id),
            "the ack callback heard of id {id}, which no PUBLISH carried"
        );
        assert!(
            resent || !client.is_in_flight(id),
            "id {id} acknowledged but still in flight"
        );
    }
}

fn perform(client: &mut Fuzzed<'_>, rig: &Rig, step: &Step<'_>) -> Outcome {
    let payload = &PAYLOAD[..9 * usize::from(step.param)];
    match step.op {
        Op::PublishQos0 => client
            .publish(TOPIC, payload, false, QoS::AtMostOnce)
            .into(),
        Op::PublishQos1 => client
            .publish(TOPIC, payload, false, QoS::AtLeastOnce)
            .into(),
        Op::Republish => client
            .republish(TOPIC, payload, false, u16::from(step.param) + 1)
            .into(),
        Op::Subscribe => {
            let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
            client.subscribe(FILTER, qos).into()
        }
        Op::SubscribeMany => {
            let mut granted = [None; 2];
            let filters = [(FILTER, QoS::AtLeastOnce), (FILTER_2, QoS::AtMostOnce)];
            client.subscribe_many(&filters, &mut granted).into()
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
                let options = *client.options();
                client.set_options(options.batch_qos0(!options.is_batching_qos0()));
            }
            if client.window_capacity() > 0 && step.param & 2 != 0 {
                return client.flush_for(ACK_MS).into();
            }
            client.flush().into()
        }
    }
}
