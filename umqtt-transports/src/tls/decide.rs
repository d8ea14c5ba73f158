//! The decisions of a TLS session, made once for both I/O front-ends (the
//! blocking [`TlsStack`](super::TlsStack) and the async
//! [`TlsConnect`](super::TlsConnect)): the client key, the configuration
//! offered, the verifier (chain checks inside the handshake order state
//! machine), whether a completed handshake authenticated the server, and
//! what each failure of embedded-tls means, as a [`TlsStackError`].
//!
//! The front-ends only move bytes: each runs embedded-tls's `open`, `read`
//! and `write` (blocking or async) with a [`Provider`](super::provider)
//! built from what this module returns, and asks it what the result means.

use embedded_nal::TcpErrorKind;
use embedded_tls::alert::AlertDescription;
use embedded_tls::blocking::{TlsConfig, TlsError};

use super::adapter::{IoControl, IoOutcome};
use super::chain;
use super::handshake::{HandshakeError, Ordered};
use super::verify::{TlsTime, Verifier};
use super::{Suite, TlsOptions, TlsStackError};

/// The verifier of one handshake: the chain checks and rustpki inside the
/// order state machine.
pub(super) type CheckedVerifier<'o, T, const CERT_SIZE: usize> =
    Ordered<Verifier<'o, Suite, T, CERT_SIZE>>;

/// The client's P-256 key (SEC1 or PKCS#8 DER), if mutual TLS is configured.
pub(super) fn client_key<E>(
    options: &TlsOptions<'_>,
) -> Result<Option<p256::SecretKey>, TlsStackError<E>> {
    let Some((_, key)) = options.client else {
        return Ok(None);
    };
    p256::SecretKey::from_sec1_der(key)
        .or_else(|_| {
            use p256::pkcs8::DecodePrivateKey;
            p256::SecretKey::from_pkcs8_der(key)
        })
        .map(Some)
        .map_err(|_| TlsStackError::BadClientKey)
}

/// What the ClientHello offers: SNI (a DNS name only), ALPN, max fragment
/// length.
pub(super) fn config<'o>(options: &TlsOptions<'o>) -> TlsConfig<'o> {
    let mut config = TlsConfig::new();
    // An IP address is no server name: RFC 6066 forbids it in SNI (the
    // verifier matches it against the IP SANs).
    if let chain::Host::Dns(name) = chain::Host::parse(options.server_name) {
        config = config.with_server_name(name);
    }
    if let Some(alpn) = options.alpn {
        config = config.with_alpn(alpn);
    }
    if let Some(mfl) = options.max_fragment_length {
        config = config.with_max_fragment_length(mfl);
    }
    config
}

/// The verifier for one handshake; `None` (with a warning) when the user
/// chose `dangerously_skip_verification`.
pub(super) fn verifier<'o, T: TlsTime, const CERT_SIZE: usize, E>(
    options: &TlsOptions<'o>,
    time: T,
) -> Result<Option<CheckedVerifier<'o, T, CERT_SIZE>>, TlsStackError<E>> {
    match (options.cas, options.skip_verification) {
        (_, true) => {
            log::warn!(
                "TLS: certificate verification is OFF for {}: anyone on the path can read and change this connection",
                options.server_name
            );
            Ok(None)
        }
        (cas, false) if cas.is_empty() => Err(TlsStackError::NoTrustAnchor),
        (cas, false) => Ok(Some(Ordered::new(Verifier::new(
            cas,
            options.server_name,
            time,
        )))),
    }
}

/// What a handshake that embedded-tls completed means: embedded-tls
/// completes one whatever the server left out, so the server is
/// authenticated only if the order says so.
pub(super) fn opened<T: TlsTime, const CERT_SIZE: usize, E>(
    verifier: Option<&mut CheckedVerifier<'_, T, CERT_SIZE>>,
) -> Result<(), TlsStackError<E>> {
    match verifier.map(|v| v.order().finished()) {
        Some(Err(e)) => Err(TlsStackError::Handshake(e)),
        Some(Ok(())) | None => Ok(()),
    }
}

/// What a failed handshake means: the verifier's reason first, then the
/// order's, then what embedded-tls and the transport (`io`) say.
pub(super) fn handshake_failed<T: TlsTime, const CERT_SIZE: usize, E>(
    e: TlsError,
    verifier: Option<&mut CheckedVerifier<'_, T, CERT_SIZE>>,
    io: &IoControl,
    read_len: usize,
) -> TlsStackError<E> {
    log::debug!("TLS: handshake failed: {e:?}");
    if let Some(verifier) = verifier {
        if let Some(cert) = verifier.inner().failure() {
            return TlsStackError::Certificate(cert);
        }
        if let Some(e) = verifier.order().failure() {
            return TlsStackError::Handshake(e);
        }
    }
    if let TlsError::InvalidSignature = e {
        // What embedded-tls says of a Finished that does not verify (the
        // CertificateVerify's verdict is the order's, above).
        return TlsStackError::Handshake(HandshakeError::BadFinished);
    }
    match (e, io.outcome()) {
        (_, IoOutcome::NotTls) => TlsStackError::NotTls,
        (_, IoOutcome::TimedOut) => TlsStackError::HandshakeTimedOut,
        (_, IoOutcome::Network(_)) | (TlsError::IoError, _) if !io.received_any() => {
            TlsStackError::ClosedBeforeHello
        }
        (TlsError::HandshakeAborted(_, AlertDescription::ProtocolVersion), _) => {
            TlsStackError::Tls12Only
        }
        (TlsError::InvalidSupportedVersions, _) => TlsStackError::Tls12Only,
        (e, outcome) => session_error(e, outcome, read_len),
    }
}

/// What a failed read or write of the open session means; `first`: no
/// plaintext had arrived yet; `client_certificate`: one was configured.
pub(super) fn read_error<E>(
    e: TlsError,
    first: bool,
    outcome: IoOutcome,
    read_len: usize,
    client_certificate: bool,
) -> TlsStackError<E> {
    let close_notify = matches!(e, TlsError::ConnectionClosed);
    let error = session_error(e, outcome, read_len);
    // A server that refuses the client's certificate (or its absence)
    // sends an alert right after the handshake and closes; embedded-tls
    // reports any alert but close_notify as InternalError, and the alert
    // is lost altogether when the close overtakes it (a reset). A
    // close_notify is no such refusal: the server ended the session in
    // order (a broker refusing the CONNECT without a CONNACK).
    if first && close_notify && matches!(error, TlsStackError::Closed) {
        return TlsStackError::ClosedByServer;
    }
    match error {
        TlsStackError::Tls(TlsError::InternalError)
        | TlsStackError::Closed
        | TlsStackError::Network(_)
            if first =>
        {
            TlsStackError::AbortedAfterHandshake { client_certificate }
        }
        error => error,
    }
}

/// What a failed read or write of the open session means.
pub(super) fn session_error<E>(
    e: TlsError,
    outcome: IoOutcome,
    read_len: usize,
) -> TlsStackError<E> {
    match (e, outcome) {
        (_, IoOutcome::TimedOut) => TlsStackError::TimedOut,
        (_, IoOutcome::NotTls) => TlsStackError::NotTls,
        (_, IoOutcome::Network(TcpErrorKind::PipeClosed)) => TlsStackError::Closed,
        (_, IoOutcome::Network(kind)) => TlsStackError::Network(kind),
        (TlsError::ConnectionClosed | TlsError::IoError, _) => TlsStackError::Closed,
        (TlsError::HandshakeAborted(_, AlertDescription::CloseNotify), _) => TlsStackError::Closed,
        (TlsError::AbortHandshake(_, AlertDescription::UnexpectedMessage), _) => {
            TlsStackError::UnexpectedMessage
        }
        (TlsError::InvalidRecord, _) => TlsStackError::MalformedRecord,
        (TlsError::HandshakeAborted(_, alert) | TlsError::AbortHandshake(_, alert), _) => {
            TlsStackError::Alert(alert)
        }
        (TlsError::InsufficientSpace, _) => TlsStackError::RecordTooLarge { buffer: read_len },
        (e, _) => TlsStackError::Tls(e),
    }
}
