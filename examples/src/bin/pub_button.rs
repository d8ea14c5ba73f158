//! Port of umqtt.simple's `example_pub_button.py`, with the board's button
//! simulated by the keyboard: each line read from stdin (press Enter) is a
//! button press and publishes `toggle` to `led`. End of input (Ctrl-D) ends it.
//!
//! Pair it with the `sub_led` example.

use std::io::BufRead;
use std::process::ExitCode;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use umqtt_examples::{Args, Context, main_with_args, std_client};
use umqtt_simple::{Options, QoS};

const USAGE: &str = "\
Usage: pub_button [--host H] [--port P] [--id ID] [--topic T]

Each line on stdin (press Enter) is a button press: prints \"Button pressed\"
and publishes b'toggle' to the led topic. Ends at end of input (Ctrl-D)
(port of example_pub_button.py).

  --host H      broker host (default localhost)
  --port P      broker port (default 1883)
  --id ID       client id (default umqtt_client_button)
  --topic T     topic (default led)
  -h, --help    print this help
";

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = (args.host_or_localhost(), args.port_or_default());
    let topic = args.topic.as_deref().unwrap_or("led");
    let id = args.id.as_deref().unwrap_or("umqtt_client_button");

    let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    let mut client = std_client(&mut tx, &mut rx, Options::new(id));
    client
        .connect_host(host, port)
        .context(format_args!("connect to {host}:{port}"))?;
    println!("Connected to {host}, waiting for button presses (Enter; Ctrl-D to quit)");

    // Reading stdin blocks, so a thread does it and hands each line over; the
    // channel closes at end of input.
    let (presses, pressed) = mpsc::channel();
    thread::spawn(move || {
        for _line in std::io::stdin().lock().lines().map_while(Result::ok) {
            if presses.send(()).is_err() {
                break;
            }
        }
    });

    loop {
        // The client only talks to the broker when called: check_msg sends
        // the keepalive PINGREQ when due and reads the PINGRESP, so an idle
        // button does not get disconnected.
        client.check_msg().context("keepalive")?;
        match pressed.recv_timeout(Duration::from_millis(500)) {
            Ok(()) => {
                println!("Button pressed");
                client
                    .publish(topic.as_bytes(), b"toggle", false, QoS::AtMostOnce)
                    .context("publish")?;
            }
            Err(RecvTimeoutError::Timeout) => {}
            Err(RecvTimeoutError::Disconnected) => break,
        }
    }
    client.disconnect().context("disconnect")
}
