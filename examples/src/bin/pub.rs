//! Port of umqtt.simple's `example_pub.py`: connect, publish one message,
//! disconnect.
//!
//! Watch it arrive with `mosquitto_sub -t foo_topic`, or with the `sub` example.

use std::process::ExitCode;

use umqtt_examples::{Args, Context, main_with_args, py_bytes, std_client};
use umqtt_simple::Options;

const USAGE: &str = "\
Usage: pub [--host H] [--port P] [--id ID] [--topic T] [--message M] [--qos 0|1]

Publishes one message and disconnects (port of example_pub.py).

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_pub)
  --topic T     topic (default foo_topic)
  --message M   payload (default hello)
  --qos 0|1     QoS (default 0; 1 waits for the broker's PUBACK)
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(
        USAGE,
        &["host", "port", "id", "topic", "message", "qos"],
        run,
    )
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let topic = args.topic.as_deref().unwrap_or("foo_topic").as_bytes();
    let message = args.message.as_deref().unwrap_or("hello").as_bytes();
    // Two clients with the same id knock each other off the broker, so each
    // example has its own default (the original used "umqtt_client" for all).
    let id = args.id.as_deref().unwrap_or("umqtt_client_pub");

    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 256]);
    let mut client = std_client(&mut tx, &mut rx, Options::new(id));
    client
        .connect_host(host, port)
        .context(format_args!("connect to {host}:{port}"))?;
    // A payload larger than `tx` is fine: it is sent straight from `message`.
    client
        .publish(topic, message, false, args.qos)
        .context("publish")?;
    client.disconnect().context("disconnect")?;
    println!(
        "Published {} to {} (QoS {})",
        py_bytes(message),
        py_bytes(topic),
        args.qos as u8
    );
    Ok(())
}
