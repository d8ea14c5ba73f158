//! Port of umqtt.robust's `example_lwt_robust.py`: a device's status on a
//! retained topic, "Online" while it is connected and "Offline" (its last
//! will) once the broker loses it.
//!
//! The original published "Online" only at the first connect (its reconnect
//! bypassed the overridden `connect`), so after a drop the retained status
//! stayed "Offline" while the device was back; and its idle `wait_msg` sent
//! no keepalive, so the status flapped every 1.5 x keepalive. Here the
//! client pings by itself, and "Online" is published again after every
//! reconnect. Watch it with `mosquitto_sub -v -t tele/test/LWT`.

use std::cell::Cell;
use std::process::ExitCode;

use umqtt_examples::robust::{broker_addr, print_event, ride_out, robust_client};
use umqtt_examples::{Args, Context, main_with_args, py_bytes};
use umqtt_robust::Event;
use umqtt_simple::{Message, Options, QoS};

/// Keepalive of the connection, as in the original.
const KEEPALIVE_S: u16 = 5;

const USAGE: &str = "\
Usage: robust_lwt [--host H] [--port P] [--id ID] [--topic T] [--count N]

Connects with a last will of b'Offline' (retained) on the status topic and
publishes b'Online' (retained) at connect and after every reconnect
(port of example_lwt_robust.py). It subscribes to the status topic too and
prints each status it sees. Connection events go to stderr.

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_robust_lwt)
  --topic T     status topic (default tele/test/LWT)
  --count N     after N status messages, publish b'Offline', disconnect
                and exit
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let addr = broker_addr(host, port)?;
    let topic = args.topic.as_deref().unwrap_or("tele/test/LWT").as_bytes();
    let id = args.id.as_deref().unwrap_or("umqtt_client_robust_lwt");

    let received = Cell::new(0u64);
    let mut status_cb = |msg: Message<'_>| {
        println!("status: {}", py_bytes(msg.payload));
        received.set(received.get() + 1);
    };
    // The event callback cannot use the client (the client is calling it),
    // so it leaves a note for the loop below.
    let reconnected = Cell::new(false);
    let mut on_event = |event: Event| {
        print_event(event);
        if let Event::Reconnected { .. } = event {
            reconnected.set(true);
        }
    };

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 1024]);
    let options =
        Options::new(id)
            .keepalive(KEEPALIVE_S)
            .last_will(topic, b"Offline", true, QoS::AtMostOnce);
    let mut client = robust_client(&mut tx, &mut rx, options);
    client.set_callback(&mut status_cb);
    client.set_event_callback(&mut on_event);
    client
        .connect(addr)
        .context(format_args!("connect to {host}:{port}"))?;
    client
        .publish(topic, b"Online", true, QoS::AtMostOnce)
        .context("publish Online")?;
    client
        .subscribe(topic, QoS::AtMostOnce)
        .context("subscribe")?;

    // wait_msg returns after each packet, the answers to the client's own
    // keepalive pings included, so the loop gets to republish soon after a
    // reconnect.
    while args.count.is_none_or(|n| received.get() < n) {
        ride_out(client.wait_msg(), "wait for messages")?;
        if reconnected.replace(false) {
            client
                .publish(topic, b"Online", true, QoS::AtMostOnce)
                .context("publish Online")?;
        }
    }
    // A clean exit: DISCONNECT makes the broker discard the will, so say
    // "Offline" ourselves.
    client
        .publish(topic, b"Offline", true, QoS::AtMostOnce)
        .context("publish Offline")?;
    client.disconnect().context("disconnect")
}
