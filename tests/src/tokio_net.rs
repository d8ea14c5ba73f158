//! The async client on std, for the tests: an embedded-nal-async stack over
//! tokio's sockets ([`TokioNet`]), the client type made of it
//! ([`AsyncClient`]), and a runner that fails a test that hangs
//! ([`run_async`]). The executor is tokio's current-thread runtime; the
//! client's timer is umqtt-transports' executor-agnostic `StdTimer`.

use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use umqtt_simple::asynch::{AsyncClientError, Client};
use umqtt_transports::std_async::StdTimer;

/// An embedded-nal-async stack over tokio: `connect` opens a tokio
/// `TcpStream` (with `TCP_NODELAY`, as the std transport sets it).
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioNet;

/// One connection of [`TokioNet`]; dropping it closes the socket.
#[derive(Debug)]
pub struct TokioConnection(TcpStream);

impl embedded_nal_async::TcpConnect for TokioNet {
    type Error = std::io::Error;
    type Connection<'a> = TokioConnection;

    async fn connect(&self, remote: SocketAddr) -> Result<TokioConnection, std::io::Error> {
        let stream = TcpStream::connect(remote).await?;
        stream.set_nodelay(true)?;
        Ok(TokioConnection(stream))
    }
}

impl embedded_io_async::ErrorType for TokioConnection {
    type Error = std::io::Error;
}

impl embedded_io_async::Read for TokioConnection {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, std::io::Error> {
        self.0.read(buf).await
    }
}

impl embedded_io_async::Write for TokioConnection {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, std::io::Error> {
        self.0.write(buf).await
    }

    async fn flush(&mut self) -> Result<(), std::io::Error> {
        self.0.flush().await
    }
}

/// The async client the tests use.
pub type AsyncClient<'a> = Client<'a, TokioNet, StdTimer>;

/// The error an [`AsyncClient`] returns.
pub type AsyncError = AsyncClientError<TokioNet>;

/// Runs `future` on a tokio current-thread runtime, failing the test if it
/// takes longer than `limit` (a hang).
pub fn run_async<F: Future>(limit: Duration, future: F) -> F::Output {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(async {
        match tokio::time::timeout(limit, future).await {
            Ok(output) => output,
            Err(_) => panic!("the async client did not return within {limit:?}: a hang"),
        }
    })
}

/// Calls `wait_msg_for` until `done` holds or `within` passes; returns `done()`.
pub async fn pump_async_until(
    client: &mut AsyncClient<'_>,
    within: Duration,
    mut done: impl FnMut() -> bool,
) -> bool {
    let start = Instant::now();
    while !done() {
        if start.elapsed() >= within {
            return false;
        }
        if let Err(e) = client.wait_msg_for(100).await {
            panic!("wait_msg_for failed: {e}");
        }
    }
    true
}

/// The async reconnecting client the tests use.
pub type AsyncRobust<'a> = umqtt_robust::asynch::RobustClient<'a, TokioNet, StdTimer>;

/// An async reconnecting client over `net`, `tx` and `rx`, not yet
/// connected, with a backoff from `min_ms` to `max_ms` (no attempt limit)
/// and `call_timeout_ms` per call.
pub fn async_robust<'a>(
    net: &'a TokioNet,
    (tx, rx): (&'a mut [u8], &'a mut [u8]),
    options: umqtt_simple::Options<'a>,
    (min_ms, max_ms): (u32, u32),
    call_timeout_ms: u32,
) -> AsyncRobust<'a> {
    let mut client = AsyncRobust::new(net, StdTimer::new(), tx, rx, options);
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
