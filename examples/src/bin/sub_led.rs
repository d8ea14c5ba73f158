//! Port of umqtt.simple's `example_sub_led.py`: an LED (simulated, printed)
//! driven by messages on `led`: `on`, `off` or `toggle`.
//!
//! Pair it with the `pub_button` example, or `mosquitto_pub -t led -m toggle`.

use std::cell::Cell;
use std::process::ExitCode;

use umqtt_examples::{Args, Context, main_with_args, py_bytes, std_client};
use umqtt_simple::{Message, Options, QoS};

const USAGE: &str = "\
Usage: sub_led [--host H] [--port P] [--id ID] [--topic T] [--count N]

Subscribes to the led topic and keeps a simulated LED: b'on' turns it on,
b'off' off, b'toggle' flips it; prints its state after each message
(port of example_sub_led.py).

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_led)
  --topic T     topic (default led)
  --count N     disconnect and exit after N messages
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let topic = args.topic.as_deref().unwrap_or("led");
    let id = args.id.as_deref().unwrap_or("umqtt_client_led");

    // The board's LED is active-low, which the original handled by writing
    // inverted values; here the state is simply on or off.
    let led_on = Cell::new(false);
    let received = Cell::new(0u64);
    // Subscribed messages are delivered to this callback.
    let mut sub_cb = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        match msg.payload {
            b"on" => led_on.set(true),
            b"off" => led_on.set(false),
            b"toggle" => led_on.set(!led_on.get()),
            _ => {}
        }
        println!("LED is {}", if led_on.get() { "ON" } else { "OFF" });
        received.set(received.get() + 1);
    };

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 1024]);
    let mut client = std_client(&mut tx, &mut rx, Options::new(id));
    client.set_callback(&mut sub_cb);
    client
        .connect_host(host, port)
        .context(format_args!("connect to {host}:{port}"))?;
    client
        .subscribe(topic.as_bytes(), QoS::AtMostOnce)
        .context("subscribe")?;
    println!(
        "Connected to {host}, subscribed to {} topic",
        py_bytes(topic.as_bytes())
    );

    while args.count.is_none_or(|n| received.get() < n) {
        client.wait_msg().context("wait for messages")?;
    }
    client.disconnect().context("disconnect")
}
