//! Publish over TLS: the `pub` example with the broker verified against a CA
//! (`--cafile`), and optionally a client certificate (`--cert`, `--key`).
//!
//! ```text
//! cargo run -p umqtt-examples --bin tls_pub -- --host broker.local --cafile ca.crt
//! ```

use std::process::ExitCode;

use umqtt_examples::tls::{Credentials, RECORD_BUFFER, tls_client};
use umqtt_examples::{Args, Context, main_with_args};
use umqtt_simple::Options;
use umqtt_transports::tls::TlsBuffers;

const USAGE: &str = "\
Usage: tls_pub --cafile FILE [--cert FILE --key FILE] [--host H] [--port P]
               [--id ID] [--topic T] [--message M] [--qos 0|1]

Publishes one message over TLS 1.3 and disconnects.

  --cafile FILE  CA certificate (PEM) the broker's certificate must chain to;
                 the certificate must name --host
  --cert FILE    client certificate (PEM), for brokers that require one
  --key FILE     its P-256 private key (PEM)
  --host H       broker host (default localhost)
  --port P       broker port (default 8883)
  --id ID        client id (default umqtt_tls_pub)
  --topic T      topic (default foo_topic)
  --message M    payload (default hello)
  --qos 0|1      QoS (default 0)
  -h, --help     print this help
";

fn main() -> ExitCode {
    main_with_args(
        USAGE,
        &[
            "cafile", "cert", "key", "host", "port", "id", "topic", "message", "qos",
        ],
        run,
    )
}

fn run(args: &Args) -> Result<(), String> {
    let host = args.host_or_localhost();
    let port = args.port.unwrap_or(8883);
    let credentials = Credentials::read(args)?;

    // The TLS record buffers live outside the stack, which lends them to one
    // connection at a time.
    let (mut read, mut write) = (vec![0u8; RECORD_BUFFER], vec![0u8; 4096]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 256]);
    let id = args.id.as_deref().unwrap_or("umqtt_tls_pub");
    let mut client = tls_client(
        &buffers,
        credentials.options(host),
        &mut tx,
        &mut rx,
        Options::new(id),
    );
    client.connect_host(host, port).map_err(|e| match e {
        // The TLS stack's own message names what failed (not trusted,
        // name mismatch, TLS 1.2 only, ...).
        umqtt_simple::Error::Network(tls) => format!("connect to {host}:{port}: {tls}"),
        other => format!("connect to {host}:{port}: {other}"),
    })?;
    let topic = args.topic.as_deref().unwrap_or("foo_topic");
    let message = args.message.as_deref().unwrap_or("hello");
    client
        .publish(topic.as_bytes(), message.as_bytes(), false, args.qos)
        .context("publish")?;
    client.disconnect().context("disconnect")
}
