//! The `async_client` target: umqtt-simple's async client (`asynch::Client`)
//! driven by the `window` target's script (three header bytes: with or
//! without a QoS 1 window) and checked by the same oracle
//! ([`crate::client::drive`]), so the two front-ends are held to one
//! standard. The `async_outbox` target: umqtt-robust's async client
//! (`asynch::RobustClient`) with an outbox and a window, on the `outbox`
//! target's script and oracle ([`crate::robust::drive`]).
//!
//! The async client runs on a small executor on virtual time
//! ([`run_on_virtual_time`]): it polls the call; while the call waits, the
//! clock jumps to the earliest deadline a [`VirtualTimer`] was asked to
//! sleep until (as `VirtualWait` does for the blocking client), and a call
//! that waits with no deadline at all is a hang. The network is the same
//! recorded in-memory stack as the blocking client's, behind
//! embedded-nal-async ([`AsyncNet`]).

use core::cell::{Cell, RefCell};
use core::future::{Future, poll_fn};
use core::net::SocketAddr;
use core::pin::pin;
use core::task::{Context, Poll, Waker};
use std::rc::Rc;

use embedded_nal::TcpClientStack;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Message, QoS};
use umqtt_transports::memory::{MemoryError, MemorySocket, VirtualClock};
use umqtt_transports::{Clock, Timer};

use crate::client::{Front, Heard, Outcome, drive, options};
use crate::robust::{self, RobustFront, outbox_options, robust_options};
use crate::script::{Op, Script, Step, WAIT_TIMEOUTS};
use crate::wire::{ACK_MS, BROKER, Exchange, FILTER, FILTER_2, PAYLOAD, Recording, Rig, TOPIC};
use crate::{Trace, Value};

/// Polls in a row without progress or a deadline before a call counts as
/// hung (every real wait has a deadline on the timer).
const HUNG_AFTER_POLLS: u32 = 1_000;

/// The earliest deadline a timer was asked to sleep until since the
/// executor last looked.
#[derive(Clone, Default)]
pub struct Deadlines(Rc<Cell<Option<u64>>>);

impl Deadlines {
    fn note(&self, deadline: u64) {
        let earliest = self.0.get().map_or(deadline, |d| d.min(deadline));
        self.0.set(Some(earliest));
    }

    fn take(&self) -> Option<u64> {
        self.0.take()
    }
}

/// A [`Timer`] on a [`VirtualClock`]: a sleep notes its deadline and waits
/// for the executor to move the clock there.
#[derive(Clone)]
pub struct VirtualTimer {
    clock: VirtualClock,
    deadlines: Deadlines,
}

impl Clock for VirtualTimer {
    fn now_ms(&self) -> u64 {
        self.clock.now_ms()
    }
}

impl Timer for VirtualTimer {
    async fn sleep_until(&mut self, deadline_ms: u64) {
        poll_fn(|_| {
            if self.clock.now_ms() >= deadline_ms {
                Poll::Ready(())
            } else {
                self.deadlines.note(deadline_ms);
                Poll::Pending
            }
        })
        .await;
    }
}

/// Runs `future` to completion: polls it, and while it waits moves `clock`
/// to the earliest deadline noted in `deadlines`. Panics on a call that
/// waits with no deadline (it would hang).
pub fn run_on_virtual_time<F: Future>(
    clock: &VirtualClock,
    deadlines: &Deadlines,
    future: F,
) -> F::Output {
    let mut future = pin!(future);
    let mut cx = Context::from_waker(Waker::noop());
    let mut idle = 0;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
        match deadlines.take() {
            Some(deadline) => {
                idle = 0;
                clock.advance(deadline.saturating_sub(clock.now_ms()));
            }
            None => {
                idle += 1;
                assert!(
                    idle < HUNG_AFTER_POLLS,
                    "an async call waits with no deadline: it would hang"
                );
            }
        }
    }
}

/// Why an [`AsyncNet`] operation failed: the memory stack's error, as an
/// embedded-io error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AsyncNetError(pub MemoryError);

impl core::fmt::Display for AsyncNetError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        self.0.fmt(f)
    }
}

impl core::error::Error for AsyncNetError {}

impl embedded_io_async::Error for AsyncNetError {
    fn kind(&self) -> embedded_io_async::ErrorKind {
        match self.0 {
            MemoryError::Closed | MemoryError::NotConnected => {
                embedded_io_async::ErrorKind::ConnectionReset
            }
            _ => embedded_io_async::ErrorKind::Other,
        }
    }
}

/// The recorded in-memory stack behind embedded-nal-async.
pub struct AsyncNet(RefCell<Recording>);

/// A connection of an [`AsyncNet`].
pub struct AsyncConnection<'a> {
    net: &'a AsyncNet,
    socket: MemorySocket,
}

fn other(e: nb::Error<MemoryError>) -> AsyncNetError {
    match e {
        nb::Error::Other(e) => AsyncNetError(e),
        // The memory stack never says WouldBlock but for receive.
        nb::Error::WouldBlock => AsyncNetError(MemoryError::Closed),
    }
}

impl embedded_nal_async::TcpConnect for AsyncNet {
    type Error = AsyncNetError;
    type Connection<'a> = AsyncConnection<'a>;

    async fn connect<'a>(&'a self, remote: SocketAddr) -> Result<AsyncConnection<'a>, Self::Error> {
        let mut stack = self.0.borrow_mut();
        let mut socket = stack.socket().map_err(AsyncNetError)?;
        stack.connect(&mut socket, remote).map_err(other)?;
        Ok(AsyncConnection { net: self, socket })
    }
}

impl embedded_io_async::ErrorType for AsyncConnection<'_> {
    type Error = AsyncNetError;
}

impl embedded_io_async::Read for AsyncConnection<'_> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, AsyncNetError> {
        poll_fn(|_| {
            let result = self.net.0.borrow_mut().receive(&mut self.socket, buf);
            match result {
                Ok(n) => Poll::Ready(Ok(n)),
                Err(nb::Error::WouldBlock) => Poll::Pending,
                Err(nb::Error::Other(e)) => Poll::Ready(Err(AsyncNetError(e))),
            }
        })
        .await
    }
}

impl embedded_io_async::Write for AsyncConnection<'_> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, AsyncNetError> {
        self.net
            .0
            .borrow_mut()
            .send(&mut self.socket, buf)
            .map_err(other)
    }

    async fn flush(&mut self) -> Result<(), AsyncNetError> {
        Ok(())
    }
}

type Fuzzed<'a> = Client<'a, AsyncNet, VirtualTimer>;

/// The async client with what runs it.
struct AsyncFront<'a> {
    client: Fuzzed<'a>,
    clock: VirtualClock,
    deadlines: Deadlines,
}

impl AsyncFront<'_> {
    fn block<F: Future>(clock: &VirtualClock, deadlines: &Deadlines, future: F) -> F::Output {
        run_on_virtual_time(clock, deadlines, future)
    }
}

impl Front for AsyncFront<'_> {
    fn perform(&mut self, rig: &Rig, step: &Step<'_>) -> Outcome {
        let (clock, deadlines) = (&self.clock, &self.deadlines);
        let client = &mut self.client;
        let payload = &PAYLOAD[..9 * usize::from(step.param)];
        let run = |f| Self::block(clock, deadlines, f);
        match step.op {
            Op::PublishQos0 => run(client.publish(TOPIC, payload, false, QoS::AtMostOnce)).into(),
            Op::PublishQos1 => run(client.publish(TOPIC, payload, false, QoS::AtLeastOnce)).into(),
            Op::Republish => Self::block(
                clock,
                deadlines,
                client.republish(TOPIC, payload, false, u16::from(step.param) + 1),
            )
            .into(),
            Op::Subscribe => {
                let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
                Self::block(clock, deadlines, client.subscribe(FILTER, qos)).into()
            }
            Op::SubscribeMany => {
                let mut granted = [None; 2];
                let filters = [(FILTER, QoS::AtLeastOnce), (FILTER_2, QoS::AtMostOnce)];
                Self::block(
                    clock,
                    deadlines,
                    client.subscribe_many(&filters, &mut granted),
                )
                .into()
            }
            Op::Unsubscribe => Self::block(clock, deadlines, client.unsubscribe(FILTER)).into(),
            Op::WaitMsgFor => {
                let timeout = WAIT_TIMEOUTS[usize::from(step.param)];
                Self::block(clock, deadlines, client.wait_msg_for(timeout)).into()
            }
            Op::CheckMsg => Self::block(clock, deadlines, client.check_msg()).into(),
            Op::Ping => Self::block(clock, deadlines, client.ping()).into(),
            Op::Advance => {
                rig.clock.advance(700 * u64::from(step.param));
                Outcome::Ok(Value::Unit)
            }
            Op::Close => {
                rig.close(step.chunk);
                Outcome::Ok(Value::Unit)
            }
            Op::Connect => Self::block(clock, deadlines, client.connect(BROKER)).into(),
            Op::Disconnect => Self::block(clock, deadlines, client.disconnect()).into(),
            Op::Flush => {
                if step.param & 1 == 1 {
                    let options = *client.options();
                    client.set_options(options.batch_qos0(!options.is_batching_qos0()));
                }
                if client.window_capacity() > 0 && step.param & 2 != 0 {
                    return Self::block(clock, deadlines, client.flush_for(ACK_MS)).into();
                }
                Self::block(clock, deadlines, client.flush()).into()
            }
        }
    }

    fn reconnect(&mut self) -> Outcome {
        Self::block(&self.clock, &self.deadlines, self.client.connect(BROKER)).into()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn pending_messages(&self) -> u32 {
        self.client.pending_messages()
    }

    fn in_flight(&self) -> usize {
        self.client.in_flight()
    }

    fn window_capacity(&self) -> usize {
        self.client.window_capacity()
    }

    fn is_in_flight(&self, id: u16) -> bool {
        self.client.is_in_flight(id)
    }
}

/// Runs one input of the `async_client` target; panics when a check fails.
pub fn run(data: &[u8], trace: &mut Trace) {
    let script = Script::parse_extended(data);
    let config = script.config;
    let window = (config.window > 0).then_some(config.window);
    let mut rig = Rig::new(config.send_limit, Exchange::new(false, window));
    let net = AsyncNet(RefCell::new(rig.stack.clone()));
    let deadlines = Deadlines::default();
    let timer = VirtualTimer {
        clock: rig.clock.clone(),
        deadlines: deadlines.clone(),
    };
    let heard = Heard::default();
    let rx_len = config.rx_len;
    let mut on_message = |m: Message<'_>| heard.message(&m, rx_len);
    let mut on_ack = |id: u16| heard.acked.borrow_mut().push(id);
    let mut slots = vec![0u16; config.window];
    let (mut tx, mut rx) = (vec![0u8; config.tx_len], vec![0u8; config.rx_len]);
    let mut client = Client::new(&net, timer, &mut tx, &mut rx, options(&config));
    if config.callback {
        client.set_callback(&mut on_message);
    }
    if window.is_some() {
        client.set_window(&mut slots);
        client.set_ack_callback(&mut on_ack);
    }
    let mut front = AsyncFront {
        client,
        clock: rig.clock.clone(),
        deadlines,
    };
    drive(&mut front, &mut rig, &script, &heard, trace);
}

type FuzzedRobust<'a> = umqtt_robust::asynch::RobustClient<'a, AsyncNet, VirtualTimer>;

/// The async robust client with what runs it.
struct AsyncRobustFront<'a> {
    client: FuzzedRobust<'a>,
    clock: VirtualClock,
    deadlines: Deadlines,
}

impl RobustFront for AsyncRobustFront<'_> {
    fn perform(&mut self, rig: &Rig, step: &Step<'_>, payload: &[u8]) -> robust::Outcome {
        let (clock, deadlines) = (&self.clock, &self.deadlines);
        let client = &mut self.client;
        match step.op {
            Op::PublishQos0 => run_on_virtual_time(
                clock,
                deadlines,
                client.publish(TOPIC, payload, false, QoS::AtMostOnce),
            )
            .into(),
            Op::PublishQos1 => run_on_virtual_time(
                clock,
                deadlines,
                client.publish(TOPIC, payload, false, QoS::AtLeastOnce),
            )
            .into(),
            Op::Republish if client.outbox().is_some() => run_on_virtual_time(
                clock,
                deadlines,
                client.queue(TOPIC, payload, false, QoS::AtLeastOnce),
            )
            .map(|_| ())
            .into(),
            Op::Republish => run_on_virtual_time(
                clock,
                deadlines,
                client.publish(TOPIC, payload, false, QoS::AtLeastOnce),
            )
            .into(),
            Op::Subscribe => {
                let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
                run_on_virtual_time(clock, deadlines, client.subscribe(FILTER, qos)).into()
            }
            Op::SubscribeMany => {
                let qos = QoS::from_u8(step.param & 1).unwrap_or_default();
                run_on_virtual_time(clock, deadlines, client.subscribe(FILTER_2, qos)).into()
            }
            Op::Unsubscribe => {
                run_on_virtual_time(clock, deadlines, client.unsubscribe(FILTER)).into()
            }
            Op::WaitMsgFor => {
                let timeout = WAIT_TIMEOUTS[usize::from(step.param)];
                run_on_virtual_time(clock, deadlines, client.wait_msg_for(timeout)).into()
            }
            Op::CheckMsg => run_on_virtual_time(clock, deadlines, client.check_msg()).into(),
            Op::Ping => run_on_virtual_time(clock, deadlines, client.ping()).into(),
            Op::Advance => {
                rig.clock.advance(700 * u64::from(step.param));
                robust::Outcome::Ok(Value::Unit)
            }
            Op::Close => {
                rig.close(step.chunk);
                robust::Outcome::Ok(Value::Unit)
            }
            Op::Connect => run_on_virtual_time(clock, deadlines, client.connect(BROKER)).into(),
            Op::Disconnect => run_on_virtual_time(clock, deadlines, client.disconnect()).into(),
            Op::Flush => {
                if step.param & 1 == 1 {
                    let options = *client.client().options();
                    client
                        .client_mut()
                        .set_options(options.batch_qos0(!options.is_batching_qos0()));
                }
                run_on_virtual_time(clock, deadlines, client.flush()).into()
            }
        }
    }

    fn connect(&mut self) -> robust::Outcome {
        run_on_virtual_time(&self.clock, &self.deadlines, self.client.connect(BROKER)).into()
    }

    fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    fn outbox_len(&self) -> Option<usize> {
        self.client.outbox().map(|o| o.len())
    }

    fn outbox_dropped(&self) -> u32 {
        self.client.outbox_dropped()
    }

    fn pending_messages(&self) -> u32 {
        self.client.client().pending_messages()
    }

    fn dropped_messages(&self) -> u32 {
        self.client.client().dropped_messages()
    }
}

/// Runs one input of the `async_outbox` target (the `outbox` target's
/// format); panics when a check fails.
pub fn run_robust_with_outbox(data: &[u8], trace: &mut Trace) {
    let script = Script::parse_extended(data);
    let config = script.config;
    let window = (config.window > 0).then_some(config.window);
    let mut rig = Rig::new(config.send_limit, Exchange::new(true, window));
    let net = AsyncNet(RefCell::new(rig.stack.clone()));
    let deadlines = Deadlines::default();
    let timer = VirtualTimer {
        clock: rig.clock.clone(),
        deadlines: deadlines.clone(),
    };
    let events = RefCell::new(Vec::new());
    let mut on_event = |event: umqtt_robust::Event| events.borrow_mut().push(event);
    let mut slots = vec![0u16; config.window];
    let mut outbox_buf = vec![0u8; config.outbox_len];
    let mut outbox = umqtt_robust::outbox::RamOutbox::new(&mut outbox_buf);
    let rx_len = config.rx_len;
    let mut on_message = |m: Message<'_>| {
        assert!(m.topic.len() + m.payload.len() <= rx_len);
    };
    let (mut tx, mut rx) = (vec![0u8; config.tx_len], vec![0u8; config.rx_len]);
    let inner = Client::new(&net, timer, &mut tx, &mut rx, options(&config));
    let mut client = umqtt_robust::asynch::RobustClient::from_client(inner);
    client.set_robust_options(robust_options(&config));
    if config.callback {
        client.set_callback(&mut on_message);
    }
    client.set_event_callback(&mut on_event);
    client.set_outbox(&mut outbox, outbox_options(&config));
    if window.is_some() {
        client.set_window(&mut slots);
    }
    let mut front = AsyncRobustFront {
        client,
        clock: rig.clock.clone(),
        deadlines,
    };
    robust::drive(&mut front, &mut rig, &script, true, &events, trace);
}
