//! The connection's I/O: reading into the session's receive buffer and
//! handing its events to the callbacks, sending what it encoded, and
//! waiting on the [`Timer`] until data or a deadline.

use crate::Timer;
use embedded_io_async::{Read, Write};
use embedded_nal_async::TcpConnect;

use super::race::{before, now_or_never};
use super::{AsyncClientError, Client};
use crate::driver::Handled;
use crate::error::{Error, Waiting};
use crate::packet::Packet;
use crate::session::Encoded;

impl<'a, N: TcpConnect, T: Timer> Client<'a, N, T> {
    /// Handles at most one packet, reading and waiting as needed until
    /// `deadline` (`None`: never wait). Keeps keepalive on the way.
    pub(super) async fn poll_inbound(
        &mut self,
        deadline: Option<u64>,
    ) -> Result<Option<Handled>, AsyncClientError<N>> {
        let mut now = self.timer.now_ms();
        loop {
            self.keep_alive(now, false).await?;
            if let Some(handled) = self.take_packet(now).await? {
                return Ok(Some(handled));
            }
            if self.fill(now, None).await? {
                continue;
            }
            // Only with nothing left to read can a PINGRESP be called missing.
            self.keep_alive(now, true).await?;
            let Some(deadline) = deadline else {
                return Ok(None);
            };
            if now >= deadline {
                return Ok(None);
            }
            let until = self
                .session
                .next_deadline()
                .map_or(deadline, |k| k.min(deadline));
            self.fill(now, Some(until)).await?;
            now = self.timer.now_ms();
        }
    }

    /// Sends PINGREQ when due. With `judge_ping`, also fails when the last
    /// one went unanswered (call it only once everything received is read).
    pub(super) async fn keep_alive(
        &mut self,
        now: u64,
        judge_ping: bool,
    ) -> Result<(), AsyncClientError<N>> {
        if self.session.keep_alive::<N::Error>(now, judge_ping)? {
            self.send_ping().await?;
        }
        Ok(())
    }

    /// Reads into the receive buffer what has arrived (`until` None), or
    /// waits for data until `until`; returns whether any byte arrived.
    pub(super) async fn fill(
        &mut self,
        now: u64,
        until: Option<u64>,
    ) -> Result<bool, AsyncClientError<N>> {
        let connection = self.connection.as_mut().ok_or(Error::NotConnected)?;
        let room = self.session.receive_space(now);
        if room.is_empty() {
            return Ok(false);
        }
        let read = connection.read(room);
        let result = match until {
            None => now_or_never(read).await,
            Some(until) => before(&mut self.timer, until, read).await,
        };
        match result {
            None => Ok(false),
            // embedded-io: 0 bytes into a buffer with room is the end.
            Some(Ok(0)) => Err(Error::Closed),
            Some(Ok(n)) => {
                self.session.received(n);
                Ok(true)
            }
            Some(Err(e)) => Err(Error::Network(e)),
        }
    }

    /// Handles the next whole packet received, if there is one: delivers a
    /// message or a report to its callback, and sends what the session owes
    /// the broker for it.
    pub(super) async fn take_packet(
        &mut self,
        now: u64,
    ) -> Result<Option<Handled>, AsyncClientError<N>> {
        let handled = match self.session.poll::<N::Error>(now)? {
            None => return Ok(None),
            Some(event) => self.callbacks.hand_over(event),
        };
        if let Some(reply) = self.session.reply() {
            self.send_packet(reply).await?;
        }
        Ok(Some(handled))
    }

    /// Encodes `packet` behind any batched messages and sends them all (the
    /// batch first, alone, if both do not fit).
    pub(super) async fn send_packet(
        &mut self,
        packet: Packet<'_>,
    ) -> Result<(), AsyncClientError<N>> {
        let now = self.timer.now_ms();
        loop {
            match self.session.encode(&packet)? {
                Encoded::FlushFirst(len) => self.send_now(now, len, &[]).await?,
                Encoded::Send(len) | Encoded::SendWithPayload(len) => {
                    return self.send_now(now, len, &[]).await;
                }
                Encoded::Batched => return Ok(()),
            }
        }
    }

    /// Sends the batched messages, if any.
    pub(super) async fn flush_pending(&mut self) -> Result<(), AsyncClientError<N>> {
        match self.session.pending_len() {
            0 => Ok(()),
            len => self.send_now(self.timer.now_ms(), len, &[]).await,
        }
    }

    /// Sends like `send_buffered`, with the send timeout counted from `now`.
    pub(super) async fn send_now(
        &mut self,
        now: u64,
        len: usize,
        tail: &[u8],
    ) -> Result<(), AsyncClientError<N>> {
        let send_timeout = self.session.options().send_timeout_ms;
        let deadline = now.saturating_add(u64::from(send_timeout));
        self.send_buffered(now, len, tail, deadline).await
    }

    /// Sends the first `len` bytes of the transmit buffer (batched messages
    /// included), then `tail`, whole, before `deadline`, and flushes the
    /// connection when [`Client::set_flush_after_send`] says so. Anything
    /// less leaves the broker with half a packet, so the connection is then
    /// lost, and the batched messages with it.
    pub(super) async fn send_buffered(
        &mut self,
        now: u64,
        len: usize,
        tail: &[u8],
        deadline: u64,
    ) -> Result<(), AsyncClientError<N>> {
        let connection = self.connection.as_mut().ok_or(Error::NotConnected)?;
        let head = self.session.tx(len);
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
        if let Err(e) = written {
            self.session.send_failed();
            return Err(e);
        }
        self.session.sent(now);
        Ok(())
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
