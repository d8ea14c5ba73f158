//! Port of umqtt.robust's `example_check_msg_robust.py`: sleep until the
//! broker drops the client for missing keepalives, then `check_msg`
//! reconnects and returns at once.
//!
//! The original crashes on start: it builds its client as
//! `MQTTClient(host="localhost", ...)` without the client id the constructor
//! requires. Here the id has a default.

use std::cell::Cell;
use std::process::ExitCode;
use std::thread::sleep;
use std::time::{Duration, Instant};

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
Usage: robust_check_msg [--host H] [--port P] [--id ID] [--topic T] [--count N]

Connects with a keepalive of 2 s and subscribes, then sleeps 8 s without
calling the client, so the broker drops it (after 1.5 x keepalive). The
next check_msg notices, reconnects, resubscribes and returns at once; the
time it took is printed (port of example_check_msg_robust.py). Connection
events go to stderr.

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_robust_check)
  --topic T     topic filter (default foo_topic)
  --count N     then poll with check_msg (sleeping 1 s when nothing came)
                and exit after N messages; without it, exit after the
                first check like the original
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let addr = broker_addr(host, port)?;
    let topic = args.topic.as_deref().unwrap_or("foo_topic");
    let id = args.id.as_deref().unwrap_or("umqtt_client_robust_check");

    let received = Cell::new(0u64);
    let mut sub_cb = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        received.set(received.get() + 1);
    };
    let mut on_event = print_event;

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 4096]);
    let mut client = robust_client(&mut tx, &mut rx, Options::new(id).keepalive(KEEPALIVE_S));
    client.set_callback(&mut sub_cb);
    client.set_event_callback(&mut on_event);
    client
        .connect(addr)
        .context(format_args!("connect to {host}:{port}"))?;
    client
        .subscribe(topic.as_bytes(), args.qos)
        .context("subscribe")?;

    // Wait for the broker to consider us dead: no call, so no PINGREQ.
    println!("Sleeping {IDLE:?} without calling the client");
    sleep(IDLE);

    // This notices the dropped connection, reconnects and returns at once.
    let start = Instant::now();
    let handled = client.check_msg();
    println!("check_msg returned {handled:?} after {:?}", start.elapsed());
    ride_out(handled, "check_msg")?;

    let Some(count) = args.count else {
        return client.disconnect().context("disconnect");
    };
    while received.get() < count {
        if ride_out(client.check_msg(), "check_msg")? == Some(false) {
            // Nothing came (or the broker is unreachable and no reconnect
            // attempt was due): do something useful, here sleep.
            sleep(Duration::from_secs(1));
        }
    }
    client.disconnect().context("disconnect")
}
