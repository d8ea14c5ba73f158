//! [`TlsConnect`]: an embedded-nal-async `TcpConnect` that speaks TLS 1.3
//! over another one; its connections are [`TlsStream`]s.

use core::cell::RefCell;
use core::net::SocketAddr;

use embedded_io_async::{ErrorType, Read, Write};
use embedded_nal_async::TcpConnect;
use embedded_tls::TlsContext;
use rand_core::CryptoRngCore;

use super::async_io::AsyncIo;
use super::decide;
use super::lend::AsyncLeased;
use super::provider::Provider;
use super::*;

/// An [`embedded_nal_async::TcpConnect`] that speaks TLS 1.3 over the
/// `TcpConnect` `N` (embassy-net's `TcpClient`, say): each `connect` opens a
/// TCP connection through `N`, runs the TLS handshake over it and returns
/// the session as a [`TlsStream`] (embedded-io-async `Read` + `Write`). So
/// `umqtt_simple::asynch::Client` and umqtt-robust's async client run over
/// TLS unchanged: give them a `&TlsConnect` where they took the plain stack.
///
/// The decisions are those of the blocking [`TlsStack`]: the same
/// [`TlsOptions`], verifier (the chain checks, then a Certificate that
/// passed and a CertificateVerify over it, in that order, before the
/// server's Finished), client certificate only to an authenticated server,
/// and errors ([`TlsStackError`], [`HandshakeError`], [`CertError`]); see
/// the [module docs](crate::tls). What differs is time: the async client
/// bounds each call with its own [`Timer`](crate::Timer) (its connect
/// deadline spans the TCP connect, this handshake and the CONNACK), so the
/// options' handshake and I/O timeouts are not used here. A read cut by a
/// deadline in the middle of a record is resumed by the next one (see
/// `async_io.rs`); a write cut half-way ends the session
/// ([`TlsStackError::WriteCut`]).
///
/// - `'b`: the inner stack, the [`TlsBuffers`] and the options are
///   borrowed for it;
/// - `R`: the random generator (the device's TRNG; `rand_core::OsRng` on
///   std), behind a `RefCell` because `connect` takes `&self`;
/// - `T`: the wall clock for certificate dates ([`NoTime`] unless
///   [`TlsConnect::with_time`]); `CERT_SIZE` as for [`TlsStack`].
///
/// One connection at a time: the buffers are lent to it, and come back when
/// it is dropped (or [`TlsStream::close`]d). A second `connect` while one
/// is open fails with [`TlsStackError::BuffersStillLent`]; the clients drop
/// their connection before they open the next.
pub struct TlsConnect<'b, N, R, T = NoTime, const CERT_SIZE: usize = DEFAULT_CERT_SIZE> {
    net: &'b N,
    rng: RefCell<R>,
    time: T,
    buffers: &'b TlsBuffers<'b>,
    options: TlsOptions<'b>,
}

impl<'b, N, R> TlsConnect<'b, N, R>
where
    N: TcpConnect,
    R: CryptoRngCore,
{
    /// TLS over `net`, drawing randomness from `rng`, lending `buffers` to
    /// its connection.
    pub fn new(net: &'b N, rng: R, buffers: &'b TlsBuffers<'b>, options: TlsOptions<'b>) -> Self {
        TlsConnect {
            net,
            rng: RefCell::new(rng),
            time: NoTime,
            buffers,
            options,
        }
    }
}

impl<'b, N, R, T, const CERT_SIZE: usize> TlsConnect<'b, N, R, T, CERT_SIZE>
where
    N: TcpConnect,
    R: CryptoRngCore,
    T: TlsTime,
{
    /// Checks certificate validity dates against `time` (e.g. an RTC, or
    /// [`SystemTime`] on std).
    pub fn with_time<T2: TlsTime>(self, time: T2) -> TlsConnect<'b, N, R, T2, CERT_SIZE> {
        TlsConnect {
            net: self.net,
            rng: self.rng,
            time,
            buffers: self.buffers,
            options: self.options,
        }
    }

    /// The same, keeping up to `M` bytes of the server's certificate chain
    /// during the handshake (default [`DEFAULT_CERT_SIZE`]).
    pub fn with_cert_size<const M: usize>(self) -> TlsConnect<'b, N, R, T, M> {
        TlsConnect {
            net: self.net,
            rng: self.rng,
            time: self.time,
            buffers: self.buffers,
            options: self.options,
        }
    }

    /// The options.
    pub fn options(&self) -> &TlsOptions<'b> {
        &self.options
    }

    /// Replaces the options (the next connect uses them).
    pub fn set_options(&mut self, options: TlsOptions<'b>) {
        self.options = options;
    }

    /// Whether a connection holds the buffers now.
    pub fn is_connected(&self) -> bool {
        self.buffers.is_lent()
    }

    /// The handshake over the connected `inner`.
    // The generator stays borrowed for the handshake, across its awaits, on
    // purpose: `try_borrow_mut` never panics, and a second connect running
    // at the same time (which the lent buffers refuse anyway) gets `Busy`.
    // Dropped half-way, the future releases the borrow with everything else.
    #[allow(clippy::await_holding_refcell_ref)]
    async fn handshake<C: Read + Write + 'b>(
        &self,
        inner: C,
    ) -> Result<TlsStream<'b, C>, TlsStackError<C::Error>> {
        let options = &self.options;
        let key = decide::client_key(options)?;
        let config = decide::config(options);
        let mut verifier = decide::verifier::<&T, CERT_SIZE, _>(options, &self.time)?;
        let mut rng = self.rng.try_borrow_mut().map_err(|_| TlsStackError::Busy)?;
        let io = self.buffers.io();
        io.reset();
        let mut leased = AsyncLeased::lend(self.buffers, AsyncIo::new(inner, io)).map_err(
            |(_, still_lent)| {
                log::error!("TLS: {still_lent}");
                TlsStackError::BuffersStillLent
            },
        )?;
        let mut provider = Provider {
            rng: &mut *rng,
            verifier: verifier.as_mut(),
            cert: options.client.map(|(cert, _)| cert),
            key,
        };
        let result = match leased.conn() {
            Ok(conn) => conn.open(TlsContext::new(&config, &mut provider)).await,
            Err(e) => Err(e),
        };
        let verdict = match result {
            Ok(()) => decide::opened(verifier.as_mut()),
            Err(e) => Err(decide::handshake_failed(
                e,
                verifier.as_mut(),
                io,
                self.buffers.read_len(),
            )),
        };
        match verdict {
            Ok(()) => {
                log::info!("TLS: connected to {}", options.server_name);
                Ok(TlsStream {
                    leased,
                    home: self.buffers,
                    client_certificate: options.client.is_some(),
                    received: false,
                    reading: false,
                    dead: false,
                })
            }
            Err(e) => {
                log::warn!("TLS: {e}");
                // Dropping the lease returns the buffers.
                Err(e)
            }
        }
    }
}

impl<'b, N, R, T, const CERT_SIZE: usize> TcpConnect for TlsConnect<'b, N, R, T, CERT_SIZE>
where
    N: TcpConnect,
    R: CryptoRngCore,
    T: TlsTime,
{
    type Error = TlsStackError<N::Error>;
    type Connection<'a>
        = TlsStream<'b, N::Connection<'b>>
    where
        Self: 'a;

    /// Connects through the inner stack, then runs the whole TLS handshake.
    /// Dropped before it ends (the caller's deadline), it closes the TCP
    /// connection and the buffers come back.
    async fn connect<'a>(
        &'a self,
        remote: SocketAddr,
    ) -> Result<TlsStream<'b, N::Connection<'b>>, Self::Error> {
        if self.buffers.is_lent() {
            log::error!("TLS: {StillLent}");
            return Err(TlsStackError::BuffersStillLent);
        }
        // The connection borrows the inner stack for 'b, not for this call:
        // it lives in the buffers' lifetime.
        let net: &'b N = self.net;
        let inner = net.connect(remote).await.map_err(TlsStackError::Tcp)?;
        self.handshake(inner).await
    }
}

/// One TLS session of a [`TlsConnect`]: embedded-io-async `Read` + `Write`
/// of plaintext. Dropping it closes the TCP connection (without
/// close_notify) and returns the buffers; [`TlsStream::close`] sends
/// close_notify first.
///
/// `write` keeps plaintext in the record buffer until it is full or
/// `flush` is called, as embedded-tls does: the async client flushes after
/// every packet unless told otherwise (`set_flush_after_send(false)`, which
/// a TLS connection must not be given).
pub struct TlsStream<'b, C: Read + Write + 'b> {
    leased: AsyncLeased<'b, AsyncIo<'b, C>, Suite>,
    home: &'b TlsBuffers<'b>,
    client_certificate: bool,
    /// Whether any plaintext arrived yet.
    received: bool,
    /// A read is under way (still set when its future was dropped).
    reading: bool,
    /// An error ended the session.
    dead: bool,
}

impl<'b, C: Read + Write + 'b> TlsStream<'b, C> {
    /// Sends close_notify, then gives the buffers back (also when dropped
    /// before it ends).
    pub async fn close(self) {
        let _ = self.leased.close().await;
    }

    /// Checks the session can go on, after an operation whose future was
    /// dropped: a read is resumed, a cut write ends the session.
    fn resume(&mut self) -> Result<(), TlsStackError<C::Error>> {
        if self.dead {
            return Err(TlsStackError::NotConnected);
        }
        let io = self.home.io();
        if io.writing() {
            self.dead = true;
            log::warn!("TLS: a write was cut off in the middle of a record; the session is lost");
            return Err(TlsStackError::WriteCut);
        }
        if core::mem::take(&mut self.reading) {
            io.request_rewind();
        }
        self.home.io().clear_outcome();
        Ok(())
    }

    /// What a failed operation means; the session is over.
    fn failed(&mut self, e: embedded_tls::TlsError) -> TlsStackError<C::Error> {
        self.dead = true;
        let error = decide::read_error(
            e,
            !self.received,
            self.home.io().outcome(),
            self.home.read_len(),
            self.client_certificate,
        );
        log::debug!("TLS: the session ended: {error:?}");
        error
    }
}

impl<'b, C: Read + Write + 'b> ErrorType for TlsStream<'b, C> {
    type Error = TlsStackError<C::Error>;
}

impl<'b, C: Read + Write + 'b> Read for TlsStream<'b, C> {
    /// Decrypted data: what is buffered, else the next record's. Cancel-safe:
    /// dropped in the middle of a record, the next read goes on with it.
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, Self::Error> {
        self.resume()?;
        if buf.is_empty() {
            return Ok(0);
        }
        self.reading = true;
        let result = match self.leased.conn() {
            Ok(conn) => conn.read(buf).await,
            Err(e) => Err(e),
        };
        self.reading = false;
        match result {
            Ok(n) => {
                self.received = true;
                Ok(n)
            }
            Err(e) => Err(self.failed(e)),
        }
    }
}

impl<'b, C: Read + Write + 'b> Write for TlsStream<'b, C> {
    /// Encrypts `buf` into the record buffer (writing full records out).
    async fn write(&mut self, buf: &[u8]) -> Result<usize, Self::Error> {
        self.resume()?;
        let result = match self.leased.conn() {
            Ok(conn) => conn.write(buf).await,
            Err(e) => Err(e),
        };
        result.map_err(|e| self.failed(e))
    }

    /// Writes out the buffered record and flushes the inner connection.
    async fn flush(&mut self) -> Result<(), Self::Error> {
        self.resume()?;
        let result = match self.leased.conn() {
            Ok(conn) => conn.flush().await,
            Err(e) => Err(e),
        };
        result.map_err(|e| self.failed(e))
    }
}
