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
//! - everything the client sends is whole, valid packets of the kinds a
//!   client sends.

use umqtt_robust::{Backoff, RobustClient, RobustClientError, RobustError, RobustOptions};
use umqtt_simple::{Client, Message, QoS};
use umqtt_transports::Clock;
use umqtt_transports::memory::{MemoryStack, VirtualClock, VirtualWait};

use crate::client::options;
use crate::script::{Op, Script, Step, WAIT_TIMEOUTS};
use crate::wire::{ACK_MS, BROKER, CONNACK, CONNECT_MS, FILTER, FILTER_2, PAYLOAD, Rig, TOPIC};
use crate::{Trace, Value};

/// How long a call may spend reconnecting.
pub const OUTAGE_MS: u32 = 10_000;
/// Filters the script can subscribe to, so resubscriptions after a reconnect.
const MAX_SUBSCRIPTIONS: u64 = 2;

type Fuzzed<'a> = RobustClient<'a, MemoryStack, VirtualClock, VirtualWait>;
type Err = RobustClientError<MemoryStack>;

/// What one operation returned.
#[derive(Debug)]
#[allow(dead_code, reason = "the value is read through Debug, in the trace")]
enum Outcome {
    Ok(Value),
    Err(Err),
}

impl<T: Into<Value>> From<Result<T, Err>> for Outcome {
    fn from(result: Result<T, Err>) -> Self {
        match result {
            Ok(value) => Outcome::Ok(value.into()),
            Err(e) => Outcome::Err(e),
        }
    }
}

/// Runs one input; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    let script = Script::parse(data);
    let config = script.config;
    trace.note(|| format!("{config:?}"));
    let mut rig = Rig::new(config.send_limit);
    let rx_len = config.rx_len;
    let mut on_message = |m: Message<'_>| {
        assert!(m.topic.len() + m.payload.len() <= rx_len);
    };
    let (mut tx, mut rx) = (vec![0u8; config.tx_len], vec![0u8; config.rx_len]);
    let inner = Client::new(
        rig.net.clone(),
        rig.clock.clone(),
        &mut tx,
        &mut rx,
        options(&config),
    )
    .with_waiter(rig.waiter.clone());
    let mut client = RobustClient::from_client(inner);
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 100,
            max_ms: 1_600,
            max_attempts: config.max_attempts,
        },
        call_timeout_ms: OUTAGE_MS,
    });
    if config.callback {
        client.set_callback(&mut on_message);
    }
    rig.net.answer(0x10, CONNACK);
    assert_eq!(
        client.connect(BROKER),
        Ok(false),
        "a valid CONNACK connects"
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
        let outcome = perform(&mut client, &rig, &step);
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
            ) => assert!(connected, "{:?} returned Ok but is not connected", step.op),
            // Documented: a lost connection is recovered from, not returned,
            // once the broker's address is known (connect returns its own).
            (Outcome::Err(RobustError::Client(e)), op)
                if op != Op::Connect && op != Op::Disconnect =>
            {
                assert!(
                    !e.is_connection_lost(),
                    "{op:?} returned the inner client's {e:?} instead of reconnecting"
                );
            }
            _ => {}
        }
        rig.check_sent();
    }
}

fn perform(client: &mut Fuzzed<'_>, rig: &Rig, step: &Step<'_>) -> Outcome {
    let payload = &PAYLOAD[..9 * usize::from(step.param)];
    match step.op {
        Op::PublishQos0 => client
            .publish(TOPIC, payload, false, QoS::AtMostOnce)
            .into(),
        Op::PublishQos1 | Op::Republish => client
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
