//! What the robust examples share: the reconnecting client over `std`, the
//! broker's address, and connection events printed on stderr (the
//! original's `DEBUG = True`).

use std::net::{SocketAddr, ToSocketAddrs};

use umqtt_robust::{Event, RobustClient, RobustError};
use umqtt_simple::{Error, Options};
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};

use crate::std_client;

/// The reconnecting client the robust examples use: umqtt-robust over the
/// same std stack, clock and sleeping waiter as [`crate::StdClient`].
pub type RobustStdClient<'a> = RobustClient<'a, StdTcpStack, StdClock, StdWait>;

/// A reconnecting client over the `tx` and `rx` buffers, not connected yet,
/// with the default backoff (500 ms doubling to 30 s, with jitter) and 30 s
/// of reconnecting per blocking call.
pub fn robust_client<'a>(
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> RobustStdClient<'a> {
    RobustClient::from_client(std_client(tx, rx, options))
}

/// The broker's address (IPv4 preferred). The robust client reconnects to
/// the address, so the name is looked up once, at start.
pub fn broker_addr(host: &str, port: u16) -> Result<SocketAddr, String> {
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("look up {host}: {e}"))?
        .collect();
    addrs
        .iter()
        .find(|a| a.is_ipv4())
        .or(addrs.first())
        .copied()
        .ok_or_else(|| format!("look up {host}: no address"))
}

/// Prints a connection event on stderr.
pub fn print_event(event: Event) {
    match event {
        Event::Lost => eprintln!("connection lost; reconnecting"),
        Event::ReconnectFailed {
            attempt,
            retry_in_ms,
        } => eprintln!("reconnect attempt {attempt} failed; next in {retry_in_ms} ms"),
        Event::Reconnected {
            session_present,
            attempts,
        } => eprintln!(
            "reconnected after {attempts} attempt(s) (session present: {session_present})"
        ),
        Event::Resubscribed { filters } => eprintln!("resubscribed to {filters} topic(s)"),
        Event::GaveUp { attempts } => eprintln!("gave up after {attempts} reconnect attempts"),
        Event::Dropped { messages } => eprintln!("{messages} batched message(s) lost"),
        _ => eprintln!("{event:?}"),
    }
}

/// What a receive loop does with an error of the robust client: go on after
/// a skipped message, an outage longer than the call's deadline or a broker
/// that did not answer in time (the client keeps reconnecting on the next
/// call), stop on anything else.
pub fn recoverable<E: std::fmt::Debug>(error: &RobustError<E>) -> bool {
    match error {
        RobustError::Client(Error::MessageTooLarge { .. })
        | RobustError::Offline { .. }
        | RobustError::TimedOut { .. } => {
            eprintln!("warning: {error}");
            true
        }
        _ => false,
    }
}

/// The `result` of a call in a receive loop (`wait_msg`, `check_msg`): its
/// value; `None` after an error the loop rides out (see [`recoverable`]);
/// any other error as one line, prefixed with `what`, to end the loop.
pub fn ride_out<T, E: std::fmt::Debug>(
    result: Result<T, RobustError<E>>,
    what: &str,
) -> Result<Option<T>, String> {
    match result {
        Ok(value) => Ok(Some(value)),
        Err(e) if recoverable(&e) => Ok(None),
        Err(e) => Err(format!("{what}: {e}")),
    }
}
