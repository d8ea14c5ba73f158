//! The QoS 1 window over smoltcp on a TAP device, in a network namespace of
//! its own with mosquitto inside (see `umqtt_tests::netns`): a windowed
//! client keeps several messages in flight over the user-space stack.
//!
//! The client reaches mosquitto through the workspace tests' fault proxy,
//! run as a slow link inside the namespace (every packet held 25 ms each
//! way, listening on the kernel's TAP address), so the proxy's record shows
//! how many PUBLISH packets left before the first PUBACK came back. A
//! subscriber on the kernel's stack, connected to mosquitto directly,
//! checks that every message arrived, in order.
//!
//! Only addresses inside the namespace are used.

#[path = "../../tests/tests/support/fault_proxy.rs"]
mod fault_proxy;

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use fault_proxy::{FaultProxy, WireWindow, window_on_the_wire};
use umqtt_simple::{Options, QoS};
use umqtt_smoltcp_example::{TapConfig, client, open};
use umqtt_tests::netns::{self as support, BROKER_IP, STACK_IP, TAP, broker};
use umqtt_tests::{ClientParts, HANG_LIMIT, pump_until};

const TOPIC: &[u8] = b"umqtt/tap/window";
const WINDOW: usize = 8;
const MESSAGES: usize = 200;
/// One way of the slow link.
const LEG: Duration = Duration::from_millis(25);
/// The proxy's port on the kernel's TAP address.
const PROXY_PORT: u16 = 1885;

fn payload(i: usize) -> Vec<u8> {
    format!("{i:03} over smoltcp through the window").into_bytes()
}

/// What the smoltcp publisher saw: the acks its callback heard, the most
/// `in_flight()` said after a publish, what `flush_for` returned.
struct Published {
    acked: usize,
    peak: usize,
    flushed: bool,
    elapsed: Duration,
}

/// `MESSAGES` QoS 1 messages over smoltcp with a window of `WINDOW`, to the
/// broker at `addr`.
fn publish_over_smoltcp(addr: SocketAddr) -> Published {
    let tap = open(&TapConfig::new(TAP, STACK_IP, 24)).expect("open the TAP device");
    let acked = Cell::new(0usize);
    let mut on_ack = |_: u16| acked.set(acked.get() + 1);
    let mut slots = [0u16; WINDOW];
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let mut client = client(tap, &mut tx, &mut rx, Options::new("smoltcp-window"));
    client.set_window(&mut slots);
    client.set_ack_callback(&mut on_ack);
    client.connect(addr).expect("connect over smoltcp");
    let start = Instant::now();
    let mut peak = 0;
    for i in 0..MESSAGES {
        client
            .publish(TOPIC, &payload(i), false, QoS::AtLeastOnce)
            .unwrap_or_else(|e| panic!("publish {i} over smoltcp: {e:?}"));
        peak = peak.max(client.in_flight());
    }
    let flushed = client.flush_for(10_000).expect("flush_for");
    let elapsed = start.elapsed();
    client.disconnect().expect("disconnect");
    client.pause(200); // let smoltcp send the DISCONNECT's FIN
    drop(client);
    Published {
        acked: acked.get(),
        peak,
        flushed,
        elapsed,
    }
}

#[test]
fn windowed_client_over_smoltcp_keeps_several_messages_in_flight() {
    let Some(ns) = support::enter("windowed_client_over_smoltcp_keeps_several_messages_in_flight")
    else {
        return;
    };
    let _mosquitto = ns.mosquitto();
    let proxy = FaultProxy::start_on(SocketAddr::from((BROKER_IP, PROXY_PORT)), broker(), LEG);

    // The subscriber: the kernel's stack, straight to mosquitto.
    let mut parts = ClientParts::new("kernel-subscriber", 256, 1024);
    let (mut subscriber, inbox) = parts.observer(broker(), TOPIC, QoS::AtLeastOnce);

    let (done, result) = mpsc::channel();
    let addr = proxy.addr;
    let publisher = thread::spawn(move || {
        let _ = done.send(publish_over_smoltcp(addr));
    });
    pump_until(&mut subscriber, HANG_LIMIT, || {
        inbox.len() >= MESSAGES || publisher.is_finished()
    });
    let published = match result.recv_timeout(HANG_LIMIT) {
        Ok(p) => p,
        Err(_) => match publisher.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the smoltcp publisher did not finish: a hang"),
        },
    };
    let _ = publisher.join();
    pump_until(&mut subscriber, Duration::from_secs(10), || {
        inbox.len() >= MESSAGES
    });
    subscriber.disconnect().expect("subscriber disconnects");

    let expected: Vec<Vec<u8>> = (0..MESSAGES).map(payload).collect();
    assert!(
        inbox.payloads() == expected,
        "the subscriber got {} of {MESSAGES}, or out of order",
        inbox.len()
    );
    assert!(published.flushed, "flush_for: not all acknowledged");
    assert_eq!(published.acked, MESSAGES, "acks heard by the callback");

    // The wire: WINDOW PUBLISH packets before the first PUBACK, never more.
    let records = proxy.records();
    let WireWindow {
        sent,
        before_first_ack,
        most,
    } = window_on_the_wire(&records);
    println!(
        "smoltcp, window {WINDOW}: {MESSAGES} messages in {:.2} s over a {} ms round trip; \
         {before_first_ack:?} PUBLISH before the first PUBACK, at most {most} in flight on the \
         wire, in_flight() up to {}",
        published.elapsed.as_secs_f64(),
        (2 * LEG).as_millis(),
        published.peak
    );
    assert_eq!(sent, MESSAGES);
    assert_eq!(before_first_ack, Some(WINDOW));
    assert_eq!(most, WINDOW);
    assert_eq!(published.peak, WINDOW);
}
