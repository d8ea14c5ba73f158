//! Port of umqtt.simple's `example_sub.py`: subscribe to `foo_topic` and print
//! every message as `(topic, msg)`.
//!
//! Publish test messages with `mosquitto_pub -t foo_topic -m hello`, or with
//! the `pub` example.

use std::cell::Cell;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::Duration;

use umqtt_examples::{Args, Context, main_with_args, py_bytes, std_client};
use umqtt_simple::{Error, Message, Options, QoS};

const USAGE: &str = "\
Usage: sub [--host H] [--port P] [--id ID] [--topic T] [--check] [--count N]

Subscribes to a topic and prints each message as (topic, msg), forever
(port of example_sub.py).

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_sub)
  --topic T     topic filter (default foo_topic)
  --check       poll with check_msg and sleep 1 s when nothing came,
                instead of blocking in wait_msg
  --count N     disconnect and exit after N messages
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(
        USAGE,
        &["host", "port", "id", "topic", "check", "count"],
        run,
    )
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let topic = args.topic.as_deref().unwrap_or("foo_topic");
    let id = args.id.as_deref().unwrap_or("umqtt_client_sub");

    // Received messages from subscriptions are delivered to this callback.
    // Topic and payload borrow the client's receive buffer: copy what you keep.
    let received = Cell::new(0u64);
    let mut sub_cb = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        received.set(received.get() + 1);
    };

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 4096]);
    let mut client = std_client(&mut tx, &mut rx, Options::new(id));
    client.set_callback(&mut sub_cb);
    client
        .connect_host(host, port)
        .context(format_args!("connect to {host}:{port}"))?;
    client
        .subscribe(topic.as_bytes(), QoS::AtMostOnce)
        .context("subscribe")?;

    while args.count.is_none_or(|n| received.get() < n) {
        let handled = if args.check {
            // Non-blocking: handles a packet if one is there, returns at once.
            client.check_msg()
        } else {
            // Blocking: returns after one packet (a message, or the broker's
            // answer to the keepalive ping the client sends by itself).
            client.wait_msg().map(|()| true)
        };
        match handled {
            // Then sleep to avoid 100% CPU (a real app would do useful work).
            Ok(false) => sleep(Duration::from_secs(1)),
            Ok(true) => {}
            // Too big for `rx`: skipped, but the connection is fine.
            Err(e @ Error::MessageTooLarge { .. }) => eprintln!("warning: {e}"),
            Err(e) => return Err(format!("wait for messages: {e}")),
        }
    }
    client.disconnect().context("disconnect")
}
