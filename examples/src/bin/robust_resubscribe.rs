//! Port of umqtt.robust's `example_resubscribe_robust.py`: the subscription
//! comes back after a reconnect.
//!
//! The original had to subclass the client to resubscribe; here the
//! reconnecting client does it by itself whenever the broker kept no
//! session. It publishes "message 1" to its own topic, sleeps until the
//! broker drops it for missing keepalives, publishes "message 2" (which the
//! original lost: "publish() doesn't detect OSError"; with `--qos 1` it is
//! sent again after the reconnect), calls `check_msg`, publishes
//! "message 3" and waits for it to come back.

use std::cell::Cell;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use umqtt_examples::robust::{broker_addr, print_event, ride_out, robust_client};
use umqtt_examples::{Args, Context, main_with_args, py_bytes};
use umqtt_simple::{Message, Options};

/// Keepalive of the connection (the original's was 5 s).
const KEEPALIVE_S: u16 = 2;
/// How long the program sleeps without calling the client, as the original
/// did: the broker drops a client silent for 1.5 x keepalive, but
/// mosquitto 2.0 may take a few seconds more to notice.
const IDLE: Duration = Duration::from_secs(8);

const USAGE: &str = "\
Usage: robust_resubscribe [--host H] [--port P] [--id ID] [--topic T] [--qos 0|1] [--count N]

Subscribes to a topic and publishes to it: b'message 1'; then sleeps 8 s
without calling the client, so the broker drops it (keepalive 2 s);
b'message 2', check_msg (which reconnects and resubscribes), b'message 3';
waits until b'message 3' comes back (port of example_resubscribe_robust.py).
Connection events go to stderr.

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_robust_resub)
  --topic T     topic (default test/topic/a)
  --qos 0|1     QoS of the subscription and the messages (default 0)
  --count N     then keep receiving until N messages in all arrived (kill
                and restart the broker meanwhile to see it resubscribe)
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic", "qos", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let addr = broker_addr(host, port)?;
    let topic = args.topic.as_deref().unwrap_or("test/topic/a").as_bytes();
    let id = args.id.as_deref().unwrap_or("umqtt_client_robust_resub");
    let qos = args.qos;

    let received = Cell::new(0u64);
    let got_message_3 = Cell::new(false);
    let mut sub_cb = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        received.set(received.get() + 1);
        if msg.payload == b"message 3" {
            got_message_3.set(true);
        }
    };
    let mut on_event = print_event;

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 4096]);
    let mut client = robust_client(&mut tx, &mut rx, Options::new(id).keepalive(KEEPALIVE_S));
    client.set_callback(&mut sub_cb);
    client.set_event_callback(&mut on_event);
    client
        .connect(addr)
        .context(format_args!("connect to {host}:{port}"))?;
    println!("Subscribing to {}", py_bytes(topic));
    client.subscribe(topic, qos).context("subscribe")?;

    client
        .publish(topic, b"message 1", false, qos)
        .context("publish message 1")?;
    while received.get() == 0 {
        client.wait_msg().context("wait for message 1")?;
    }

    // The connection breaks once keepalive expires.
    println!("Sleeping {IDLE:?} without calling the client");
    sleep(IDLE);

    client
        .publish(topic, b"message 2", false, qos)
        .context("publish message 2")?;
    // Handles what arrived; notices a dropped connection and reconnects.
    client.check_msg().context("check_msg")?;
    client
        .publish(topic, b"message 3", false, qos)
        .context("publish message 3")?;

    let count = args.count.unwrap_or(0);
    while !got_message_3.get() || received.get() < count {
        ride_out(client.wait_msg(), "wait for messages")?;
    }
    client.disconnect().context("disconnect")
}
