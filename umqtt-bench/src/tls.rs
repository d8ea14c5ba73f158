//! The TLS pass: a mosquitto TLS listener of its own (P-256 certificates made
//! with the `openssl` command by the tests' PKI helper, `umqtt_tests::pki`),
//! umqtt-simple over each of its engines (`TlsStack<StdTcpStack>`,
//! embedded-tls; `RustlsStack<StdTcpStack>`, rustls) and rumqttc over rustls
//! (ring's crypto, as the rustls engine), each timing its connects (TCP +
//! TLS 1.3 handshake + CONNACK), QoS 1 publishes one at a time and round
//! trips.

use std::cell::Cell;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_nal::TcpClientStack;
use rand_core::OsRng;
use rumqttc::{MqttOptions, TlsConfiguration, Transport};
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_tests::pki::{Pki, Spec};
use umqtt_tests::{Mosquitto, find_program};
use umqtt_transports::Wait;
use umqtt_transports::rustls::{RustlsOptions, RustlsStack, RustlsWait, StdRustlsStack};
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
use umqtt_transports::tls::{SystemTime, TlsBuffers, TlsOptions, TlsStack, TlsWait};

use crate::common::{Ctx, PAYLOAD, Res, client_id, time_after_warmup, time_each};
use crate::heap_count;
use crate::rumq::{self, Ev, Rumq};
use crate::umqtt::{RX_BUFFER, TX_BUFFER};

/// umqtt-simple's TLS stack: std TCP underneath, the OS random generator, the
/// system clock for certificate dates (as in examples/src/tls.rs).
type TlsStd<'a> = TlsStack<'a, StdTcpStack, StdClock, StdWait, OsRng, SystemTime>;

/// umqtt-simple over TLS.
type TlsClient<'a> = Client<'a, TlsStd<'a>, StdClock, TlsWait>;

/// The TLS read buffer: a whole record of 16 KiB (mosquitto does not limit
/// its fragments).
pub const TLS_READ: usize = 16_640;
/// The TLS write buffer: a whole MQTT packet of the 1 KiB transmit buffer.
pub const TLS_WRITE: usize = 1024;

/// The name in the server certificate that both clients check.
const HOST: &str = "localhost";

/// How long one wait for a message may take before the test fails.
const WAIT_MS: u32 = 10_000;

/// A mosquitto with a TLS listener and the CA that signed its certificate.
pub struct TlsBroker {
    /// Where it listens (TLS only).
    pub addr: SocketAddr,
    /// The CA certificate, DER.
    pub ca: Vec<u8>,
    /// The broker; stopped when dropped.
    _mosquitto: Mosquitto,
    /// The certificates; removed when dropped.
    _pki: Pki,
}

/// Starts the TLS broker, or says why it cannot run (no `openssl`, no
/// mosquitto).
pub fn start_broker() -> Res<TlsBroker> {
    if find_program("openssl", &["/usr/bin/openssl"]).is_none() {
        return Err("openssl is not installed".into());
    }
    let pki = Pki::new("bench");
    pki.ca("ca", Spec::ca("umqtt-bench CA"))
        .issue("server", "ca", Spec::leaf(HOST));
    // Without TCP_NODELAY mosquitto's second handshake write waits for the
    // ACK of its first, which the client delays by 40 ms: every connect
    // took 45 ms with either client (measured). With it, the connect time
    // is the handshake's own.
    let config = format!(
        "set_tcp_nodelay true\n{}",
        pki.listener("server.crt", "server")
    );
    let Some(mosquitto) = Mosquitto::start("umqtt-bench-tls", &config) else {
        return Err("mosquitto is not installed".into());
    };
    Ok(TlsBroker {
        addr: mosquitto.addr,
        ca: pki.der("ca"),
        _mosquitto: mosquitto,
        _pki: pki,
    })
}

// ---------------------------------------------------------------------------
// umqtt-simple over TlsStack<StdTcpStack>
// ---------------------------------------------------------------------------

/// The TLS buffers and MQTT buffers of one umqtt-simple client.
struct UmqttBuffers {
    read: Vec<u8>,
    write: Vec<u8>,
    tx: [u8; TX_BUFFER],
    rx: [u8; RX_BUFFER],
}

impl UmqttBuffers {
    fn new() -> Self {
        UmqttBuffers {
            read: vec![0u8; TLS_READ],
            write: vec![0u8; TLS_WRITE],
            tx: [0u8; TX_BUFFER],
            rx: [0u8; RX_BUFFER],
        }
    }
}

/// umqtt-simple's TLS engine in a run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Engine {
    /// `TlsStack` (embedded-tls: TLS 1.3, P-256, no heap).
    Embedded,
    /// `RustlsStack` (rustls with ring's crypto; feature `tls-rustls`).
    Rustls,
}

impl Engine {
    /// The name in progress lines.
    pub fn name(self) -> &'static str {
        match self {
            Engine::Embedded => "umqtt-simple over embedded-tls",
            Engine::Rustls => "umqtt-simple over rustls",
        }
    }
}

/// umqtt-simple over the rustls engine.
type RustlsClient<'a> = Client<'a, StdRustlsStack, StdClock, RustlsWait>;

/// A client over embedded-tls (not connected) verifying the broker against
/// `ca`.
fn umqtt_client<'a>(
    tls: &'a TlsBuffers<'a>,
    ca: &'a [u8],
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> TlsClient<'a> {
    let stack = TlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        OsRng,
        tls,
        TlsOptions::new(HOST).ca(ca),
    )
    .with_time(SystemTime);
    Client::new(stack, StdClock::new(), tx, rx, options).with_waiter(TlsWait)
}

/// A client over rustls (not connected) verifying the broker against `ca`.
fn rustls_client<'a>(
    ca: &[u8],
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> Res<RustlsClient<'a>> {
    let stack = RustlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        &RustlsOptions::new(HOST).ca_der(ca),
    )
    .ctx("umqtt-simple over rustls: configuration")?;
    Ok(Client::new(stack, StdClock::new(), tx, rx, options).with_waiter(RustlsWait))
}

/// Connects (timed: TCP + handshake + CONNACK, into `connects`).
fn umqtt_connect<S: TcpClientStack, W: Wait<S>>(
    client: &mut Client<'_, S, StdClock, W>,
    addr: SocketAddr,
    connects: &mut Vec<Duration>,
) -> Res<()> {
    let start = Instant::now();
    client.connect(addr).ctx("umqtt-simple over TLS: connect")?;
    connects.push(start.elapsed());
    Ok(())
}

/// The heap a umqtt-simple client over TLS used (process-wide counters; the
/// client runs alone on the calling thread).
#[derive(Debug, Clone, Copy, Default)]
pub struct TlsHeap {
    /// Bytes allocated from making the stack to the CONNACK and still held
    /// (the caller's buffers are made before and not counted).
    pub held_after_connect: usize,
    /// Allocations per QoS 1 publish (PUBACK included) after the connect.
    pub allocations_per_msg: f64,
}

/// QoS 1 over TLS with `engine`: a timed connect, then `n` publishes one
/// after the other (after `warmup` untimed ones), each returning after its
/// PUBACK; also what the client took from the heap.
pub fn umqtt_qos1(
    broker: &TlsBroker,
    engine: Engine,
    topic: &[u8],
    counts: (usize, usize),
    connects: &mut Vec<Duration>,
) -> Res<(Duration, TlsHeap)> {
    let mut b = UmqttBuffers::new();
    let id = client_id("umqtt-tls-q1");
    let before = heap_count::stats();
    match engine {
        Engine::Embedded => {
            let tls = TlsBuffers::new(&mut b.read, &mut b.write);
            let mut client =
                umqtt_client(&tls, &broker.ca, &mut b.tx, &mut b.rx, Options::new(&id));
            qos1_on(&mut client, broker.addr, topic, counts, connects, before)
        }
        Engine::Rustls => {
            let mut client = rustls_client(&broker.ca, &mut b.tx, &mut b.rx, Options::new(&id))?;
            qos1_on(&mut client, broker.addr, topic, counts, connects, before)
        }
    }
}

fn qos1_on<S: TcpClientStack, W: Wait<S>>(
    client: &mut Client<'_, S, StdClock, W>,
    addr: SocketAddr,
    topic: &[u8],
    (warmup, n): (usize, usize),
    connects: &mut Vec<Duration>,
    before: stats_alloc::Stats,
) -> Res<(Duration, TlsHeap)> {
    umqtt_connect(client, addr, connects)?;
    let connected = heap_count::stats();
    let elapsed = time_after_warmup(warmup, n, || {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtLeastOnce)
            .ctx("umqtt-simple over TLS: publish")
    })?;
    let published = heap_count::stats();
    client
        .disconnect()
        .ctx("umqtt-simple over TLS: disconnect")?;
    let heap = TlsHeap {
        held_after_connect: heap_count::live_bytes(before, connected),
        allocations_per_msg: (published.allocations - connected.allocations) as f64
            / (warmup + n).max(1) as f64,
    };
    Ok((elapsed, heap))
}

/// Round trips over TLS with `engine`: a timed connect, a subscription at
/// QoS 0 to `topic`, then publish QoS 0 to it and `wait_msg_for` until the
/// callback has it; `samples` gets the last `n` times.
pub fn umqtt_round_trip(
    broker: &TlsBroker,
    engine: Engine,
    topic: &[u8],
    counts: (usize, usize),
    samples: &mut Vec<Duration>,
    connects: &mut Vec<Duration>,
) -> Res<()> {
    let received = Cell::new(0usize);
    let mut on_message = |_: Message<'_>| received.set(received.get() + 1);
    let mut b = UmqttBuffers::new();
    let id = client_id("umqtt-tls-rtt");
    match engine {
        Engine::Embedded => {
            let tls = TlsBuffers::new(&mut b.read, &mut b.write);
            let mut client =
                umqtt_client(&tls, &broker.ca, &mut b.tx, &mut b.rx, Options::new(&id));
            client.set_callback(&mut on_message);
            round_trip_on(
                &mut client,
                &received,
                broker.addr,
                topic,
                counts,
                samples,
                connects,
            )
        }
        Engine::Rustls => {
            let mut client = rustls_client(&broker.ca, &mut b.tx, &mut b.rx, Options::new(&id))?;
            client.set_callback(&mut on_message);
            round_trip_on(
                &mut client,
                &received,
                broker.addr,
                topic,
                counts,
                samples,
                connects,
            )
        }
    }
}

fn round_trip_on<S: TcpClientStack, W: Wait<S>>(
    client: &mut Client<'_, S, StdClock, W>,
    received: &Cell<usize>,
    addr: SocketAddr,
    topic: &[u8],
    (warmup, n): (usize, usize),
    samples: &mut Vec<Duration>,
    connects: &mut Vec<Duration>,
) -> Res<()> {
    umqtt_connect(client, addr, connects)?;
    client
        .subscribe(topic, QoS::AtMostOnce)
        .ctx("umqtt-simple over TLS: subscribe")?;
    let one = |i| {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtMostOnce)
            .ctx("umqtt-simple over TLS: publish")?;
        while received.get() < i + 1 {
            let got = client
                .wait_msg_for(WAIT_MS)
                .ctx("umqtt-simple over TLS: wait_msg")?;
            if !got {
                return Err("umqtt-simple over TLS: no message within 10 s".to_string());
            }
        }
        Ok(())
    };
    time_each(warmup, n, samples, one, |()| Ok(()))?;
    client
        .disconnect()
        .ctx("umqtt-simple over TLS: disconnect")?;
    Ok(())
}

// ---------------------------------------------------------------------------
// rumqttc over rustls
// ---------------------------------------------------------------------------

/// rustls's client configuration with ring's crypto and rustls's default
/// protocol versions, cipher suites and key exchange groups, trusting `ca`.
pub fn rustls_config(ca: &[u8]) -> Res<Arc<rustls::ClientConfig>> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    roots
        .add(rustls::pki_types::CertificateDer::from(ca.to_vec()))
        .ctx("rustls: the CA certificate")?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .ctx("rustls: protocol versions")?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// rumqttc over rustls, connected (timed from `Client::new` to the CONNACK
/// event: the connection thread makes the TCP connection and the handshake,
/// into `connects`).
fn rumq_connect(
    broker: &TlsBroker,
    config: &Arc<rustls::ClientConfig>,
    tag: &str,
    connects: &mut Vec<Duration>,
) -> Res<Rumq> {
    let mut options = MqttOptions::new(client_id(tag), HOST, broker.addr.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_transport(Transport::tls_with_config(TlsConfiguration::Rustls(
        Arc::clone(config),
    )));
    let start = Instant::now();
    let rumq = Rumq::connect_with(options, false, rumq::channel())?;
    connects.push(start.elapsed());
    Ok(rumq)
}

/// QoS 1 over TLS, as [`umqtt_qos1`].
pub fn rumq_qos1(
    broker: &TlsBroker,
    config: &Arc<rustls::ClientConfig>,
    topic: &[u8],
    (warmup, n): (usize, usize),
    connects: &mut Vec<Duration>,
) -> Res<Duration> {
    let topic = std::str::from_utf8(topic).ctx("topic")?;
    let mut rumq = rumq_connect(broker, config, "rumqttc-tls-q1", connects)?;
    let elapsed = time_after_warmup(warmup, n, || {
        rumq.client
            .publish(topic, rumqttc::QoS::AtLeastOnce, false, &PAYLOAD[..])
            .ctx("rumqttc over TLS: publish")?;
        rumq.expect(|e| matches!(e, Ev::PubAck), "PUBACK")?;
        Ok(())
    })?;
    rumq.finish()?;
    Ok(elapsed)
}

/// Round trips over TLS, as [`umqtt_round_trip`] (waiting for the incoming
/// PUBLISH event).
pub fn rumq_round_trip(
    broker: &TlsBroker,
    config: &Arc<rustls::ClientConfig>,
    topic: &[u8],
    (warmup, n): (usize, usize),
    samples: &mut Vec<Duration>,
    connects: &mut Vec<Duration>,
) -> Res<()> {
    let topic = std::str::from_utf8(topic).ctx("topic")?;
    let mut rumq = rumq_connect(broker, config, "rumqttc-tls-rtt", connects)?;
    rumq.subscribe(topic)?;
    let one = |_| {
        rumq.client
            .publish(topic, rumqttc::QoS::AtMostOnce, false, &PAYLOAD[..])
            .ctx("rumqttc over TLS: publish")?;
        rumq.expect(|e| matches!(e, Ev::Publish), "PUBLISH")?;
        Ok(())
    };
    time_each(warmup, n, samples, one, |()| Ok(()))?;
    rumq.finish()?;
    Ok(())
}
