//! TLS 1.3 over any [`TcpClientStack`] (feature `tls`): [`TlsStack`].
//!
//! [`TlsStack`] is itself a [`TcpClientStack`] that wraps another one (the std
//! stack, smoltcp, a modem's stack) with [embedded-tls], so umqtt-simple's
//! `Client` and umqtt-robust use TLS unchanged. `#![no_std]`, no heap (unless
//! feature `tls-rsa`).
//!
//! - **Verification is on by default.** The server's certificate chain must
//!   lead to the CA given with [`TlsOptions::ca`], and be valid for the server
//!   name (mandatory, also sent as SNI). Issuers must be CAs
//!   (basicConstraints), and validity dates are checked when a wall clock is
//!   given ([`TlsStack::with_time`]; std: [`SystemTime`]). Skipping all of
//!   it takes [`TlsOptions::dangerously_skip_verification`], which logs a
//!   warning at each connect.
//! - **What the server must speak:** TLS 1.3, key exchange P-256 (secp256r1),
//!   cipher suite TLS_AES_128_GCM_SHA256. A P-256 (ECDSA) certificate chain
//!   works without a heap; an RSA chain needs feature `tls-rsa` (an
//!   allocator). A server that offers only TLS 1.2 is refused with an error
//!   that says so ([`TlsStackError::Tls12Only`]).
//! - **Options:** client certificate and P-256 key (mutual TLS), ALPN, max
//!   fragment length, handshake and I/O timeouts. The random generator is a
//!   parameter ([`rand_core::CryptoRngCore`]): the OS generator on std, the
//!   device's TRNG on embedded.
//! - **Buffers:** the user's [`TlsBuffers`], lent to one connection at a time
//!   (see [`lend`](self#the-buffers)).
//! - **Never hangs, never spins forever:** `connect` (TCP, then the whole
//!   handshake) ends within the handshake timeout; `receive` never waits:
//!   it returns `WouldBlock` when no whole record has arrived, and keeps
//!   plaintext it decrypted but could not hand over for the next call;
//!   `send` encrypts, writes and flushes within the I/O timeout. Waiting
//!   for data is [`TlsWait`], which waits with the inner stack's waiter (the
//!   std `StdWait` sleeps in the kernel).
//!
//! # Known limits (upstream, embedded-tls 0.19)
//!
//! - After the handshake, embedded-tls reports any alert but close_notify as
//!   `InternalError`, without its description; [`TlsStackError`] names the
//!   likely cause where it can ([`TlsStackError::AbortedAfterHandshake`]).
//! - It panics (`unimplemented!`) on a post-handshake handshake message
//!   other than NewSessionTicket (KeyUpdate, post-handshake
//!   CertificateRequest), and its RSA-PSS check `unwrap`s the parse of the
//!   server key (feature `tls-rsa`). mosquitto and common brokers send
//!   neither; a hostile server could (after passing certificate
//!   verification). These panics are in embedded-tls, not in this crate.
//! - One cipher suite (TLS_AES_128_GCM_SHA256), one key exchange (P-256),
//!   TLS 1.3 only; no session resumption; no IP address SANs.
//!
//! # The buffers
//!
//! embedded-tls takes its record buffers as `&'a mut [u8]` and never gives
//! them back, yet a stack that reconnects needs them again for each
//! connection. [`TlsBuffers`] lends them to one connection at a time, guarded
//! at run time; it is the only `unsafe` code of the workspace, in the private
//! module `lend` whose docs say why and when it can go. A leaked connection
//! keeps them forever: later connects fail with
//! [`TlsStackError::BuffersStillLent`].
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
//! use umqtt_transports::tls::{TlsBuffers, TlsOptions, TlsStack, TlsWait, pem};
//!
//! let ca_pem = std::fs::read("ca.crt")?;
//! let mut ca_der = [0u8; 2048];
//! let ca = pem::decode(&ca_pem, "CERTIFICATE", &mut ca_der)?;
//!
//! let (mut read, mut write) = ([0u8; 16_640], [0u8; 4096]);
//! let buffers = TlsBuffers::new(&mut read, &mut write);
//! let options = TlsOptions::new("broker.example.com").ca(ca);
//! let rng = rand_core::OsRng; // feature tls-std
//! let stack = TlsStack::new(StdTcpStack::new(), StdWait::new(), StdClock::new(), rng, &buffers, options);
//! // `stack` is a TcpClientStack: hand it to umqtt_simple::Client::new, call
//! // `.with_waiter(TlsWait)` on the client, and connect to port 8883.
//! # let _ = (stack, TlsWait); Ok(()) }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```
//!
//! [embedded-tls]: https://docs.rs/embedded-tls

pub mod adapter;
mod lend;
pub mod pem;
mod verify;

use core::fmt;
use core::net::SocketAddr;

use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind};
use embedded_tls::SignatureScheme;
use embedded_tls::alert::AlertDescription;
use embedded_tls::blocking::{
    Aes128GcmSha256, Certificate, CryptoProvider, TlsConfig, TlsContext, TlsError, TlsVerifier,
};
use rand_core::CryptoRngCore;

pub use adapter::{IoControl, IoOutcome, NalIo, NalIoError};
pub use embedded_tls::blocking::MaxFragmentLength;
pub use lend::{StillLent, TlsBuffers};
#[cfg(feature = "std")]
pub use verify::SystemTime;
pub use verify::{CertError, NoTime, TlsTime};

use crate::{Clock, Wait};
use lend::Leased;
use verify::Verifier;

/// The one cipher suite offered (every TLS 1.3 server supports it).
type Suite = Aes128GcmSha256;

/// The default size of the copy of the server's certificate chain that the
/// verifier keeps during the handshake, in bytes.
pub const DEFAULT_CERT_SIZE: usize = 4096;

/// How to connect: the server name, what to trust, and options.
///
/// ```
/// use umqtt_transports::tls::{MaxFragmentLength, TlsOptions};
///
/// let (ca_der, cert_der, key_der): (&[u8], &[u8], &[u8]) = (&[1], &[2], &[3]);
/// let options = TlsOptions::new("broker.local")
///     .ca(ca_der)
///     .client_certificate(cert_der, key_der)
///     .alpn(&[b"mqtt"])
///     .max_fragment_length(MaxFragmentLength::Bits12)
///     .handshake_timeout_ms(5_000);
/// assert_eq!(options.server_name(), "broker.local");
/// ```
#[derive(Debug, Clone)]
pub struct TlsOptions<'a> {
    server_name: &'a str,
    ca: Option<&'a [u8]>,
    skip_verification: bool,
    client: Option<(&'a [u8], &'a [u8])>,
    alpn: Option<&'a [&'a [u8]]>,
    max_fragment_length: Option<MaxFragmentLength>,
    handshake_timeout_ms: u32,
    io_timeout_ms: u32,
}

impl<'a> TlsOptions<'a> {
    /// The default handshake timeout: 10 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10_000;
    /// The default I/O timeout: 10 s.
    pub const DEFAULT_IO_TIMEOUT_MS: u32 = 10_000;

    /// Options for a server called `server_name` (a DNS name: checked against
    /// the certificate and sent as SNI). Trust nothing yet: set [`Self::ca`].
    pub fn new(server_name: &'a str) -> Self {
        TlsOptions {
            server_name,
            ca: None,
            skip_verification: false,
            client: None,
            alpn: None,
            max_fragment_length: None,
            handshake_timeout_ms: Self::DEFAULT_HANDSHAKE_TIMEOUT_MS,
            io_timeout_ms: Self::DEFAULT_IO_TIMEOUT_MS,
        }
    }

    /// Trusts the CA certificate `der` (DER; [`pem::decode`] converts PEM).
    #[must_use]
    pub fn ca(mut self, der: &'a [u8]) -> Self {
        self.ca = Some(der);
        self
    }

    /// Accepts any certificate for any name: anyone on the path can read and
    /// change the traffic. For tests against a broker with a throwaway
    /// certificate only; each connect logs a warning.
    #[must_use]
    pub fn dangerously_skip_verification(mut self) -> Self {
        self.skip_verification = true;
        self
    }

    /// Presents the certificate `cert_der` and proves it with the P-256 key
    /// `key_der` (SEC1 or PKCS#8 DER) when the server asks (mutual TLS).
    #[must_use]
    pub fn client_certificate(mut self, cert_der: &'a [u8], key_der: &'a [u8]) -> Self {
        self.client = Some((cert_der, key_der));
        self
    }

    /// Offers these ALPN protocols (e.g. `b"mqtt"` for AWS IoT on port 443).
    #[must_use]
    pub fn alpn(mut self, protocols: &'a [&'a [u8]]) -> Self {
        self.alpn = Some(protocols);
        self
    }

    /// Asks the server for records of at most this many plaintext bytes, so a
    /// smaller read buffer suffices (not every server agrees; mosquitto and
    /// OpenSSL do).
    #[must_use]
    pub fn max_fragment_length(mut self, length: MaxFragmentLength) -> Self {
        self.max_fragment_length = Some(length);
        self
    }

    /// How long the whole handshake may take (after the TCP connect).
    #[must_use]
    pub fn handshake_timeout_ms(mut self, ms: u32) -> Self {
        self.handshake_timeout_ms = ms;
        self
    }

    /// How long a record that has started arriving may take to complete, and
    /// how long a write may wait for the stack to take bytes.
    #[must_use]
    pub fn io_timeout_ms(mut self, ms: u32) -> Self {
        self.io_timeout_ms = ms;
        self
    }

    /// The server name.
    pub fn server_name(&self) -> &'a str {
        self.server_name
    }
}

/// Why a [`TlsStack`] operation failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsStackError<E> {
    /// The inner stack failed (creating a socket, the TCP connect).
    Tcp(E),
    /// The server's certificate was refused.
    Certificate(CertError),
    /// The server speaks only TLS 1.2 or older; this client speaks TLS 1.3.
    Tls12Only,
    /// The server answered with something that is not TLS.
    NotTls,
    /// The server closed the connection without answering the ClientHello.
    ClosedBeforeHello,
    /// The server aborted the handshake or the session with this alert.
    Alert(AlertDescription),
    /// The server aborted the session (with an alert embedded-tls does not
    /// name, or by closing it) after the handshake, before sending any data:
    /// what a server does that wants another client certificate.
    AbortedAfterHandshake {
        /// Whether a client certificate was given.
        client_certificate: bool,
    },
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimedOut,
    /// A record did not complete, or a write was not taken, within the I/O
    /// timeout.
    TimedOut,
    /// A record does not fit in the read buffer of this many bytes.
    RecordTooLarge {
        /// The read buffer's length.
        buffer: usize,
    },
    /// The peer closed the connection (or the inner stack lost it).
    Closed,
    /// The inner stack failed during the session, with this kind of error.
    Network(TcpErrorKind),
    /// Neither a CA nor [`TlsOptions::dangerously_skip_verification`] was given.
    NoTrustAnchor,
    /// The client key is not a P-256 key in SEC1 or PKCS#8 DER.
    BadClientKey,
    /// The record buffers are still lent (see [`StillLent`]).
    BuffersStillLent,
    /// The stack already has a connection (one at a time).
    Busy,
    /// `connect` on a socket already connected.
    AlreadyConnected,
    /// The socket is not connected (or its connection was lost).
    NotConnected,
    /// Any other TLS failure, as embedded-tls reports it.
    Tls(TlsError),
}

impl<E: fmt::Debug> fmt::Display for TlsStackError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(e) => write!(f, "TCP: {e:?}"),
            Self::Certificate(e) => write!(f, "TLS handshake refused: {e}"),
            Self::Tls12Only => f.write_str(
                "TLS handshake refused: the server speaks only TLS 1.2 or older (this client needs TLS 1.3)",
            ),
            Self::NotTls => f.write_str(
                "TLS handshake failed: the server answered with something that is not TLS (a plain TCP port?)",
            ),
            Self::ClosedBeforeHello => f.write_str(
                "TLS handshake failed: the server closed the connection without answering (a plain TCP port?)",
            ),
            Self::Alert(AlertDescription::CertificateRequired) => f.write_str(
                "TLS refused by the server: it requires a client certificate",
            ),
            Self::Alert(AlertDescription::ProtocolVersion) => f.write_str(
                "TLS handshake refused: the server speaks only TLS 1.2 or older (this client needs TLS 1.3)",
            ),
            Self::Alert(a) => write!(f, "TLS refused by the server: alert {a:?}"),
            Self::AbortedAfterHandshake {
                client_certificate: false,
            } => f.write_str(
                "TLS session ended by the server right after the handshake: it probably requires a client certificate (none given)",
            ),
            Self::AbortedAfterHandshake {
                client_certificate: true,
            } => f.write_str(
                "TLS session ended by the server right after the handshake: it probably does not accept the client certificate",
            ),
            Self::HandshakeTimedOut => f.write_str("TLS handshake timed out"),
            Self::TimedOut => f.write_str("TLS record timed out (connection stalled)"),
            Self::RecordTooLarge { buffer } => write!(
                f,
                "a TLS record does not fit in the {buffer}-byte read buffer (full records need 16640 bytes; or ask for a max fragment length)"
            ),
            Self::Closed => f.write_str("TLS connection closed"),
            Self::Network(kind) => write!(f, "TLS connection lost: network error ({kind:?})"),
            Self::NoTrustAnchor => f.write_str(
                "no CA certificate given to verify the server (or choose dangerously_skip_verification)",
            ),
            Self::BadClientKey => {
                f.write_str("the client key is not a P-256 key (SEC1 or PKCS#8 DER)")
            }
            Self::BuffersStillLent => write!(f, "cannot connect: {StillLent}"),
            Self::Busy => f.write_str("the TLS stack already has a connection (one at a time)"),
            Self::AlreadyConnected => f.write_str("socket is already connected"),
            Self::NotConnected => f.write_str("socket is not connected"),
            Self::Tls(e) => write!(f, "TLS error: {e:?}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for TlsStackError<E> {}

impl<E: TcpError> TcpError for TlsStackError<E> {
    fn kind(&self) -> TcpErrorKind {
        match self {
            Self::Tcp(e) => e.kind(),
            Self::Network(kind) => *kind,
            Self::Closed | Self::NotConnected | Self::TimedOut => TcpErrorKind::PipeClosed,
            Self::Alert(_)
            | Self::AbortedAfterHandshake { .. }
            | Self::RecordTooLarge { .. }
            | Self::Tls(_) => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

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
/// [module docs](self)).
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
        let waited = session.leased.conn().read_buffered().map(|p| p.revert());
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
        let (mut stack, socket, _, waiter) = session.leased.close().into_parts();
        if let Err(e) = stack.close(socket) {
            log::debug!("TLS: closing the TCP socket failed: {e:?}");
        }
        self.parts = Some((stack, waiter));
    }

    /// What a failed read or write of the open session means; `first`: no
    /// plaintext had arrived yet.
    fn read_error(&self, e: TlsError, first: bool) -> TlsStackError<S::Error> {
        let error = self.session_error(e);
        // A server that refuses the client's certificate (or its absence)
        // sends an alert right after the handshake and closes; embedded-tls
        // reports any alert but close_notify as InternalError, and the alert
        // is lost altogether when the close overtakes it (a reset).
        match error {
            TlsStackError::Tls(TlsError::InternalError)
            | TlsStackError::Closed
            | TlsStackError::Network(_)
                if first =>
            {
                TlsStackError::AbortedAfterHandshake {
                    client_certificate: self.options.client.is_some(),
                }
            }
            error => error,
        }
    }

    /// What a failed read or write of the open session means.
    fn session_error(&self, e: TlsError) -> TlsStackError<S::Error> {
        match (e, self.buffers.io().outcome()) {
            (_, IoOutcome::TimedOut) => TlsStackError::TimedOut,
            (_, IoOutcome::NotTls) => TlsStackError::NotTls,
            (_, IoOutcome::Network(TcpErrorKind::PipeClosed)) => TlsStackError::Closed,
            (_, IoOutcome::Network(kind)) => TlsStackError::Network(kind),
            (TlsError::ConnectionClosed | TlsError::IoError, _) => TlsStackError::Closed,
            (TlsError::HandshakeAborted(_, AlertDescription::CloseNotify), _) => {
                TlsStackError::Closed
            }
            (TlsError::HandshakeAborted(_, alert) | TlsError::AbortHandshake(_, alert), _) => {
                TlsStackError::Alert(alert)
            }
            (TlsError::InsufficientSpace, _) => TlsStackError::RecordTooLarge {
                buffer: self.buffers.read_len(),
            },
            (e, _) => TlsStackError::Tls(e),
        }
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
        let key = match options.client {
            Some((_, key)) => Some(
                p256::SecretKey::from_sec1_der(key)
                    .or_else(|_| {
                        use p256::pkcs8::DecodePrivateKey;
                        p256::SecretKey::from_pkcs8_der(key)
                    })
                    .map_err(|_| TlsStackError::BadClientKey)?,
            ),
            None => None,
        };
        let mut config = TlsConfig::new().with_server_name(options.server_name);
        if let Some(alpn) = options.alpn {
            config = config.with_alpn(alpn);
        }
        if let Some(mfl) = options.max_fragment_length {
            config = config.with_max_fragment_length(mfl);
        }
        let mut verifier = match (options.ca, options.skip_verification) {
            (_, true) => {
                log::warn!(
                    "TLS: certificate verification is OFF for {}: anyone on the path can read and change this connection",
                    options.server_name
                );
                None
            }
            (Some(ca), false) => Some(Verifier::<Suite, &T, CERT_SIZE>::new(
                ca,
                options.server_name,
                &self.time,
            )),
            (None, false) => return Err(TlsStackError::NoTrustAnchor),
        };
        let mut provider = Provider {
            rng: &mut self.rng,
            verifier: verifier.as_mut(),
            cert: options.client.map(|(cert, _)| cert),
            key,
        };
        let result = leased.conn().open(TlsContext::new(&config, &mut provider));
        let Err(e) = result else {
            return Ok(());
        };
        log::debug!("TLS: handshake failed: {e:?}");
        if let Some(cert) = verifier.as_ref().and_then(Verifier::failure) {
            return Err(TlsStackError::Certificate(cert));
        }
        let io = self.buffers.io();
        Err(match (e, io.outcome()) {
            (_, IoOutcome::NotTls) => TlsStackError::NotTls,
            (_, IoOutcome::TimedOut) => TlsStackError::HandshakeTimedOut,
            (_, IoOutcome::Network(_)) | (TlsError::IoError, _) if !io.received_any() => {
                TlsStackError::ClosedBeforeHello
            }
            (TlsError::HandshakeAborted(_, AlertDescription::ProtocolVersion), _) => {
                TlsStackError::Tls12Only
            }
            (TlsError::InvalidSupportedVersions, _) => TlsStackError::Tls12Only,
            (e, _) => self.session_error(e),
        })
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
        let conn = session.leased.conn();
        match conn.write(buffer).and_then(|n| conn.flush().map(|()| n)) {
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
        match session.leased.conn().read(buffer) {
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

/// Why a DNS lookup through a [`TlsStack`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TlsDnsError<E> {
    /// The inner stack's lookup failed.
    Dns(E),
    /// The inner stack is held by the open TLS connection; look up before
    /// connecting (or after closing).
    Busy,
}

impl<E: fmt::Debug> fmt::Display for TlsDnsError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TlsDnsError::Dns(e) => write!(f, "DNS lookup failed: {e:?}"),
            TlsDnsError::Busy => {
                f.write_str("DNS lookup while a TLS connection holds the stack: close it first")
            }
        }
    }
}

impl<E: fmt::Debug> core::error::Error for TlsDnsError<E> {}

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

/// The [`Wait`] for a [`TlsStack`]: waits for decrypted data with
/// [`TlsStack::wait_readable`] (which waits with the inner stack's waiter).
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct TlsWait;

impl<S, C, W, R, T, const CERT_SIZE: usize> Wait<TlsStack<'_, S, C, W, R, T, CERT_SIZE>> for TlsWait
where
    S: TcpClientStack,
    C: Clock + Clone,
    W: Wait<S>,
    R: CryptoRngCore,
    T: TlsTime,
{
    fn wait_readable(
        &mut self,
        stack: &mut TlsStack<'_, S, C, W, R, T, CERT_SIZE>,
        socket: &mut TlsSocket<S::TcpSocket>,
        timeout_ms: u32,
    ) {
        stack.wait_readable(socket, timeout_ms);
    }

    fn idle(&mut self, stack: &mut TlsStack<'_, S, C, W, R, T, CERT_SIZE>, timeout_ms: u32) {
        stack.idle(timeout_ms);
    }
}

/// What embedded-tls asks for during a handshake.
struct Provider<'p, R, V> {
    rng: &'p mut R,
    verifier: Option<&'p mut V>,
    cert: Option<&'p [u8]>,
    key: Option<p256::SecretKey>,
}

impl<R: CryptoRngCore, V: TlsVerifier<Suite>> CryptoProvider for Provider<'_, R, V> {
    type CipherSuite = Suite;
    type Signature = p256::ecdsa::DerSignature;

    fn rng(&mut self) -> impl CryptoRngCore {
        &mut *self.rng
    }

    fn verifier(&mut self) -> Result<&mut impl TlsVerifier<Suite>, TlsError> {
        self.verifier.as_deref_mut().ok_or(TlsError::Unimplemented)
    }

    fn signer(
        &mut self,
    ) -> Result<(impl signature::SignerMut<Self::Signature>, SignatureScheme), TlsError> {
        let key = self.key.as_ref().ok_or(TlsError::InvalidPrivateKey)?;
        Ok((
            p256::ecdsa::SigningKey::from(key),
            SignatureScheme::EcdsaSecp256r1Sha256,
        ))
    }

    fn client_cert(&mut self) -> Option<Certificate<impl AsRef<[u8]>>> {
        self.cert.map(Certificate::X509)
    }
}
