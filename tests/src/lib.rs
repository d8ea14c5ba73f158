//! What the tests share: real brokers started on free loopback ports, scripted
//! fake brokers for exact wire behaviour, and std clients.
//!
//! - [`InProcessBroker`]: rumqttd in a thread, so `cargo test` needs nothing
//!   installed.
//! - [`Mosquitto`]: mosquitto as a subprocess with a config written by the
//!   test. Missing mosquitto skips the test with a printed reason, unless
//!   `UMQTT_REQUIRE_MOSQUITTO=1` (CI), where it fails. Its pieces
//!   ([`find_mosquitto`], [`mosquitto_config`], [`spawn_mosquitto`]) also
//!   serve [`netns`].
//! - [`netns`]: a test re-executed in a network namespace of its own, with a
//!   TAP device and mosquitto inside, for the smoltcp and embassy-net
//!   examples, whose stacks run in user space on the TAP device.
//! - [`FakeBroker`]: a loopback listener driven by a script, for hostile input.
//! - [`ClientParts`]: what a std client borrows (buffers, client id, an
//!   [`Inbox`] callback), so a test makes a connected client or an observer
//!   subscribed to a topic in one line.
//! - [`tokio_net`]: the async client over tokio's sockets, and a runner
//!   that fails a hang.
//! - [`pki`]: certificate authorities, intermediates and server
//!   certificates made with `openssl`, with the extensions a test chooses.
//! - [`tls_server`]: a scripted TLS 1.3 server that can leave out, reorder,
//!   corrupt or add each of its handshake messages, for hostile-server tests
//!   of the TLS client.
//! - [`watcher`]: a persistent subscriber counting numbered messages
//!   across broker kills, and the checks on what it saw (nothing lost but
//!   what the broker lost itself, new ones in order).
//! - [`run_in_thread_within`]: a client in its own thread under a time limit,
//!   so a hang fails the test instead of blocking the suite.
//!
//! Only loopback addresses are used (and, by [`netns`], addresses inside a
//! namespace the test created).

mod fake_broker;
mod mosquitto;
pub mod netns;
pub mod pki;
mod scripted;
pub mod tls_server;
pub mod watcher;

pub use fake_broker::*;
pub use mosquitto::*;
pub use scripted::*;

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::{Client, ClientError, Message, Options, QoS};
use umqtt_transports::std_async::StdTimer;
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};

pub mod tokio_net;
use tokio_net::{AsyncClient, TokioNet};

/// The client the tests use: std stack, std clock, sleeping waiter.
pub type StdClient<'a> = Client<'a, StdTcpStack, StdClock, StdWait>;

/// The error a [`StdClient`] returns.
pub type StdClientError = ClientError<StdTcpStack>;

/// A std client over `tx` and `rx`, not yet connected.
pub fn std_client<'a>(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>) -> StdClient<'a> {
    Client::new(StdTcpStack::new(), StdClock::new(), tx, rx, options).with_waiter(StdWait::new())
}

/// A reconnecting client over the std stack.
pub type StdRobust<'a> = umqtt_robust::RobustClient<'a, StdTcpStack, StdClock, StdWait>;

/// A reconnecting std client over `tx` and `rx`, not yet connected, with a
/// backoff from `min_ms` to `max_ms` (no attempt limit) and
/// `call_timeout_ms` per call.
pub fn std_robust<'a>(
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
    (min_ms, max_ms): (u32, u32),
    call_timeout_ms: u32,
) -> StdRobust<'a> {
    let mut client = umqtt_robust::RobustClient::from_client(std_client(tx, rx, options));
    client.set_robust_options(umqtt_robust::RobustOptions {
        backoff: umqtt_robust::Backoff {
            min_ms,
            max_ms,
            max_attempts: None,
        },
        call_timeout_ms,
    });
    client
}

/// How long any client part of a test may take before it counts as a hang
/// (see [`run_in_thread_within`]).
pub const HANG_LIMIT: Duration = Duration::from_secs(30);
/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not happen.
pub const QUIET: Duration = Duration::from_secs(1);

/// Runs `f` in its own thread and returns its result, failing the test if it
/// takes longer than `limit` (a hang) and re-raising its panic if it panics.
pub fn run_in_thread_within<T: Send + 'static>(
    limit: Duration,
    f: impl FnOnce() -> T + Send + 'static,
) -> T {
    let (tx, rx) = mpsc::channel();
    let handle = thread::spawn(move || {
        let _ = tx.send(f());
    });
    match rx.recv_timeout(limit) {
        Ok(value) => {
            let _ = handle.join();
            value
        }
        Err(RecvTimeoutError::Disconnected) => match handle.join() {
            Err(panic) => std::panic::resume_unwind(panic),
            Ok(()) => panic!("the client thread ended without a result"),
        },
        Err(RecvTimeoutError::Timeout) => {
            panic!("the client did not return within {limit:?}: a hang")
        }
    }
}

/// Bytes from hex text; white space is ignored.
pub fn hex(text: &str) -> Vec<u8> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    assert!(digits.len().is_multiple_of(2), "odd hex string {text:?}");
    digits
        .chunks(2)
        .map(|pair| u8::from_str_radix(std::str::from_utf8(pair).unwrap(), 16).unwrap())
        .collect()
}

/// Hex text of `bytes`, for readable assertions and failures.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A free TCP port on 127.0.0.1.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind a loopback port");
    listener.local_addr().expect("local address").port()
}

/// Waits until something accepts TCP connections at `addr`. A connection
/// to itself does not count: a connect to a loopback port nobody listens on
/// can, rarely, get that very port as its own and meet itself
/// (simultaneous open).
pub fn wait_for_listener(addr: SocketAddr, within: Duration) -> bool {
    let start = Instant::now();
    while start.elapsed() < within {
        if let Ok(stream) = TcpStream::connect_timeout(&addr, Duration::from_millis(200))
            && stream.local_addr().ok() != stream.peer_addr().ok()
        {
            return true;
        }
        thread::sleep(Duration::from_millis(20));
    }
    false
}

/// A unique, empty directory for one test's files.
pub fn scratch_dir(tag: &str) -> PathBuf {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("umqtt-{tag}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create scratch dir");
    dir
}

/// A unique client id, so tests sharing a broker never collide.
pub fn client_id(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// rumqttd running in this process on a free loopback port.
pub struct InProcessBroker {
    /// Where it listens.
    pub addr: SocketAddr,
}

impl InProcessBroker {
    /// Starts a broker that accepts messages of up to `max_payload` bytes.
    pub fn start_with_max_payload(max_payload: usize) -> Self {
        use std::collections::HashMap;

        let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, free_port()));
        let server = rumqttd::ServerSettings {
            name: "v4".into(),
            listen: addr,
            tls: None,
            next_connection_delay_ms: 0,
            connections: rumqttd::ConnectionSettings {
                connection_timeout_ms: 5_000,
                max_payload_size: max_payload,
                max_inflight_count: 100,
                auth: None,
                external_auth: None,
                dynamic_filters: true,
            },
        };
        let config = rumqttd::Config {
            id: 0,
            router: rumqttd::RouterConfig {
                max_connections: 100,
                max_outgoing_packet_count: 200,
                max_segment_size: 100 * 1024 * 1024,
                max_segment_count: 10,
                ..Default::default()
            },
            v4: Some(HashMap::from([("v4".to_string(), server)])),
            ..Default::default()
        };
        thread::Builder::new()
            .name("rumqttd".into())
            .spawn(move || {
                let mut broker = rumqttd::Broker::new(config);
                if let Err(e) = broker.start() {
                    eprintln!("rumqttd stopped: {e:?}");
                }
            })
            .expect("spawn the broker thread");
        assert!(
            wait_for_listener(addr, Duration::from_secs(10)),
            "rumqttd did not start on {addr}"
        );
        InProcessBroker { addr }
    }

    /// Starts a broker with a 4 MiB message limit.
    pub fn start() -> Self {
        Self::start_with_max_payload(4 * 1024 * 1024)
    }
}

/// A received message, copied out of the client's buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Received {
    /// Topic.
    pub topic: Vec<u8>,
    /// Payload.
    pub payload: Vec<u8>,
    /// QoS it arrived with.
    pub qos: QoS,
    /// Retain flag.
    pub retain: bool,
}

/// Collects what a callback receives.
#[derive(Debug, Default)]
pub struct Inbox {
    messages: RefCell<Vec<Received>>,
}

impl Inbox {
    /// Stores one message.
    pub fn push(&self, msg: Message<'_>) {
        self.messages.borrow_mut().push(Received {
            topic: msg.topic.to_vec(),
            payload: msg.payload.to_vec(),
            qos: msg.qos,
            retain: msg.retain,
        });
    }

    /// How many messages arrived.
    pub fn len(&self) -> usize {
        self.messages.borrow().len()
    }

    /// Whether none arrived.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// A copy of everything received.
    pub fn all(&self) -> Vec<Received> {
        self.messages.borrow().clone()
    }

    /// The payloads received, in order.
    pub fn payloads(&self) -> Vec<Vec<u8>> {
        self.messages
            .borrow()
            .iter()
            .map(|m| m.payload.clone())
            .collect()
    }
}

/// What a std client borrows, owned in one place so that a test makes a
/// client in one line: its transmit and receive buffers, its client id, and
/// an [`Inbox`] with the callback that fills it.
///
/// The clients it makes borrow it, so it is a local of its own, declared
/// before the client: `let mut parts = ClientParts::new("observer", 256, 256);`
/// then `let (mut observer, inbox) = parts.observer(addr, topic, qos);`.
pub struct ClientParts {
    tx: Vec<u8>,
    rx: Vec<u8>,
    id: String,
    inbox: Rc<Inbox>,
    on_message: Box<dyn FnMut(Message<'_>)>,
}

impl ClientParts {
    /// Buffers of `tx_len` and `rx_len` bytes and a unique client id made
    /// from `tag` (see [`client_id`]).
    pub fn new(tag: &str, tx_len: usize, rx_len: usize) -> Self {
        Self::with_id(client_id(tag), tx_len, rx_len)
    }

    /// Buffers of `tx_len` and `rx_len` bytes and exactly `id` as client id.
    pub fn with_id(id: impl Into<String>, tx_len: usize, rx_len: usize) -> Self {
        let inbox = Rc::new(Inbox::default());
        let sink = Rc::clone(&inbox);
        ClientParts {
            tx: vec![0u8; tx_len],
            rx: vec![0u8; rx_len],
            id: id.into(),
            inbox,
            on_message: Box::new(move |m| sink.push(m)),
        }
    }

    /// A client, not yet connected and without a callback, with the options
    /// `configure` makes of `Options::new(id)` (`|o| o` for the defaults).
    pub fn client<'a>(
        &'a mut self,
        configure: impl FnOnce(Options<'a>) -> Options<'a>,
    ) -> StdClient<'a> {
        std_client(
            &mut self.tx,
            &mut self.rx,
            configure(Options::new(&self.id)),
        )
    }

    /// The same as [`ClientParts::client`], with a callback that stores every
    /// message in the inbox returned with it.
    pub fn client_with_inbox<'a>(
        &'a mut self,
        configure: impl FnOnce(Options<'a>) -> Options<'a>,
    ) -> (StdClient<'a>, Rc<Inbox>) {
        let mut client = std_client(
            &mut self.tx,
            &mut self.rx,
            configure(Options::new(&self.id)),
        );
        client.set_callback(&mut *self.on_message);
        (client, Rc::clone(&self.inbox))
    }

    /// An async client (see [`tokio_net`]) over `net`, not yet connected,
    /// with a callback that stores every message in the inbox returned with
    /// it, and the options `configure` makes of `Options::new(id)`.
    pub fn async_client_with_inbox<'a>(
        &'a mut self,
        net: &'a TokioNet,
        configure: impl FnOnce(Options<'a>) -> Options<'a>,
    ) -> (AsyncClient<'a>, Rc<Inbox>) {
        let options = configure(Options::new(&self.id));
        let mut client =
            AsyncClient::new(net, StdTimer::new(), &mut self.tx, &mut self.rx, options);
        client.set_callback(&mut *self.on_message);
        (client, Rc::clone(&self.inbox))
    }

    /// A client with default options and no callback, connected to `addr`
    /// (a publisher).
    pub fn connected(&mut self, addr: SocketAddr) -> StdClient<'_> {
        let mut client = self.client(|o| o);
        connect_or_panic(&mut client, addr);
        client
    }

    /// A client with default options whose messages go to the returned
    /// inbox, connected to `addr`.
    pub fn connected_with_inbox(&mut self, addr: SocketAddr) -> (StdClient<'_>, Rc<Inbox>) {
        let (mut client, inbox) = self.client_with_inbox(|o| o);
        connect_or_panic(&mut client, addr);
        (client, inbox)
    }

    /// An observer: a client with default options connected to `addr` and
    /// subscribed to `filter` at `qos`, whose messages go to the returned
    /// inbox.
    pub fn observer(
        &mut self,
        addr: SocketAddr,
        filter: &[u8],
        qos: QoS,
    ) -> (StdClient<'_>, Rc<Inbox>) {
        let (mut client, inbox) = self.connected_with_inbox(addr);
        client
            .subscribe(filter, qos)
            .unwrap_or_else(|e| panic!("subscribe: {e}"));
        (client, inbox)
    }
}

fn connect_or_panic(client: &mut StdClient<'_>, addr: SocketAddr) {
    client
        .connect(addr)
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
}

/// Calls `wait_msg_for` until `done` holds or `within` passes; returns `done()`.
pub fn pump_until(
    client: &mut StdClient<'_>,
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= within {
            return false;
        }
        if let Err(e) = client.wait_msg_for(100) {
            panic!("wait_msg_for failed: {e}");
        }
    }
    true
}

/// Runs `wait_msg_for` for `period`, panicking on any error.
pub fn pump_for(client: &mut StdClient<'_>, period: Duration) {
    let start = Instant::now();
    while start.elapsed() < period {
        client
            .wait_msg_for(50)
            .unwrap_or_else(|e| panic!("wait_msg_for failed: {e}"));
    }
}

/// A QoS 0 publish from `client`, panicking with the error.
pub fn publish0(client: &mut StdClient<'_>, topic: &[u8], payload: &[u8]) {
    client
        .publish(topic, payload, false, QoS::AtMostOnce)
        .unwrap_or_else(|e| panic!("publish: {e}"));
}
