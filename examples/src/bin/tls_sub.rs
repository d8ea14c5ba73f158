//! Subscribe over TLS: the `sub` example with the broker verified against a
//! CA (`--cafile`), and optionally a client certificate (`--cert`, `--key`).
//!
//! ```text
//! cargo run -p umqtt-examples --bin tls_sub -- --host broker.local --cafile ca.crt --count 1
//! ```

use std::cell::Cell;
use std::process::ExitCode;

use umqtt_examples::tls::{Credentials, RECORD_BUFFER, tls_client};
use umqtt_examples::{Args, Context, main_with_args, py_bytes};
use umqtt_simple::{Error, Message, Options, QoS};
use umqtt_transports::tls::TlsBuffers;

const USAGE: &str = "\
Usage: tls_sub --cafile FILE [--cert FILE --key FILE] [--host H] [--port P]
               [--id ID] [--topic T] [--count N]

Subscribes over TLS 1.3 and prints each message as (topic, msg).

  --cafile FILE  CA certificate (PEM) the broker's certificate must chain to;
                 the certificate must name --host
  --cert FILE    client certificate (PEM), for brokers that require one
  --key FILE     its P-256 private key (PEM)
  --host H       broker host (default localhost)
  --port P       broker port (default 8883)
  --id ID        client id (default umqtt_tls_sub)
  --topic T      topic filter (default foo_topic)
  --count N      disconnect and exit after N messages
  -h, --help     print this help
";

fn main() -> ExitCode {
    main_with_args(
        USAGE,
        &[
            "cafile", "cert", "key", "host", "port", "id", "topic", "count",
        ],
        run,
    )
}

fn run(args: &Args) -> Result<(), String> {
    let host = args.host_or_localhost();
    let port = args.port.unwrap_or(8883);
    let credentials = Credentials::read(args)?;

    let received = Cell::new(0u64);
    let mut on_message = |msg: Message<'_>| {
        println!("({}, {})", py_bytes(msg.topic), py_bytes(msg.payload));
        received.set(received.get() + 1);
    };

    let (mut read, mut write) = (vec![0u8; RECORD_BUFFER], vec![0u8; 1024]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let (mut tx, mut rx) = ([0u8; 256], [0u8; 4096]);
    let id = args.id.as_deref().unwrap_or("umqtt_tls_sub");
    let mut client = tls_client(
        &buffers,
        credentials.options(host),
        &mut tx,
        &mut rx,
        Options::new(id),
    );
    client.set_callback(&mut on_message);
    client.connect_host(host, port).map_err(|e| match e {
        Error::Network(tls) => format!("connect to {host}:{port}: {tls}"),
        other => format!("connect to {host}:{port}: {other}"),
    })?;
    let topic = args.topic.as_deref().unwrap_or("foo_topic");
    client
        .subscribe(topic.as_bytes(), QoS::AtMostOnce)
        .context("subscribe")?;
    while args.count.is_none_or(|n| received.get() < n) {
        match client.wait_msg() {
            Ok(()) => {}
            Err(e @ Error::MessageTooLarge { .. }) => eprintln!("warning: {e}"),
            Err(e) => return Err(format!("wait for messages: {e}")),
        }
    }
    client.disconnect().context("disconnect")
}
