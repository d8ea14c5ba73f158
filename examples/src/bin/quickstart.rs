//! Quickstart: connect, subscribe, publish one QoS 0 and one QoS 1 message and
//! watch both come back.
//!
//! ```text
//! cargo run -p umqtt-examples --bin quickstart                  # in-process broker
//! cargo run -p umqtt-examples --bin quickstart -- --host HOST   # your broker
//! ```

use std::cell::Cell;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use umqtt_examples::broker::broker_or_local;
use umqtt_examples::{Args, Context, main_with_args, std_client};
use umqtt_simple::{Message, Options, QoS};

const USAGE: &str = "\
Usage: quickstart [--host H] [--port P] [--id ID] [--topic T]

Connects to an MQTT broker, subscribes to a topic, publishes one QoS 0 and one
QoS 1 message to it and shows both arrive. Without --host it starts a broker
(rumqttd) inside this process on a free 127.0.0.1 port, so nothing needs to be
installed.

  --host H     use the broker at H (default: start one in this process)
  --port P     the broker's port (default 1883; without --host, the local
               broker's port)
  --id ID      client id (default umqtt_quickstart)
  --topic T    topic (default umqtt/quickstart)
  -h, --help   print this help

Set RUST_LOG=debug to see the client's log.
";

/// The two messages sent, and the QoS of each.
const SENT: [(&[u8], QoS); 2] = [
    (b"hello at QoS 0", QoS::AtMostOnce),
    (b"hello at QoS 1", QoS::AtLeastOnce),
];

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "id", "topic"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = broker_or_local(args)?;
    let id = args.id.as_deref().unwrap_or("umqtt_quickstart");
    let topic = args.topic.as_deref().unwrap_or("umqtt/quickstart");

    // The callback receives every message. Topic and payload borrow the
    // client's receive buffer (copy what you keep), and the client borrows the
    // closure, so it shares state with this function through a `Cell`.
    let arrived = [Cell::new(false), Cell::new(false)];
    let broker = match args.host {
        None => "rumqttd, the in-process broker,",
        Some(_) => "this broker",
    };
    let mut on_message = |msg: Message<'_>| {
        println!(
            "  <- received on {:?}: {:?} (delivered at QoS {}, retain {})",
            String::from_utf8_lossy(msg.topic),
            String::from_utf8_lossy(msg.payload),
            msg.qos as u8,
            msg.retain,
        );
        for ((payload, sent_qos), seen) in SENT.iter().zip(&arrived) {
            if msg.payload == *payload {
                seen.set(true);
                // MQTT 3.1.1 (3.8.4) delivers at the lower of the publish QoS
                // and the subscription's granted QoS; rumqttd, the broker this
                // demo starts by itself, forwards at the granted QoS instead.
                if msg.qos as u8 > *sent_qos as u8 {
                    println!(
                        "     note: {broker} forwards at the subscription's QoS ({});",
                        msg.qos as u8
                    );
                    println!(
                        "     mosquitto and the MQTT standard deliver at the lower of the \
                         publish and subscription QoS (here {})",
                        *sent_qos as u8
                    );
                }
            }
        }
    };

    // No heap: one buffer for the packet being sent, one for the packet received.
    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
    let mut client = std_client(&mut tx, &mut rx, Options::new(id));
    client.set_callback(&mut on_message);

    let session_present = client
        .connect_host(&host, port)
        .context(format_args!("connect to {host}:{port}"))?;
    println!("Connected to {host}:{port} as {id:?}");
    println!(
        "  session present: {session_present} (clean session: the broker kept nothing from before)"
    );

    // A message is delivered at the lower of its publish QoS and the granted
    // QoS (mosquitto does so; rumqttd delivers everything at the granted QoS,
    // and the callback above says so when it happens).
    let granted = client
        .subscribe(topic.as_bytes(), QoS::AtLeastOnce)
        .context(format_args!("subscribe to {topic:?}"))?;
    println!(
        "Subscribed to {topic:?} (the broker granted QoS {})",
        granted as u8
    );

    for (payload, qos) in SENT {
        println!(
            "  -> publishing {:?} with QoS {}",
            String::from_utf8_lossy(payload),
            qos as u8
        );
        // QoS 0 returns once sent; QoS 1 once the broker's PUBACK arrived
        // (messages arriving meanwhile already go to the callback).
        client
            .publish(topic.as_bytes(), payload, false, qos)
            .context("publish")?;
        if qos == QoS::AtLeastOnce {
            println!("     PUBACK received: the broker has the QoS 1 message");
        }
    }

    // Let the client read until both came back, but never wait forever.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !arrived.iter().all(Cell::get) {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let n = arrived.iter().filter(|seen| seen.get()).count();
            return Err(format!("only {n} of 2 messages came back within 5 s"));
        }
        let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
        client.wait_msg_for(ms).context("wait for messages")?;
    }

    client.disconnect().context("disconnect")?;
    println!("Both messages came back. Disconnected.");
    Ok(())
}
