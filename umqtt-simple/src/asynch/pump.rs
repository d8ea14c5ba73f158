//! The pump: runs a [`Request`] on the [`Engine`](crate::Engine), sending,
//! reading and waiting on the connection and the [`Timer`] as it asks, and
//! drops the connection when a request lost it.

use core::net::SocketAddr;

use embedded_io_async::{Read, Write};
use embedded_nal_async::TcpConnect;

use super::race::{before, now_or_never};
use super::{AsyncClientError, Client};
use crate::Timer;
use crate::engine::{Io, Request};
use crate::error::{Error, Waiting};

impl<'a, N: TcpConnect + 'a, T: Timer> Client<'a, N, T> {
    /// Runs `request` until it settles; drops the connection if it was lost.
    pub(super) async fn run(
        &mut self,
        request: &mut dyn Request,
    ) -> Result<bool, AsyncClientError<N>> {
        let result = self.pump(request).await;
        self.settle(result)
    }

    /// The one loop of every call: does the I/O the engine asks for.
    pub(super) async fn pump(
        &mut self,
        request: &mut dyn Request,
    ) -> Result<bool, AsyncClientError<N>> {
        loop {
            let now = self.timer.now_ms();
            match self.engine.step(request, now) {
                Io::Send { deadline } => self.send(request, now, deadline).await?,
                Io::Read => self.read(now, None).await?,
                Io::Wait { until } => self.read(now, Some(until)).await?,
                Io::Done(result) => return result.map_err(Error::on_stack),
            }
        }
    }

    /// Reads into the engine's receive buffer what has arrived (`until`
    /// None), or waits for data until `until`.
    async fn read(&mut self, now: u64, until: Option<u64>) -> Result<(), AsyncClientError<N>> {
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

    /// Sends what the engine has to send, whole, before `deadline`, and
    /// flushes the connection when [`Client::set_flush_after_send`] says so.
    /// Anything less leaves the broker with half a packet, so the
    /// connection is then lost.
    async fn send(
        &mut self,
        request: &dyn Request,
        now: u64,
        deadline: u64,
    ) -> Result<(), AsyncClientError<N>> {
        let connection = self.connection.as_mut().ok_or(Error::NotConnected)?;
        let (head, tail) = self.engine.outgoing(request);
        let flush = self.flush_after_send;
        let written = before(&mut self.timer, deadline, async {
            write_all(connection, head).await?;
            write_all(connection, tail).await?;
            if flush {
                connection.flush().await.map_err(Error::Network)?;
            }
            Ok(())
        })
        .await
        .unwrap_or(Err(Error::Timeout(Waiting::Send)));
        match written {
            Ok(()) => self.engine.sent(now),
            Err(_) => self.engine.send_failed(),
        }
        written
    }

    /// When a connect begun now must be done.
    pub(super) async fn connect_by(
        &mut self,
        addr: SocketAddr,
        deadline: u64,
    ) -> Result<bool, AsyncClientError<N>> {
        // Everything is checked (and encoded) before the network is touched.
        let mut request = self
            .engine
            .connect(addr, deadline)
            .map_err(Error::on_stack)?;
        self.close();
        let connect = before(&mut self.timer, deadline, self.net.connect(addr)).await;
        let connection = connect.ok_or(Error::Timeout(Waiting::Connect))?;
        self.connection = Some(connection.map_err(Error::Network)?);
        self.pump(&mut request).await
    }

    /// Drops the connection if `result` is an error that lost it.
    pub(super) fn settle<V>(
        &mut self,
        result: Result<V, AsyncClientError<N>>,
    ) -> Result<V, AsyncClientError<N>> {
        if self.connection.is_some() && self.engine.lost(&result) {
            self.close();
        }
        result
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
