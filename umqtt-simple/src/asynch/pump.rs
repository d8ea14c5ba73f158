//! The pump: runs a [`Request`] on the [`Engine`](crate::Engine), sending,
//! reading and waiting on the connection and the [`Timer`] as it asks, and
//! drops the connection when a request lost it.

use core::net::SocketAddr;

use embedded_io_async::{Read, Write};
use embedded_nal_async::TcpConnect;

use super::race::{before, now_or_never};
use super::{AsyncClientError, Client};
use crate::Timer;
use crate::engine::Request;
use crate::error::{Error, Waiting};

impl<'a, N: TcpConnect + 'a, T: Timer> Client<'a, N, T> {
    crate::front_end::client_pump!(AsyncClientError<N>, async, await);

    /// The time on the timer.
    fn now(&self) -> u64 {
        self.timer.now_ms()
    }

    /// Reads what has arrived into the engine's receive buffer.
    async fn read(&mut self, now: u64) -> Result<(), AsyncClientError<N>> {
        self.read_until(now, None).await
    }

    /// Waits for data until `until`, reading it into the engine's receive
    /// buffer.
    async fn wait(&mut self, now: u64, until: u64) -> Result<(), AsyncClientError<N>> {
        self.read_until(now, Some(until)).await
    }

    /// Reads into the engine's receive buffer what has arrived (`until`
    /// None), or waits for data until `until`.
    async fn read_until(
        &mut self,
        now: u64,
        until: Option<u64>,
    ) -> Result<(), AsyncClientError<N>> {
        let connection = self.connection.as_mut().ok_or(Error::NotConnected)?;
        let room = self.engine.receive_space(now);
        if room.is_empty() {
            self.engine.received(0);
            return Ok(());
        }
        let read = connection.read(room);
        let result = match until {
            None => now_or_never(read).await,
            Some(until) => before(&mut self.timer, until, read).await,
        };
        match result {
            None if until.is_some() => self.engine.waited(),
            None => self.engine.received(0),
            // embedded-io: 0 bytes into a buffer with room is the end.
            Some(Ok(0)) => return Err(Error::Closed),
            Some(Ok(n)) => self.engine.received(n),
            Some(Err(e)) => return Err(Error::Network(e)),
        }
        Ok(())
    }

    /// Sends what the engine has to send, and flushes the connection when
    /// [`Client::set_flush_after_send`] says so.
    async fn send(
        &mut self,
        request: &dyn Request,
        deadline: u64,
    ) -> Result<(), AsyncClientError<N>> {
        let connection = self.connection.as_mut().ok_or(Error::NotConnected)?;
        let (head, tail) = self.engine.outgoing(request);
        let flush = self.flush_after_send;
        before(&mut self.timer, deadline, async {
            write_all(connection, head).await?;
            write_all(connection, tail).await?;
            if flush {
                connection.flush().await.map_err(Error::Network)?;
            }
            Ok(())
        })
        .await
        .unwrap_or(Err(Error::Timeout(Waiting::Send)))
    }

    /// Opens a connection to `addr` before `deadline`.
    async fn open(&mut self, addr: SocketAddr, deadline: u64) -> Result<(), AsyncClientError<N>> {
        let connect = before(&mut self.timer, deadline, self.net.connect(addr)).await;
        let connection = connect.ok_or(Error::Timeout(Waiting::Connect))?;
        self.connection = Some(connection.map_err(Error::Network)?);
        Ok(())
    }

    /// Whether a connection is open.
    fn is_open(&self) -> bool {
        self.connection.is_some()
    }

    /// Drops the connection (which closes it) and what was batched for it.
    pub(super) fn close(&mut self) {
        self.engine.closed();
        self.connection = None;
    }
}

/// Writes all of `bytes`; a connection that takes none is closed.
/// (embedded-io-async's own `write_all` panics on that.)
async fn write_all<W: Write>(writer: &mut W, bytes: &[u8]) -> Result<(), Error<W::Error>> {
    let mut sent = 0;
    while let Some(rest) = bytes.get(sent..).filter(|r| !r.is_empty()) {
        match writer.write(rest).await {
            Ok(0) => return Err(Error::Closed),
            Ok(n) => sent += n,
            Err(e) => return Err(Error::Network(e)),
        }
    }
    Ok(())
}
