//! [`RustlsStack`]: a `TcpClientStack` that speaks TLS 1.2/1.3 (rustls) over
//! another one.

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use std::io::{self, Read, Write};
use std::sync::Arc;

use ::rustls::pki_types::ServerName;
use ::rustls::{ClientConfig, ClientConnection};
use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind};

use super::error::{Context, classify, named};
use super::{ConfigError, RustlsError, RustlsOptions};
use crate::{Clock, Wait};

/// A socket of a [`RustlsStack`]: the inner stack's socket and, once
/// connected, its TLS session. `E` is the inner stack's error (one that a
/// wait met is kept here for the next `receive`).
pub struct RustlsSocket<T, E> {
    inner: Option<T>,
    conn: Option<ClientConnection>,
    pending: Option<RustlsError<E>>,
    /// Whether any plaintext arrived in this session.
    received: bool,
}

impl<T: fmt::Debug, E: fmt::Debug> fmt::Debug for RustlsSocket<T, E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsSocket")
            .field("inner", &self.inner)
            .field("connected", &self.conn.is_some())
            .field("pending", &self.pending)
            .finish()
    }
}

impl<T, E> RustlsSocket<T, E> {
    /// Whether the TLS session is open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    /// The TLS version negotiated (`"TLSv1_2"`, `"TLSv1_3"`), once connected.
    pub fn protocol_version(&self) -> Option<::rustls::ProtocolVersion> {
        self.conn.as_ref().and_then(|c| c.protocol_version())
    }

    /// The ALPN protocol the server chose, once connected.
    pub fn alpn_protocol(&self) -> Option<&[u8]> {
        self.conn.as_ref().and_then(|c| c.alpn_protocol())
    }

    /// The cipher suite negotiated, once connected.
    pub fn cipher_suite(&self) -> Option<::rustls::SupportedCipherSuite> {
        self.conn.as_ref().and_then(|c| c.negotiated_cipher_suite())
    }

    /// The inner socket (e.g. a `StdSocket`'s addresses).
    pub fn inner(&self) -> Option<&T> {
        self.inner.as_ref()
    }
}

/// A [`TcpClientStack`] (and [`Dns`] when the inner stack is one) that speaks
/// TLS 1.2 and 1.3 with rustls over the stack `S` (see the
/// [module docs](crate::rustls)).
///
/// `C` is the clock for the handshake and write deadlines; `W` the inner
/// stack's waiter (give the one the client would use without TLS: `StdWait`
/// sleeps in the kernel). Wait on the client with [`RustlsWait`](super::RustlsWait).
pub struct RustlsStack<S, C, W> {
    inner: S,
    waiter: W,
    clock: C,
    config: Arc<ClientConfig>,
    server_name: ServerName<'static>,
    cx: Context,
    insecure: bool,
    handshake_timeout_ms: u32,
    io_timeout_ms: u32,
}

impl<S: fmt::Debug, C, W> fmt::Debug for RustlsStack<S, C, W> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RustlsStack")
            .field("inner", &self.inner)
            .field("server_name", &self.server_name)
            .field("versions", &self.cx.versions)
            .field("insecure", &self.insecure)
            .finish()
    }
}

/// The inner stack seen as `std::io::Read + Write` for rustls: `WouldBlock`
/// stays `WouldBlock`; the inner stack's own error is kept in `error`.
struct NalIo<'a, S: TcpClientStack> {
    stack: &'a mut S,
    socket: &'a mut S::TcpSocket,
    error: Option<S::Error>,
}

impl<S: TcpClientStack> NalIo<'_, S> {
    fn keep(&mut self, e: nb::Error<S::Error>) -> io::Error {
        match e {
            nb::Error::WouldBlock => io::ErrorKind::WouldBlock.into(),
            nb::Error::Other(e) => {
                self.error = Some(e);
                io::Error::other("the inner stack failed")
            }
        }
    }
}

impl<S: TcpClientStack> Read for NalIo<'_, S> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stack
            .receive(self.socket, buf)
            .map_err(|e| self.keep(e))
    }
}

impl<S: TcpClientStack> Write for NalIo<'_, S> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.stack.send(self.socket, buf).map_err(|e| self.keep(e))
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl<S, C, W> RustlsStack<S, C, W>
where
    S: TcpClientStack,
    C: Clock,
    W: Wait<S>,
{
    /// A TLS stack over `stack`, waiting with `waiter`, timing with `clock`,
    /// connecting as `options` say. Reads the CAs (the system store, for
    /// [`RustlsOptions::system_roots`]) and the client key now: an error here
    /// says what is wrong with them.
    pub fn new(
        stack: S,
        waiter: W,
        clock: C,
        options: &RustlsOptions,
    ) -> Result<Self, ConfigError> {
        let (config, server_name) = options.build()?;
        Ok(RustlsStack {
            inner: stack,
            waiter,
            clock,
            config,
            server_name,
            cx: Context {
                handshaking: false,
                client_certificate: options.has_client_certificate(),
                versions: options.tls_versions(),
            },
            insecure: options.insecure(),
            handshake_timeout_ms: options.handshake_timeout(),
            io_timeout_ms: options.io_timeout(),
        })
    }

    /// The inner stack.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The inner stack, mutably (e.g. to set its timeouts).
    pub fn inner_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The rustls configuration (shared by every connection).
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// Waits at most `timeout_ms` for data on `socket`: returns at once if
    /// decrypted data is buffered or something arrived, else waits with the
    /// inner waiter. An error ends the session; the next `receive` reports
    /// it. With no session, idles for the timeout.
    pub fn wait_readable(
        &mut self,
        socket: &mut RustlsSocket<S::TcpSocket, S::Error>,
        timeout_ms: u32,
    ) {
        if socket.pending.is_some() {
            return;
        }
        let RustlsSocket {
            inner: Some(inner),
            conn: Some(conn),
            ..
        } = socket
        else {
            self.waiter.idle(&mut self.inner, timeout_ms);
            return;
        };
        let progress = match conn.process_new_packets() {
            Ok(state) if state.plaintext_bytes_to_read() > 0 || state.peer_has_closed() => {
                return;
            }
            Ok(_) => self.pump(conn, inner),
            Err(e) => Err(self.classify(e, false)),
        };
        match progress {
            Ok(true) => {}
            Ok(false) => self
                .waiter
                .wait_readable(&mut self.inner, inner, timeout_ms),
            Err(e) => {
                log::debug!("TLS: wait ended the connection: {e:?}");
                socket.pending = Some(e);
                self.end(socket);
            }
        }
    }

    /// Waits `timeout_ms` with no socket: the inner waiter idles.
    pub fn idle(&mut self, timeout_ms: u32) {
        self.waiter.idle(&mut self.inner, timeout_ms);
    }

    fn classify(&self, e: ::rustls::Error, handshaking: bool) -> RustlsError<S::Error> {
        let cx = Context {
            handshaking,
            ..self.cx
        };
        named(classify(e, cx), &self.server_name)
    }

    /// The inner stack's failure during a session or handshake.
    fn network(
        &self,
        error: Option<S::Error>,
        e: &io::Error,
        handshaking: bool,
    ) -> RustlsError<S::Error> {
        match error {
            Some(e) if handshaking && e.kind() == TcpErrorKind::PipeClosed => {
                RustlsError::ClosedDuringHandshake
            }
            Some(e) => RustlsError::Network(e),
            // rustls's own refusal to read (its buffers are full): cannot
            // happen as this stack drains the plaintext before reading.
            None => RustlsError::Tls(::rustls::Error::General(std::format!("{e}"))),
        }
    }

    /// Reads what the inner stack has into the session and processes it
    /// (answering what needs an answer): `Ok(true)` if bytes arrived,
    /// `Ok(false)` if none had.
    fn pump(
        &mut self,
        conn: &mut ClientConnection,
        inner: &mut S::TcpSocket,
    ) -> Result<bool, RustlsError<S::Error>> {
        let handshaking = conn.is_handshaking();
        let mut io = NalIo::<S> {
            stack: &mut self.inner,
            socket: inner,
            error: None,
        };
        match conn.read_tls(&mut io) {
            Ok(0) => Err(if handshaking {
                RustlsError::ClosedDuringHandshake
            } else {
                RustlsError::Closed
            }),
            Ok(_) => {
                if let Err(e) = conn.process_new_packets() {
                    // The alert rustls queued, if the stack takes it now.
                    self.try_write(conn, inner);
                    return Err(self.classify(e, handshaking));
                }
                if conn.wants_write() {
                    let deadline = self.deadline(self.io_timeout_ms);
                    self.flush(conn, inner, deadline)?;
                }
                Ok(true)
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(false),
            Err(e) => {
                let error = io.error.take();
                Err(self.network(error, &e, handshaking))
            }
        }
    }

    fn deadline(&self, ms: u32) -> u64 {
        self.clock.now_ms().saturating_add(u64::from(ms))
    }

    /// Hands every record the session has to the inner stack by `deadline`.
    fn flush(
        &mut self,
        conn: &mut ClientConnection,
        inner: &mut S::TcpSocket,
        deadline: u64,
    ) -> Result<(), RustlsError<S::Error>> {
        while conn.wants_write() {
            let handshaking = conn.is_handshaking();
            let mut io = NalIo::<S> {
                stack: &mut self.inner,
                socket: inner,
                error: None,
            };
            match conn.write_tls(&mut io) {
                Ok(n) if n > 0 => continue,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    let error = io.error.take();
                    return Err(self.network(error, &e, handshaking));
                }
            }
            if self.clock.now_ms() >= deadline {
                return Err(if handshaking {
                    RustlsError::HandshakeTimedOut
                } else {
                    RustlsError::TimedOut
                });
            }
            // The inner stack took nothing (the std stack has already
            // waited its write timeout in the kernel): try again shortly.
            self.waiter.idle(&mut self.inner, 1);
        }
        Ok(())
    }

    /// Writes what the inner stack takes now (an alert before closing).
    fn try_write(&mut self, conn: &mut ClientConnection, inner: &mut S::TcpSocket) {
        while conn.wants_write() {
            let mut io = NalIo::<S> {
                stack: &mut self.inner,
                socket: inner,
                error: None,
            };
            match conn.write_tls(&mut io) {
                Ok(n) if n > 0 => {}
                _ => break,
            }
        }
    }

    /// TCP connect and the whole handshake, by `deadline`.
    fn open(
        &mut self,
        inner: &mut S::TcpSocket,
        remote: SocketAddr,
        deadline: u64,
    ) -> Result<ClientConnection, RustlsError<S::Error>> {
        loop {
            match self.inner.connect(inner, remote) {
                Ok(()) => break,
                Err(nb::Error::WouldBlock) if self.clock.now_ms() < deadline => {
                    self.waiter.idle(&mut self.inner, 1);
                }
                Err(nb::Error::WouldBlock) => return Err(RustlsError::HandshakeTimedOut),
                Err(nb::Error::Other(e)) => return Err(RustlsError::Tcp(e)),
            }
        }
        if self.insecure {
            log::warn!(
                "TLS to {remote}: the server's certificate is NOT verified (dangerously_skip_verification)"
            );
        }
        let mut conn = ClientConnection::new(Arc::clone(&self.config), self.server_name.clone())
            .map_err(|e| self.classify(e, true))?;
        while conn.is_handshaking() {
            if self.clock.now_ms() >= deadline {
                return Err(RustlsError::HandshakeTimedOut);
            }
            self.flush(&mut conn, inner, deadline)?;
            if !conn.is_handshaking() {
                break;
            }
            if !self.pump(&mut conn, inner)? {
                let left = deadline.saturating_sub(self.clock.now_ms());
                let left = u32::try_from(left).unwrap_or(u32::MAX);
                if left == 0 {
                    return Err(RustlsError::HandshakeTimedOut);
                }
                self.waiter.wait_readable(&mut self.inner, inner, left);
            }
        }
        // The client's Finished (and certificate, for mutual TLS).
        self.flush(&mut conn, inner, deadline)?;
        log::debug!(
            "TLS to {remote}: {:?}, {:?}, key exchange {:?}, ALPN {:?}",
            conn.protocol_version(),
            conn.negotiated_cipher_suite().map(|s| s.suite()),
            conn.negotiated_key_exchange_group().map(|g| g.name()),
            conn.alpn_protocol()
                .map(std::string::String::from_utf8_lossy)
        );
        Ok(conn)
    }

    /// Ends the session on `socket`: closes the inner socket.
    fn end(&mut self, socket: &mut RustlsSocket<S::TcpSocket, S::Error>) {
        socket.conn = None;
        if let Some(inner) = socket.inner.take() {
            let _ = self.inner.close(inner);
        }
    }

    /// The session and inner socket, or why not.
    fn parts(
        socket: &mut RustlsSocket<S::TcpSocket, S::Error>,
    ) -> Result<(&mut ClientConnection, &mut S::TcpSocket), RustlsError<S::Error>> {
        match socket {
            RustlsSocket {
                inner: Some(inner),
                conn: Some(conn),
                ..
            } => Ok((conn, inner)),
            _ => Err(RustlsError::NotConnected),
        }
    }
}

impl<S, C, W> TcpClientStack for RustlsStack<S, C, W>
where
    S: TcpClientStack,
    C: Clock,
    W: Wait<S>,
{
    type TcpSocket = RustlsSocket<S::TcpSocket, S::Error>;
    type Error = RustlsError<S::Error>;

    fn socket(&mut self) -> Result<Self::TcpSocket, Self::Error> {
        let inner = self.inner.socket().map_err(RustlsError::Tcp)?;
        Ok(RustlsSocket {
            inner: Some(inner),
            conn: None,
            pending: None,
            received: false,
        })
    }

    /// TCP connect and the whole handshake, blocking (waiting with the inner
    /// waiter, not spinning) for at most the handshake timeout; never
    /// returns `WouldBlock`. On failure the inner socket is closed.
    fn connect(
        &mut self,
        socket: &mut Self::TcpSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), Self::Error> {
        if socket.conn.is_some() {
            return Err(nb::Error::Other(RustlsError::AlreadyConnected));
        }
        let Some(inner) = socket.inner.as_mut() else {
            return Err(nb::Error::Other(RustlsError::NotConnected));
        };
        let deadline = self.deadline(self.handshake_timeout_ms);
        match self.open(inner, remote, deadline) {
            Ok(conn) => {
                socket.conn = Some(conn);
                socket.pending = None;
                socket.received = false;
                Ok(())
            }
            Err(e) => {
                log::debug!("TLS to {remote} failed: {e:?}");
                self.end(socket);
                Err(nb::Error::Other(e))
            }
        }
    }

    /// Encrypts what the session takes of `buffer` (up to its 64 KiB
    /// buffer) and hands every record to the inner stack within the I/O
    /// timeout; a write that does not complete ends the session.
    fn send(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &[u8],
    ) -> nb::Result<usize, Self::Error> {
        if let Some(e) = socket.pending.take() {
            return Err(nb::Error::Other(e));
        }
        let deadline = self.deadline(self.io_timeout_ms);
        let result = Self::parts(socket).and_then(|(conn, inner)| {
            if buffer.is_empty() {
                return Ok(0);
            }
            // Records still queued go first, so the buffer has room.
            self.flush(conn, inner, deadline)?;
            let n = conn
                .writer()
                .write(buffer)
                .map_err(|_| RustlsError::Closed)?;
            self.flush(conn, inner, deadline)?;
            Ok(n)
        });
        result.map_err(|e| {
            if !matches!(e, RustlsError::NotConnected) {
                self.end(socket);
            }
            nb::Error::Other(e)
        })
    }

    /// Decrypted bytes; `WouldBlock` when no whole record has arrived. A
    /// close_notify, or the connection closing, is [`RustlsError::Closed`].
    fn receive(
        &mut self,
        socket: &mut Self::TcpSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        if let Some(e) = socket.pending.take() {
            return Err(nb::Error::Other(e));
        }
        let received = socket.received;
        let result = Self::parts(socket).and_then(|(conn, inner)| {
            if buffer.is_empty() {
                return Ok(Some(0));
            }
            loop {
                match conn.reader().read(buffer) {
                    // close_notify, and nothing left.
                    Ok(0) if received => return Err(RustlsError::Closed),
                    Ok(0) => return Err(RustlsError::ClosedBeforeAnswer),
                    Ok(n) => return Ok(Some(n)),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return Err(RustlsError::Closed),
                }
                if !self.pump(conn, inner)? {
                    return Ok(None);
                }
            }
        });
        match result {
            Ok(Some(n)) => {
                socket.received |= n > 0;
                Ok(n)
            }
            Ok(None) => Err(nb::Error::WouldBlock),
            Err(e) => {
                if !matches!(e, RustlsError::NotConnected) {
                    self.end(socket);
                }
                Err(nb::Error::Other(e))
            }
        }
    }

    /// Sends close_notify (if the inner stack takes it at once) and closes
    /// the inner socket.
    fn close(&mut self, mut socket: Self::TcpSocket) -> Result<(), Self::Error> {
        if let RustlsSocket {
            inner: Some(inner),
            conn: Some(conn),
            ..
        } = &mut socket
        {
            conn.send_close_notify();
            self.try_write(conn, inner);
        }
        match socket.inner.take() {
            Some(inner) => self.inner.close(inner).map_err(RustlsError::Tcp),
            None => Ok(()),
        }
    }
}

impl<S, C, W> Dns for RustlsStack<S, C, W>
where
    S: TcpClientStack + Dns,
{
    type Error = <S as Dns>::Error;

    /// The inner stack's lookup.
    fn get_host_by_name(
        &mut self,
        hostname: &str,
        addr_type: AddrType,
    ) -> nb::Result<IpAddr, Self::Error> {
        self.inner.get_host_by_name(hostname, addr_type)
    }

    /// The inner stack's reverse lookup.
    fn get_host_by_address(
        &mut self,
        addr: IpAddr,
        result: &mut [u8],
    ) -> nb::Result<usize, Self::Error> {
        self.inner.get_host_by_address(addr, result)
    }
}
