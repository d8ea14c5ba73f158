//! [`TlsStack`]: a `TcpClientStack` that speaks TLS 1.3 over another one.

use core::net::SocketAddr;

use embedded_nal::{AddrType, Dns, TcpClientStack};
use embedded_tls::blocking::{TlsContext, TlsError};
use rand_core::CryptoRngCore;

use super::decide;
use super::lend::Leased;
use super::provider::Provider;
use crate::{Clock, Wait};

use super::*;

/// A socket of a [`TlsStack`].
#[derive(Debug)]
pub struct TlsSocket<T> {
    inner: Option<T>,
    id: u32,
}

/// The open connection.
struct Session<'a, S: TcpClientStack, C: Clock, W: Wait<S>> {
    id: u32,
    /// Whether any plaintext arrived yet.
    received: bool,
    leased: Leased<'a, NalIo<'a, S, C, W>, Suite>,
}

/// A [`TcpClientStack`] that speaks TLS 1.3 over the stack `S` (see the
/// [module docs](crate::tls)).
///
/// - `C`: the clock for deadlines (cloned into the connection's transport:
///   `Clone`, and a `&clock` is a clock too); `W`: the inner stack's waiter, used
///   while a record is on its way (give the same one the client would use
///   without TLS); `R`: the random generator; `T`: the wall clock for
///   certificate dates ([`NoTime`] unless [`TlsStack::with_time`]);
///   `CERT_SIZE`: bytes for the copy of the server's certificate chain kept
///   during the handshake.
pub struct TlsStack<'a, S, C, W, R, T = NoTime, const CERT_SIZE: usize = DEFAULT_CERT_SIZE>
where
    S: TcpClientStack,
    C: Clock,
    W: Wait<S>,
{
    /// The inner stack and waiter while no connection holds them.
    parts: Option<(S, W)>,
    session: Option<Session<'a, S, C, W>>,
    clock: C,
    rng: R,
    time: T,
    buffers: &'a TlsBuffers<'a>,
    options: TlsOptions<'a>,
    next_id: u32,
    /// An error [`TlsStack::wait_readable`] met; the next `receive` reports it.
    pending_error: Option<TlsStackError<S::Error>>,
}

impl<'a, S, C, W, R> TlsStack<'a, S, C, W, R>
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
{
    /// A TLS stack over `stack`, waiting with `waiter`, timing with `clock`,
    /// drawing randomness from `rng`, lending `buffers` to its connection.
    pub fn new(
        stack: S,
        waiter: W,
        clock: C,
        rng: R,
        buffers: &'a TlsBuffers<'a>,
        options: TlsOptions<'a>,
    ) -> Self {
        TlsStack {
            parts: Some((stack, waiter)),
            session: None,
            clock,
            rng,
            time: NoTime,
            buffers,
            options,
            next_id: 1,
            pending_error: None,
        }
    }
}

impl<'a, S, C, W, R, T, const CERT_SIZE: usize> TlsStack<'a, S, C, W, R, T, CERT_SIZE>
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    /// Checks certificate validity dates against `time` (e.g. an RTC, or
    /// [`SystemTime`] on std).
    pub fn with_time<T2: TlsTime>(self, time: T2) -> TlsStack<'a, S, C, W, R, T2, CERT_SIZE> {
        TlsStack {
            parts: self.parts,
            session: self.session,
            clock: self.clock,
            rng: self.rng,
            time,
            buffers: self.buffers,
            options: self.options,
            next_id: self.next_id,
            pending_error: self.pending_error,
        }
    }

    /// The same stack keeping up to `N` bytes of the server's certificate
    /// chain during the handshake (default [`DEFAULT_CERT_SIZE`]).
    pub fn with_cert_size<const N: usize>(self) -> TlsStack<'a, S, C, W, R, T, N> {
        TlsStack {
            parts: self.parts,
            session: self.session,
            clock: self.clock,
            rng: self.rng,
            time: self.time,
            buffers: self.buffers,
            options: self.options,
            next_id: self.next_id,
            pending_error: self.pending_error,
        }
    }

    /// The options.
    pub fn options(&self) -> &TlsOptions<'a> {
        &self.options
    }

    /// Replaces the options (the next connect uses them).
    pub fn set_options(&mut self, options: TlsOptions<'a>) {
        self.options = options;
    }

    /// Whether a TLS connection is open.
    pub fn is_connected(&self) -> bool {
        self.session.is_some()
    }

    /// Waits at most `timeout_ms` for decrypted data on `socket`: returns at
    /// once if some is buffered, else waits (with the inner waiter) for a
    /// record and decrypts it, keeping the plaintext for `receive`. An error
    /// ends the connection; the next `receive` reports it. With no connection,
    /// idles for the timeout.
    pub fn wait_readable(&mut self, socket: &mut TlsSocket<S::TcpSocket>, timeout_ms: u32) {
        let now = self.clock.now_ms();
        let io_timeout = u64::from(self.options.io_timeout_ms);
        let Some(session) = self.session.as_mut().filter(|s| s.id == socket.id) else {
            self.idle(timeout_ms);
            return;
        };
        let io = self.buffers.io();
        let until = now.saturating_add(u64::from(timeout_ms));
        io.set_record_start_deadline(Some(until));
        io.set_deadline(until.max(now.saturating_add(io_timeout)));
        io.clear_outcome();
        let waited = session
            .leased
            .conn()
            .and_then(|conn| conn.read_buffered().map(|p| p.revert()));
        let first = !session.received;
        match waited {
            Ok(()) => session.received = true,
            Err(_) if io.outcome() == IoOutcome::NotReady => {}
            Err(e) => {
                let error = self.read_error(e, first);
                log::debug!("TLS: wait ended the connection: {error:?}");
                self.pending_error = Some(error);
                self.end_session();
            }
        }
    }

    /// Waits `timeout_ms` with no socket: the inner waiter idles, or, while a
    /// connection holds the inner stack, waits for its data instead (and may
    /// return early).
    pub fn idle(&mut self, timeout_ms: u32) {
        if let Some((stack, waiter)) = self.parts.as_mut() {
            waiter.idle(stack, timeout_ms);
        } else if let Some(id) = self.session.as_ref().map(|s| s.id) {
            let mut socket = TlsSocket { inner: None, id };
            self.wait_readable(&mut socket, timeout_ms);
        }
    }
}

impl<'a, S, C, W, R, T, const CERT_SIZE: usize> TlsStack<'a, S, C, W, R, T, CERT_SIZE>
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    /// Closes the connection (close_notify if the stack takes it at once),
    /// returns the buffers and takes the inner stack back.
    fn end_session(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let io = self.buffers.io();
        // close_notify is a courtesy: one attempt, no waiting.
        io.set_deadline(0);
        io.set_record_start_deadline(Some(0));
        let Some(transport) = session.leased.close() else {
            // Unreachable: only `close` and the lease's drop take the
            // connection, and both consume the lease.
            log::error!("TLS: the connection was already gone at close");
            return;
        };
        let (mut stack, socket, _, waiter) = transport.into_parts();
        if let Err(e) = stack.close(socket) {
            log::debug!("TLS: closing the TCP socket failed: {e:?}");
        }
        self.parts = Some((stack, waiter));
    }

    /// What a failed read or write of the open session means; `first`: no
    /// plaintext had arrived yet.
    fn read_error(&self, e: TlsError, first: bool) -> TlsStackError<S::Error> {
        decide::read_error(
            e,
            first,
            self.buffers.io().outcome(),
            self.buffers.read_len(),
            self.options.client.is_some(),
        )
    }

    /// The session of `socket`, or why there is none.
    fn session_of(
        &mut self,
        socket: &TlsSocket<S::TcpSocket>,
    ) -> Result<&mut Session<'a, S, C, W>, TlsStackError<S::Error>> {
        if let Some(e) = self.pending_error.take() {
            return Err(e);
        }
        self.session
            .as_mut()
            .filter(|s| s.id == socket.id)
            .ok_or(TlsStackError::NotConnected)
    }

    /// The TLS handshake over the connected `inner` socket.
    fn handshake(
        &mut self,
        stack: S,
        waiter: W,
        inner: S::TcpSocket,
        id: u32,
    ) -> Result<(), TlsStackError<S::Error>> {
        let options = self.options.clone();
        let io = self.buffers.io();
        let now = self.clock.now_ms();
        io.set_deadline(now.saturating_add(u64::from(options.handshake_timeout_ms)));
        io.set_record_start_deadline(None);
        io.clear_outcome();
        let transport = NalIo::new(stack, inner, self.clock.clone(), waiter, io);
        let mut leased = match Leased::lend(self.buffers, transport) {
            Ok(leased) => leased,
            Err((transport, StillLent)) => {
                let (mut stack, socket, _, waiter) = transport.into_parts();
                let _ = stack.close(socket);
                self.parts = Some((stack, waiter));
                log::error!("TLS: {StillLent}");
                return Err(TlsStackError::BuffersStillLent);
            }
        };
        let result = self.open(&mut leased, &options);
        match result {
            Ok(()) => {
                log::info!("TLS: connected to {}", options.server_name);
                self.session = Some(Session {
                    id,
                    received: false,
                    leased,
                });
                Ok(())
            }
            Err(e) => {
                self.session = Some(Session {
                    id,
                    received: false,
                    leased,
                });
                self.end_session();
                log::warn!("TLS: {e}");
                Err(e)
            }
        }
    }

    fn open(
        &mut self,
        leased: &mut Leased<'a, NalIo<'a, S, C, W>, Suite>,
        options: &TlsOptions<'a>,
    ) -> Result<(), TlsStackError<S::Error>> {
        let key = decide::client_key(options)?;
        let config = decide::config(options);
        let mut verifier = decide::verifier::<&T, CERT_SIZE, _>(options, &self.time)?;
        let mut provider = Provider {
            rng: &mut self.rng,
            verifier: verifier.as_mut(),
            cert: options.client.map(|(cert, _)| cert),
            key,
        };
        let result = leased
            .conn()
            .and_then(|conn| conn.open(TlsContext::new(&config, &mut provider)));
        match result {
            Ok(()) => decide::opened(verifier.as_mut()),
            Err(e) => Err(decide::handshake_failed(
                e,
                verifier.as_mut(),
                self.buffers.io(),
                self.buffers.read_len(),
            )),
        }
    }
}

impl<'a, S, C, W, R, T, const CERT_SIZE: usize> TcpClientStack
    for TlsStack<'a, S, C, W, R, T, CERT_SIZE>
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    type TcpSocket = TlsSocket<S::TcpSocket>;
    type Error = TlsStackError<S::Error>;

    /// A new socket; never fails (the inner socket is made by `connect`).
    fn socket(&mut self) -> Result<Self::TcpSocket, Self::Error> {
        let id = self.next_id;
        self.next_id = self.next_id.wrapping_add(1).max(1);
        Ok(TlsSocket { inner: None, id })
    }

    /// Connects over the inner stack (passing its `WouldBlock` on), then runs
    /// the whole TLS handshake, bounded by the handshake timeout.
    fn connect(
        &mut self,
        socket: &mut Self::TcpSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), Self::Error> {
        if let Some(session) = &self.session {
            return Err(nb::Error::Other(if session.id == socket.id {
                TlsStackError::AlreadyConnected
            } else {
                TlsStackError::Busy
            }));
        }
        self.pending_error = None;
        let Some((mut stack, waiter)) = self.parts.take() else {
            return Err(nb::Error::Other(TlsStackError::Busy));
        };
        let mut inner = match socket.inner.take() {
            Some(inner) => inner,
            None => match stack.socket() {
                Ok(inner) => inner,
                Err(e) => {
                    self.parts = Some((stack, waiter));
                    return Err(nb::Error::Other(TlsStackError::Tcp(e)));
                }
            },
        };
        match stack.connect(&mut inner, remote) {
            Ok(()) => {}
            Err(nb::Error::WouldBlock) => {
                socket.inner = Some(inner);
                self.parts = Some((stack, waiter));
                return Err(nb::Error::WouldBlock);
            }
            Err(nb::Error::Other(e)) => {
                let _ = stack.close(inner);
                self.parts = Some((stack, waiter));
                return Err(nb::Error::Other(TlsStackError::Tcp(e)));
            }
        }
        self.handshake(stack, waiter, inner, socket.id)
            .map_err(nb::Error::Other)
    }

    /// Encrypts `buffer` (as much as one record takes), writes and flushes
    /// it within the I/O timeout.
    fn send(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &[u8],
    ) -> nb::Result<usize, Self::Error> {
        if buffer.is_empty() {
            return Ok(0);
        }
        let deadline = self
            .clock
            .now_ms()
            .saturating_add(u64::from(self.options.io_timeout_ms));
        let io = self.buffers.io();
        let session = self.session_of(socket).map_err(nb::Error::Other)?;
        io.set_deadline(deadline);
        io.clear_outcome();
        let first = !session.received;
        let sent = session
            .leased
            .conn()
            .and_then(|conn| conn.write(buffer).and_then(|n| conn.flush().map(|()| n)));
        match sent {
            Ok(n) => Ok(n),
            Err(e) => {
                let error = self.read_error(e, first);
                self.end_session();
                Err(nb::Error::Other(error))
            }
        }
    }

    /// Hands over decrypted data; `WouldBlock` when none is buffered and no
    /// record has started arriving (never waits for one to start).
    fn receive(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        let now = self.clock.now_ms();
        let io_timeout = u64::from(self.options.io_timeout_ms);
        let io = self.buffers.io();
        let session = self.session_of(socket).map_err(nb::Error::Other)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        io.set_deadline(now.saturating_add(io_timeout));
        io.set_record_start_deadline(Some(now));
        io.clear_outcome();
        match session.leased.conn().and_then(|conn| conn.read(buffer)) {
            Ok(n) => {
                session.received = true;
                Ok(n)
            }
            Err(_) if io.outcome() == IoOutcome::NotReady => Err(nb::Error::WouldBlock),
            Err(e) => {
                let first = !session.received;
                let error = self.read_error(e, first);
                log::debug!("TLS: receive ended the connection: {error:?}");
                self.end_session();
                Err(nb::Error::Other(error))
            }
        }
    }

    /// Sends close_notify (one attempt), closes the inner socket and returns
    /// the buffers. Never fails.
    fn close(&mut self, socket: Self::TcpSocket) -> Result<(), Self::Error> {
        if self.session.as_ref().is_some_and(|s| s.id == socket.id) {
            self.end_session();
        } else if let (Some(inner), Some((stack, _))) = (socket.inner, self.parts.as_mut()) {
            let _ = stack.close(inner);
        }
        Ok(())
    }
}

/// Host names through the inner stack's DNS, while no connection is open
/// (the connection holds the inner stack); the clients look up before they
/// connect.
impl<S, C, W, R, T, const CERT_SIZE: usize> Dns for TlsStack<'_, S, C, W, R, T, CERT_SIZE>
where
    S: TcpClientStack + Dns,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    type Error = TlsDnsError<<S as Dns>::Error>;

    fn get_host_by_name(
        &mut self,
        hostname: &str,
        addr_type: AddrType,
    ) -> nb::Result<core::net::IpAddr, Self::Error> {
        let (stack, _) = self
            .parts
            .as_mut()
            .ok_or(nb::Error::Other(TlsDnsError::Busy))?;
        stack
            .get_host_by_name(hostname, addr_type)
            .map_err(|e| e.map(TlsDnsError::Dns))
    }

    fn get_host_by_address(
        &mut self,
        addr: core::net::IpAddr,
        result: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        let (stack, _) = self
            .parts
            .as_mut()
            .ok_or(nb::Error::Other(TlsDnsError::Busy))?;
        stack
            .get_host_by_address(addr, result)
            .map_err(|e| e.map(TlsDnsError::Dns))
    }
}
