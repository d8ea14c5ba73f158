//! A hand-encoded MQTT CONNECT over any `embedded_nal_async::TcpConnect`:
//! proves the plumbing (TAP device, stack, executor, time driver) without
//! the MQTT client.

use core::net::SocketAddr;

use embassy_time::{Duration, with_timeout};
use embedded_io_async::{Read, Write};
use embedded_nal_async::TcpConnect;

/// CONNECT: MQTT 3.1.1, empty client id, clean session, keepalive 60 s.
pub const CONNECT: [u8; 14] = [
    0x10, 0x0c, 0x00, 0x04, b'M', b'Q', b'T', b'T', 0x04, 0x02, 0x00, 0x3c, 0x00, 0x00,
];

/// CONNACK: session not present, connection accepted.
pub const CONNACK_ACCEPTED: [u8; 4] = [0x20, 0x02, 0x00, 0x00];

/// What went wrong in [`connect_and_read_connack`].
#[derive(Debug)]
pub enum RawError<E> {
    /// The step did not finish within the limit.
    Timeout(&'static str),
    /// The stack failed at the step.
    Stack(&'static str, E),
    /// The broker closed the connection before the CONNACK was whole.
    Closed,
}

impl<E: core::fmt::Debug> core::fmt::Display for RawError<E> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            RawError::Timeout(step) => write!(f, "{step} timed out"),
            RawError::Stack(step, e) => write!(f, "{step}: {e:?}"),
            RawError::Closed => write!(f, "the broker closed the connection before its CONNACK"),
        }
    }
}

impl<E: core::fmt::Debug> core::error::Error for RawError<E> {}

/// Connects to `broker`, sends [`CONNECT`] and returns the 4 bytes the broker
/// answered with ([`CONNACK_ACCEPTED`] from a broker that took it). Each
/// step (connect, send, receive) is bounded by `limit`.
pub async fn connect_and_read_connack<T: TcpConnect>(
    tcp: &T,
    broker: SocketAddr,
    limit: Duration,
) -> Result<[u8; 4], RawError<T::Error>> {
    let mut conn = with_timeout(limit, tcp.connect(broker))
        .await
        .map_err(|_| RawError::Timeout("TCP connect"))?
        .map_err(|e| RawError::Stack("TCP connect", e))?;
    with_timeout(limit, async {
        conn.write_all(&CONNECT).await?;
        conn.flush().await
    })
    .await
    .map_err(|_| RawError::Timeout("sending CONNECT"))?
    .map_err(|e| RawError::Stack("sending CONNECT", e))?;
    let mut connack = [0u8; 4];
    let mut got = 0;
    while got < connack.len() {
        let n = with_timeout(limit, conn.read(&mut connack[got..]))
            .await
            .map_err(|_| RawError::Timeout("receiving CONNACK"))?
            .map_err(|e| RawError::Stack("receiving CONNACK", e))?;
        if n == 0 {
            return Err(RawError::Closed);
        }
        got += n;
    }
    Ok(connack)
}
