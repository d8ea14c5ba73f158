//! What `pub` and `sub` share: the reconnecting client over the std stack, its
//! buffers and options, connection events on stderr, and short messages for
//! failures.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use umqtt_robust::{Backoff, Event, RobustClient, RobustError, RobustOptions};
use umqtt_simple::{Client, Error, ErrorKind, Options};
use umqtt_transports::std_tcp::StdClock;

use crate::args::Connection;
use crate::transport::{NetError, Stack, Waiter};

/// Bytes for the subscriptions the client restores after a reconnect (each
/// filter takes its length plus 3).
pub const SUBSCRIPTION_BYTES: usize = 16 * 1024;

/// The receive buffer: the largest message `sub` can print. Larger ones are
/// skipped with a warning. The memory is only touched as far as messages
/// reach.
pub const RX_BUFFER: usize = 16 * 1024 * 1024;

/// The transmit buffer: a PUBLISH that fits goes out in one send; a larger
/// payload follows the header in a second send, so this is no limit.
pub const TX_BUFFER: usize = 64 * 1024;

/// How long one call (connect, publish, subscribe) may take, reconnects
/// included, unless `-W` leaves less.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// The client both subcommands use: plain TCP, or TLS once [`connect`] has
/// seen TLS options.
pub type Mqtt<'a> = RobustClient<'a, Stack, StdClock, Waiter, SUBSCRIPTION_BYTES>;

/// Its error.
pub type MqttError = RobustError<NetError>;

/// The two buffers a client borrows.
pub struct Buffers {
    tx: Vec<u8>,
    rx: Vec<u8>,
}

impl Buffers {
    /// Buffers of the default sizes.
    pub fn new() -> Self {
        Buffers {
            tx: vec![0; TX_BUFFER],
            rx: vec![0; RX_BUFFER],
        }
    }
}

/// A client id for `kind` (`pub` or `sub`) that another run, even on another
/// machine, is unlikely to pick: `umqtt-sub-1a2b3c4d`.
pub fn default_client_id(kind: &str) -> String {
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos() ^ (d.as_secs() as u32));
    let mixed = nanos ^ std::process::id().rotate_left(16);
    format!("umqtt-{kind}-{mixed:08x}")
}

/// The client's MQTT options from the command line; `client_id` is the id in
/// use (given or generated).
pub fn options<'a>(connection: &'a Connection, client_id: &'a str) -> Options<'a> {
    let mut options = Options::new(client_id)
        .keepalive(connection.keepalive)
        .clean_session(connection.clean_session);
    if let Some(user) = &connection.username {
        options = options.user(user);
    }
    if let Some(password) = &connection.password {
        options = options.password(password.as_bytes());
    }
    if let Some(will) = &connection.will {
        options = options.last_will(
            will.topic.as_bytes(),
            will.payload.as_bytes(),
            will.retain,
            will.qos,
        );
    }
    options
}

/// A reconnecting client over `buffers`, not connected yet.
pub fn client<'a>(buffers: &'a mut Buffers, options: Options<'a>) -> Mqtt<'a> {
    let inner = Client::new(
        Stack::Plain(umqtt_transports::std_tcp::StdTcpStack::new()),
        StdClock::new(),
        &mut buffers.tx,
        &mut buffers.rx,
        options,
    )
    .with_waiter(Waiter);
    let mut client = RobustClient::from_client(inner);
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 500,
            max_ms: 10_000,
            max_attempts: None,
        },
        call_timeout_ms: millis(CALL_TIMEOUT),
    });
    client
}

/// Makes the client's next calls end by `until` (and within
/// [`CALL_TIMEOUT`] each); `None`: [`CALL_TIMEOUT`] each.
pub fn limit_calls(client: &mut Mqtt<'_>, until: Option<Instant>) {
    let left = until.map_or(CALL_TIMEOUT, |until| {
        until.saturating_duration_since(Instant::now())
    });
    let robust = *client.robust_options();
    client.set_robust_options(RobustOptions {
        call_timeout_ms: millis(left.min(CALL_TIMEOUT)),
        ..robust
    });
}

fn millis(d: Duration) -> u32 {
    u32::try_from(d.as_millis()).unwrap_or(u32::MAX)
}

/// The broker's address: `host` resolved (IPv4 preferred) with `port`.
pub fn resolve(host: &str, port: u16) -> Result<SocketAddr, String> {
    let unbracketed = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = (unbracketed, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve host `{host}`: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or_else(|| addrs.first())
        .copied()
        .ok_or_else(|| format!("cannot resolve host `{host}`: no address"))
}

/// Connects for the first time, over TLS if `connection` says so; a failure
/// is final (exit 1), unlike a later loss of the connection, which is ridden
/// out.
pub fn connect(
    client: &mut Mqtt<'_>,
    connection: &Connection,
    addr: SocketAddr,
) -> Result<(), String> {
    if connection.tls.is_some() {
        *client.client_mut().stack_mut() = Stack::new(connection.tls.as_deref(), &connection.host)?;
    }
    client.connect(addr).map(drop).map_err(|e| {
        let target = if connection.host == addr.ip().to_string() {
            addr.to_string()
        } else {
            format!("{}:{} ({addr})", connection.host, connection.port)
        };
        format!("connect to {target}: {}", describe(&e))
    })
}

/// Says on stderr what happens to the connection.
pub fn report_event(event: Event) {
    match event {
        Event::Lost => eprintln!("connection lost, reconnecting…"),
        Event::Reconnected { .. } => eprintln!("reconnected"),
        Event::Resubscribed { filters } => {
            eprintln!("resubscribed to {filters} topic filter{}", plural(filters));
        }
        // Failed attempts are in the -d log; the wait goes on.
        Event::ReconnectFailed { .. } => {}
        Event::GaveUp { attempts } => {
            eprintln!(
                "gave up reconnecting after {attempts} attempt{}",
                plural(attempts as usize)
            );
        }
        // Only `pub -l -q 0` batches.
        Event::Dropped { messages } => {
            eprintln!(
                "warning: {messages} message{} lost with the connection",
                plural(messages as usize)
            );
        }
        // With -d: when the broker had each message (numbered from 1 in
        // the order accepted).
        Event::Delivered { seq } => log::debug!("message {seq} acknowledged by the broker"),
        // Any other event is in the -d log.
        _ => {}
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// A failure as a short phrase, from the error's kind and its own words:
/// the stack's for the network ("connection refused (nothing listening on
/// that port)"), the client's for the rest ("broker refused the connection:
/// not authorised", "timed out waiting for CONNACK").
pub fn describe(error: &MqttError) -> String {
    match error {
        // The std stack's errors say what happened in plain words.
        RobustError::Client(Error::Network(e)) => e.to_string(),
        RobustError::Offline { .. } => "broker unreachable".into(),
        RobustError::TimedOut {
            waiting,
            reconnects,
            unacked,
        } => {
            let mut text = format!("no {waiting} from the broker");
            match reconnects {
                0 => {}
                1 => text.push_str(" (reconnected once)"),
                n => text.push_str(&format!(" (reconnected {n} times)")),
            }
            if unacked.is_some() {
                text.push_str("; the message may not have arrived");
            }
            text
        }
        other if other.kind() == ErrorKind::Protocol => {
            format!("the broker broke the protocol: {other}")
        }
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use umqtt_simple::Waiting;
    use umqtt_transports::std_tcp::StdNetError;
    use umqtt_transports::tls::TlsStackError;

    #[test]
    fn failures_read_as_short_phrases() {
        let cases = [
            (
                Error::Network(NetError::Plain(StdNetError::Refused)),
                "connection refused (nothing listening on that port)",
            ),
            (
                Error::Network(NetError::Tls(TlsStackError::Tcp(StdNetError::Refused))),
                "connection refused (nothing listening on that port)",
            ),
            (
                Error::Network(NetError::Plain(StdNetError::ConnectTimedOut)),
                "connect timed out",
            ),
            (
                Error::Network(NetError::Tls(TlsStackError::Tls12Only)),
                "TLS handshake refused: the server speaks only TLS 1.2 or older (this client needs TLS 1.3): --tls-engine embedded speaks what a device's umqtt speaks (TLS 1.3 only); --tls-engine rustls (the default) speaks TLS 1.2 too",
            ),
            (
                Error::Timeout(Waiting::Connect),
                "timed out waiting for TCP connect",
            ),
            (
                Error::Timeout(Waiting::PubAck),
                "timed out waiting for PUBACK",
            ),
            (
                Error::RefusedBadCredentials,
                "broker refused the connection: bad user name or password",
            ),
            (
                Error::RefusedNotAuthorized,
                "broker refused the connection: not authorised",
            ),
            (Error::Closed, "the broker closed the connection"),
            (
                Error::UnexpectedPacket(umqtt_simple::packet::PacketType::SubAck),
                "the broker broke the protocol: unexpected SUBACK from the broker",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(describe(&RobustError::Client(error)), expected);
        }
        assert_eq!(
            describe(&RobustError::Offline { retry_in_ms: 5 }),
            "broker unreachable"
        );
        assert_eq!(
            describe(&RobustError::TimedOut {
                waiting: Waiting::PubAck,
                reconnects: 3,
                unacked: Some(1)
            }),
            "no PUBACK from the broker (reconnected 3 times); the message may not have arrived"
        );
    }

    #[test]
    fn resolve_prefers_ipv4_and_takes_literals() {
        assert_eq!(
            resolve("127.0.0.1", 1883),
            Ok("127.0.0.1:1883".parse().unwrap())
        );
        assert_eq!(resolve("[::1]", 1), Ok("[::1]:1".parse().unwrap()));
        assert_eq!(resolve("::1", 1), Ok("[::1]:1".parse().unwrap()));
        assert!(resolve("localhost", 1883).is_ok_and(|a| a.ip().is_loopback()));
    }

    #[test]
    fn default_client_ids_are_short_and_tagged() {
        let id = default_client_id("sub");
        assert!(id.starts_with("umqtt-sub-"), "{id}");
        assert!(
            id.len() <= 23,
            "{id} is longer than MQTT 3.1.1's safe 23 bytes"
        );
    }

    #[test]
    fn options_follow_the_command_line() {
        let connection = Connection {
            username: Some("u".into()),
            password: Some("p".into()),
            keepalive: 5,
            clean_session: false,
            ..Connection::default()
        };
        let o = options(&connection, "id");
        assert_eq!(o.client_id(), "id");
        assert_eq!(o.keepalive_s(), 5);
        assert!(!o.is_clean_session());
    }
}
