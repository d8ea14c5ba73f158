//! What can go wrong with the rustls engine, said so that a person knows what
//! to fix: [`ConfigError`] before any connection, [`RustlsError`] during one.

use core::fmt;

use ::rustls::pki_types::ServerName;
use std::string::{String, ToString};
use std::vec::Vec;

use ::rustls::{AlertDescription, CertificateError, Error as TlsError, PeerIncompatible};
use embedded_nal::{TcpError, TcpErrorKind};

use super::TlsVersions;

/// Why [`RustlsOptions`](super::RustlsOptions) cannot make a configuration
/// (reported by [`RustlsStack::new`](super::RustlsStack::new), before any
/// connection).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ConfigError {
    /// The server name is neither a DNS name nor an IP address.
    BadServerName(String),
    /// No CA chosen, no system store, no `dangerously_skip_verification`.
    NoTrustAnchor,
    /// The system trust store gave no usable CA certificate (why).
    NoSystemRoots(String),
    /// A CA certificate could not be read (why).
    BadCa(String),
    /// The client certificate could not be read (why).
    BadClientCertificate(String),
    /// The client key could not be read or does not fit the certificate, or
    /// is of a type rustls cannot sign with (why).
    BadClientKey(String),
    /// rustls refused the configuration.
    Tls(TlsError),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BadServerName(name) => {
                write!(f, "`{name}` is neither a DNS name nor an IP address")
            }
            Self::NoTrustAnchor => f.write_str(
                "no CA to verify the server: give CA certificates, the system store, or choose dangerously_skip_verification",
            ),
            Self::NoSystemRoots(why) => write!(
                f,
                "the system trust store has no usable CA certificate ({why}); SSL_CERT_FILE and SSL_CERT_DIR choose another"
            ),
            Self::BadCa(why) => write!(f, "CA certificate: {why}"),
            Self::BadClientCertificate(why) => write!(f, "client certificate: {why}"),
            Self::BadClientKey(why) => write!(f, "client key: {why}"),
            Self::Tls(e) => write!(f, "TLS configuration: {e}"),
        }
    }
}

impl core::error::Error for ConfigError {}

/// Why a [`RustlsStack`](super::RustlsStack) operation failed. `E` is the
/// inner stack's error.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum RustlsError<E> {
    /// The inner stack failed to make a socket or to connect.
    Tcp(E),
    /// The inner stack failed during the handshake or the session.
    Network(E),
    /// The server's certificate chain does not lead to a trusted CA.
    UnknownCa,
    /// The server's certificate is not valid for the name connected to.
    NameMismatch {
        /// The name asked for.
        expected: String,
        /// The names the certificate carries (when rustls says).
        presented: Vec<String>,
    },
    /// A certificate of the server's chain has expired.
    Expired,
    /// A certificate of the server's chain is not valid yet (check the clock).
    NotYetValid,
    /// Another problem with the server's certificate, in rustls's words.
    BadCertificate(String),
    /// The server and this client have no TLS version in common.
    ProtocolVersion {
        /// What this client offered.
        offered: TlsVersions,
    },
    /// The server and this client have no cipher suite, key exchange group or
    /// signature scheme in common (rustls's words).
    NoCommonAlgorithms(String),
    /// The server requires a client certificate and none was given.
    ClientCertificateRequired,
    /// The server refused the client certificate with this alert.
    ClientCertificateRefused(AlertDescription),
    /// The server speaks none of the ALPN protocols offered.
    AlpnRefused,
    /// The server aborted with this alert.
    Alert(AlertDescription),
    /// The server answered with something that is not TLS.
    NotTls,
    /// The server closed the connection during the handshake.
    ClosedDuringHandshake,
    /// The handshake did not complete within the handshake timeout.
    HandshakeTimedOut,
    /// The inner stack took no bytes within the I/O timeout.
    TimedOut,
    /// The server ended the session in order (close_notify) before sending
    /// any data: it refused the client for a reason of its own (its log
    /// says which), not for its TLS.
    ClosedBeforeAnswer,
    /// The session ended (close_notify, or the connection closed).
    Closed,
    /// The socket is not connected (or its connection was lost).
    NotConnected,
    /// `connect` on a socket already connected.
    AlreadyConnected,
    /// Any other TLS failure, in rustls's words.
    Tls(TlsError),
}

impl<E: fmt::Debug> fmt::Display for RustlsError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Tcp(e) => write!(f, "TCP: {e:?}"),
            Self::Network(e) => write!(f, "TLS connection lost: network error ({e:?})"),
            Self::UnknownCa => f.write_str(
                "TLS handshake refused: the broker's certificate is not trusted (its chain does not lead to a given CA)",
            ),
            Self::NameMismatch {
                expected,
                presented,
            } => {
                write!(
                    f,
                    "TLS handshake refused: the broker's certificate is not valid for the server name `{expected}`"
                )?;
                if !presented.is_empty() {
                    write!(f, " (it is for {})", presented.join(", "))?;
                }
                Ok(())
            }
            Self::Expired => {
                f.write_str("TLS handshake refused: the broker's certificate has expired")
            }
            Self::NotYetValid => f.write_str(
                "TLS handshake refused: the broker's certificate is not valid yet (check the clock)",
            ),
            Self::BadCertificate(why) => {
                write!(f, "TLS handshake refused: the broker's certificate: {why}")
            }
            Self::ProtocolVersion { offered } => write!(
                f,
                "TLS handshake refused: the broker and this client have no TLS version in common (offered: {offered})"
            ),
            Self::NoCommonAlgorithms(why) => write!(
                f,
                "TLS handshake refused: no cipher suite, key exchange or signature scheme in common ({why})"
            ),
            Self::ClientCertificateRequired => {
                f.write_str("TLS refused by the broker: it requires a client certificate")
            }
            Self::ClientCertificateRefused(alert) => write!(
                f,
                "TLS refused by the broker: it does not accept the client certificate (alert {alert:?})"
            ),
            Self::AlpnRefused => f.write_str(
                "TLS refused by the broker: it speaks none of the ALPN protocols offered",
            ),
            Self::Alert(alert) => write!(f, "TLS refused by the broker: alert {alert:?}"),
            Self::NotTls => f.write_str(
                "TLS handshake failed: the server answered with something that is not TLS (a plain TCP port?)",
            ),
            Self::ClosedDuringHandshake => f.write_str(
                "TLS handshake failed: the server closed the connection (a plain TCP port, or it refused this client)",
            ),
            Self::HandshakeTimedOut => f.write_str("TLS handshake timed out"),
            Self::TimedOut => f.write_str("TLS write timed out (connection stalled)"),
            Self::ClosedBeforeAnswer => f.write_str(
                "the server closed the TLS connection (close_notify) before answering: it refused this client (see the broker's log)",
            ),
            Self::Closed => f.write_str("TLS connection closed"),
            Self::NotConnected => f.write_str("socket is not connected"),
            Self::AlreadyConnected => f.write_str("socket is already connected"),
            Self::Tls(e) => write!(f, "TLS error: {e}"),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for RustlsError<E> {}

impl<E: TcpError> TcpError for RustlsError<E> {
    fn kind(&self) -> TcpErrorKind {
        match self {
            Self::Tcp(e) | Self::Network(e) => e.kind(),
            Self::Closed
            | Self::ClosedBeforeAnswer
            | Self::NotConnected
            | Self::TimedOut
            | Self::Alert(_)
            | Self::ClientCertificateRefused(_)
            | Self::Tls(_) => TcpErrorKind::PipeClosed,
            _ => TcpErrorKind::Other,
        }
    }
}

/// What the engine knew when rustls failed, to name the cause.
#[derive(Debug, Clone, Copy)]
pub(super) struct Context {
    /// Whether the handshake was still running.
    pub(super) handshaking: bool,
    /// Whether a client certificate was configured.
    pub(super) client_certificate: bool,
    /// What was offered.
    pub(super) versions: TlsVersions,
}

/// `error` with the name connected to filled in where rustls left it out
/// (a name mismatch).
pub(super) fn named<E>(error: RustlsError<E>, server_name: &ServerName<'_>) -> RustlsError<E> {
    match error {
        RustlsError::NameMismatch {
            expected,
            presented,
        } if expected.is_empty() => RustlsError::NameMismatch {
            expected: server_name.to_str().into_owned(),
            presented,
        },
        other => other,
    }
}

/// As an I/O error of the async clients (embedded-io).
impl<E: embedded_io::Error> embedded_io::Error for RustlsError<E> {
    fn kind(&self) -> embedded_io::ErrorKind {
        use embedded_io::ErrorKind as K;
        match self {
            Self::Tcp(e) | Self::Network(e) => e.kind(),
            Self::TimedOut | Self::HandshakeTimedOut => K::TimedOut,
            Self::NotConnected => K::NotConnected,
            Self::Closed | Self::ClosedBeforeAnswer | Self::ClosedDuringHandshake => K::BrokenPipe,
            Self::AlreadyConnected => K::InvalidInput,
            _ => K::InvalidData,
        }
    }
}

/// rustls's error as the variant that says what was wrong.
pub(super) fn classify<E>(error: TlsError, cx: Context) -> RustlsError<E> {
    use AlertDescription as A;
    match error {
        TlsError::InvalidCertificate(e) => certificate(e),
        TlsError::PeerIncompatible(
            PeerIncompatible::ServerDoesNotSupportTls12Or13
            | PeerIncompatible::ServerTlsVersionIsDisabledByOurConfig
            | PeerIncompatible::SupportedVersionsExtensionRequired
            | PeerIncompatible::Tls12NotOffered
            | PeerIncompatible::Tls12NotOfferedOrEnabled,
        )
        | TlsError::AlertReceived(A::ProtocolVersion) => RustlsError::ProtocolVersion {
            offered: cx.versions,
        },
        TlsError::PeerIncompatible(e) => RustlsError::NoCommonAlgorithms(std::format!("{e:?}")),
        TlsError::AlertReceived(A::HandshakeFailure | A::InsufficientSecurity)
            if cx.handshaking =>
        {
            RustlsError::NoCommonAlgorithms(
                "the broker answered handshake_failure to what this client offers".to_string(),
            )
        }
        TlsError::AlertReceived(A::NoApplicationProtocol) | TlsError::NoApplicationProtocol => {
            RustlsError::AlpnRefused
        }
        TlsError::AlertReceived(A::CertificateRequired) => RustlsError::ClientCertificateRequired,
        TlsError::AlertReceived(
            a @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied),
        ) => {
            if cx.client_certificate {
                RustlsError::ClientCertificateRefused(a)
            } else if matches!(a, A::BadCertificate | A::CertificateUnknown) {
                // A TLS 1.2 server that wants a certificate says so.
                RustlsError::ClientCertificateRequired
            } else {
                RustlsError::Alert(a)
            }
        }
        TlsError::AlertReceived(a) => RustlsError::Alert(a),
        TlsError::InvalidMessage(_) | TlsError::InappropriateMessage { .. } if cx.handshaking => {
            RustlsError::NotTls
        }
        other => RustlsError::Tls(other),
    }
}

fn certificate<E>(e: CertificateError) -> RustlsError<E> {
    match e {
        CertificateError::UnknownIssuer => RustlsError::UnknownCa,
        CertificateError::NotValidForName => RustlsError::NameMismatch {
            expected: String::new(),
            presented: Vec::new(),
        },
        CertificateError::NotValidForNameContext {
            expected,
            presented,
        } => RustlsError::NameMismatch {
            expected: expected.to_str().into_owned(),
            presented: presented.iter().map(|p| bare_name(p)).collect(),
        },
        CertificateError::Expired | CertificateError::ExpiredContext { .. } => RustlsError::Expired,
        CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
            RustlsError::NotYetValid
        }
        // webpki's reason is only in the Debug form of an `OtherError`.
        CertificateError::Other(e) if std::format!("{e:?}").contains("CaUsedAsEndEntity") => {
            RustlsError::BadCertificate(
                "it is a CA certificate (basicConstraints CA:TRUE) serving as the server's own, which webpki refuses; give the broker a server certificate issued by that CA"
                    .to_string(),
            )
        }
        other => RustlsError::BadCertificate(TlsError::InvalidCertificate(other).to_string()),
    }
}

/// `localhost` out of rustls's `DnsName("localhost")` (and an address out of
/// `IpAddress(...)`); anything else as it is.
fn bare_name(presented: &str) -> String {
    presented
        .split_once('(')
        .and_then(|(_, rest)| rest.strip_suffix(')'))
        .map(|inner| inner.trim_matches('"'))
        .unwrap_or(presented)
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::bare_name;

    #[test]
    fn presented_names_lose_rustls_spelling() {
        assert_eq!(bare_name("DnsName(\"localhost\")"), "localhost");
        assert_eq!(bare_name("IpAddress(127.0.0.1)"), "127.0.0.1");
        assert_eq!(bare_name("plain"), "plain");
    }
}
