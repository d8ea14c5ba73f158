//! What can go wrong in a TLS session, said so that a person knows what to fix.

use core::fmt;

use embedded_nal::{TcpError, TcpErrorKind};
use embedded_tls::alert::AlertDescription;
use embedded_tls::blocking::TlsError;

use super::{CertError, HandshakeError, StillLent};

/// Why a [`TlsStack`](super::TlsStack) or [`TlsConnect`](super::TlsConnect) operation failed.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum TlsStackError<E> {
    /// The inner stack failed (creating a socket, the TCP connect).
    Tcp(E),
    /// The server's certificate was refused.
    Certificate(CertError),
    /// The server's handshake was refused: it did not prove its identity
    /// (a message missing, out of order or repeated, or a bad signature).
    Handshake(HandshakeError),
    /// The server sent a TLS message not allowed at that point (e.g. a
    /// zero-length handshake record, a post-handshake CertificateRequest, a
    /// message after its Finished); the client aborted with the alert
    /// unexpected_message.
    UnexpectedMessage,
    /// The server sent an encrypted record with no content type in it (an
    /// empty inner plaintext).
    MalformedRecord,
    /// The server speaks only TLS 1.2 or older; this client speaks TLS 1.3.
    Tls12Only,
    /// The server answered with something that is not TLS.
    NotTls,
    /// The server closed the connection without answering the ClientHello.
    ClosedBeforeHello,
    /// The server aborted the handshake or the session with this alert.
    Alert(AlertDescription),
    /// The server aborted the session (with an alert embedded-tls does not
    /// name, or by dropping the connection without close_notify) after the
    /// handshake, before sending any data: what a server does that wants
    /// another client certificate.
    AbortedAfterHandshake {
        /// Whether a client certificate was given.
        client_certificate: bool,
    },
    /// The server ended the session in order (close_notify) right after the
    /// handshake, before sending any data: it refused the client for a
    /// reason of its own (its log says which), not for its certificate.
    ClosedByServer,
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
    /// An async write was dropped (its caller's deadline passed) in the
    /// middle of a record: the server has part of it, so the session cannot
    /// go on ([`TlsConnect`](super::TlsConnect)).
    WriteCut,
    /// The inner stack failed during the session, with this kind of error.
    Network(TcpErrorKind),
    /// Neither a CA nor [`TlsOptions::dangerously_skip_verification`](super::TlsOptions::dangerously_skip_verification) was given.
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
            Self::Handshake(e) => write!(f, "TLS handshake refused: {e}"),
            Self::UnexpectedMessage => f.write_str(
                "TLS connection refused: the server sent a message not allowed at that point",
            ),
            Self::MalformedRecord => f.write_str(
                "TLS connection refused: the server sent an encrypted record with no content type",
            ),
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
            Self::ClosedByServer => f.write_str(
                "the server closed the TLS connection (close_notify) before answering: it refused this client (see the broker's log)",
            ),
            Self::HandshakeTimedOut => f.write_str("TLS handshake timed out"),
            Self::TimedOut => f.write_str("TLS record timed out (connection stalled)"),
            Self::RecordTooLarge { buffer } => write!(
                f,
                "a TLS record does not fit in the {buffer}-byte read buffer (full records need 16640 bytes; or ask for a max fragment length)"
            ),
            Self::Closed => f.write_str("TLS connection closed"),
            Self::WriteCut => f.write_str(
                "TLS session lost: a write was cut off (timed out) in the middle of a record",
            ),
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
            Self::Closed
            | Self::ClosedByServer
            | Self::NotConnected
            | Self::TimedOut
            | Self::WriteCut => TcpErrorKind::PipeClosed,
            Self::Alert(_)
            | Self::AbortedAfterHandshake { .. }
            | Self::RecordTooLarge { .. }
            | Self::UnexpectedMessage
            | Self::MalformedRecord
            | Self::Tls(_) => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

/// The kind of a [`TlsConnect`](super::TlsConnect) error, for
/// embedded-io-async callers: the inner stack's own kind for its errors,
/// else what the failure amounts to (a lost session is `ConnectionReset`).
impl<E: embedded_io::Error> embedded_io::Error for TlsStackError<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind;
        match self {
            Self::Tcp(e) => e.kind(),
            Self::Network(TcpErrorKind::PipeClosed)
            | Self::Closed
            | Self::ClosedByServer
            | Self::WriteCut
            | Self::Alert(_)
            | Self::AbortedAfterHandshake { .. } => ErrorKind::ConnectionReset,
            Self::NotConnected => ErrorKind::NotConnected,
            Self::TimedOut | Self::HandshakeTimedOut => ErrorKind::TimedOut,
            Self::NotTls
            | Self::MalformedRecord
            | Self::UnexpectedMessage
            | Self::RecordTooLarge { .. } => ErrorKind::InvalidData,
            Self::Certificate(_) | Self::Handshake(_) => ErrorKind::PermissionDenied,
            Self::NoTrustAnchor | Self::BadClientKey => ErrorKind::InvalidInput,
            _ => ErrorKind::Other,
        }
    }
}

/// Why a DNS lookup through a [`TlsStack`](super::TlsStack) failed.
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
