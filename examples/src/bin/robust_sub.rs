//! Port of umqtt.robust's `example_sub_robust.py`: a subscriber with a
//! persistent session (clean session off) that rides out broker restarts,
//! printing every message as `(topic, msg)` and connection events on stderr.
//!
//! Try it: run it against mosquitto, publish with
//! `mosquitto_pub -t foo_topic -q 1 -m hello`, then restart (or `kill -9`)
//! mosquitto and publish again.

use std::cell::Cell;
use std::process::ExitCode;

use umqtt_examples::robust::{broker_addr, print_event, ride_out, robust_client};
use umqtt_examples::{Args, Context, main_with_args, py_bytes};
use umqtt_simple::{Message, Options};

const USAGE: &str = "\
Usage: robust_sub [--host H] [--port P] [--id ID] [--topic T] [--qos 0|1] [--count N]

Subscribes to a topic in a persistent session and prints each message as
(topic, msg), forever, reconnecting whenever the connection drops
(port of example_sub_robust.py). Connection events go to stderr.

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_robust_sub); a persistent
                session belongs to its client id
  --topic T     topic filter (default foo_topic)
  --qos 0|1     subscription QoS (default 0); with 1 the broker queues
                messages for the session while the client is away
  --count N     disconnect and exit after N messages
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic", "qos", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let addr = broker_addr(host, port)?;
    let topic = args.topic.as_deref().unwrap_or("foo_topic");
    let id = args.id.as_deref().unwrap_or("umqtt_client_robust_sub");

    let received = Cell::new(0u64);
    let mut sub_cb = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        received.set(received.get() + 1);
    };
    // The original's `DEBUG = True`: report retries and reconnects.
    let mut on_event = print_event;

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 4096]);
    // Not a clean session: the broker keeps this client's subscriptions (and
    // its QoS 1 messages) while it is away, and across a restart if the
    // broker persists its state.
    let options = Options::new(id).clean_session(false);
    let mut client = robust_client(&mut tx, &mut rx, options);
    client.set_callback(&mut sub_cb);
    client.set_event_callback(&mut on_event);
    let session_present = client
        .connect(addr)
        .context(format_args!("connect to {host}:{port}"))?;
    if !session_present {
        println!("New session being set up");
    }
    // The original subscribed only when the session was new. Subscribing in
    // an existing session too is harmless, and it lets the client restore
    // the subscription should the broker ever lose the session.
    client
        .subscribe(topic.as_bytes(), args.qos)
        .context("subscribe")?;

    while args.count.is_none_or(|n| received.get() < n) {
        ride_out(client.wait_msg(), "wait for messages")?;
    }
    client.disconnect().context("disconnect")
}
