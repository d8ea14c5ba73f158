//! [`RustlsOptions`]: the server name, what to trust, and the session's
//! options; turned into a rustls `ClientConfig` once, by [`RustlsStack::new`](super::RustlsStack::new).

use core::fmt;
use std::borrow::ToOwned;
use std::string::{String, ToString};
use std::sync::Arc;
use std::vec::Vec;

use ::rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use ::rustls::crypto::WebPkiSupportedAlgorithms;
use ::rustls::pki_types::pem::PemObject;
use ::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use ::rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::ConfigError;

/// Which TLS versions to offer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TlsVersions {
    /// TLS 1.2 and TLS 1.3 (the server picks; 1.3 when it can).
    #[default]
    Both,
    /// TLS 1.2 only.
    Tls12,
    /// TLS 1.3 only.
    Tls13,
}

impl fmt::Display for TlsVersions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TlsVersions::Both => "TLS 1.2 and 1.3",
            TlsVersions::Tls12 => "TLS 1.2 only",
            TlsVersions::Tls13 => "TLS 1.3 only",
        })
    }
}

/// What the server's certificate must lead to.
#[derive(Debug, Clone, Default)]
enum Roots {
    /// Nothing chosen yet: `RustlsStack::new` refuses.
    #[default]
    None,
    /// These CA certificates (DER).
    Cas(Vec<CertificateDer<'static>>),
    /// The OS trust store (with `SSL_CERT_FILE` / `SSL_CERT_DIR` when set).
    System,
    /// Anything: no verification.
    Insecure,
}

/// How to connect with [`RustlsStack`](super::RustlsStack): the server name,
/// what to trust, and options.
///
/// ```
/// use umqtt_transports::rustls::{RustlsOptions, TlsVersions};
///
/// let options = RustlsOptions::new("broker.example.com")
///     .system_roots()
///     .alpn(&[b"x-amzn-mqtt-ca"])
///     .versions(TlsVersions::Tls12)
///     .handshake_timeout_ms(5_000);
/// assert_eq!(options.server_name(), "broker.example.com");
/// ```
pub struct RustlsOptions {
    server_name: String,
    roots: Roots,
    client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    alpn: Vec<Vec<u8>>,
    versions: TlsVersions,
    handshake_timeout_ms: u32,
    io_timeout_ms: u32,
}

impl fmt::Debug for RustlsOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the client key.
        f.debug_struct("RustlsOptions")
            .field("server_name", &self.server_name)
            .field("roots", &self.roots_kind())
            .field("client_certificate", &self.client.is_some())
            .field("alpn", &self.alpn)
            .field("versions", &self.versions)
            .field("handshake_timeout_ms", &self.handshake_timeout_ms)
            .field("io_timeout_ms", &self.io_timeout_ms)
            .finish()
    }
}

impl Clone for RustlsOptions {
    fn clone(&self) -> Self {
        RustlsOptions {
            server_name: self.server_name.clone(),
            roots: self.roots.clone(),
            client: self
                .client
                .as_ref()
                .map(|(chain, key)| (chain.clone(), key.clone_key())),
            alpn: self.alpn.clone(),
            versions: self.versions,
            handshake_timeout_ms: self.handshake_timeout_ms,
            io_timeout_ms: self.io_timeout_ms,
        }
    }
}

impl RustlsOptions {
    /// The default handshake timeout (TCP connect included): 10 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10_000;
    /// The default I/O timeout: 10 s.
    pub const DEFAULT_IO_TIMEOUT_MS: u32 = 10_000;

    /// Options for a server called `server_name`: a DNS name (checked against
    /// the certificate and sent as SNI) or an IP address (checked against its
    /// IP address SANs; no SNI). Trust nothing yet: set [`Self::ca_der`],
    /// [`Self::ca_pem`], [`Self::system_roots`] or
    /// [`Self::dangerously_skip_verification`].
    pub fn new(server_name: &str) -> Self {
        RustlsOptions {
            server_name: server_name.to_owned(),
            roots: Roots::None,
            client: None,
            alpn: Vec::new(),
            versions: TlsVersions::Both,
            handshake_timeout_ms: Self::DEFAULT_HANDSHAKE_TIMEOUT_MS,
            io_timeout_ms: Self::DEFAULT_IO_TIMEOUT_MS,
        }
    }

    /// Trusts the CA certificate `der` too (DER); call again for more.
    #[must_use]
    pub fn ca_der(mut self, der: &[u8]) -> Self {
        let cert = CertificateDer::from(der.to_vec());
        match &mut self.roots {
            Roots::Cas(cas) => cas.push(cert),
            _ => self.roots = Roots::Cas(std::vec![cert]),
        }
        self
    }

    /// Trusts every CA certificate of the PEM text `pem` too (a `--cafile`
    /// bundle). Fails if it holds none.
    pub fn ca_pem(mut self, pem: &[u8]) -> Result<Self, ConfigError> {
        let mut found = 0;
        for cert in CertificateDer::pem_slice_iter(pem) {
            let cert = cert.map_err(|e| ConfigError::BadCa(e.to_string()))?;
            self = self.ca_der(&cert);
            found += 1;
        }
        if found == 0 {
            return Err(ConfigError::BadCa("no PEM certificate in it".to_owned()));
        }
        Ok(self)
    }

    /// Trusts the OS trust store: the files named by `SSL_CERT_FILE` and
    /// `SSL_CERT_DIR` when either is set (as OpenSSL does), else the
    /// system's (on Linux the distribution's bundle, on macOS the keychain,
    /// on Windows the system store). Read once, by
    /// [`RustlsStack::new`](super::RustlsStack::new).
    #[must_use]
    pub fn system_roots(mut self) -> Self {
        self.roots = Roots::System;
        self
    }

    /// Accepts any certificate for any name: anyone on the path can read and
    /// change the traffic. For tests against a broker with a throwaway
    /// certificate only; each connect logs a warning. (The server must still
    /// sign the handshake with the key of the certificate it sent.)
    #[must_use]
    pub fn dangerously_skip_verification(mut self) -> Self {
        self.roots = Roots::Insecure;
        self
    }

    /// Presents the certificate chain `chain` (DER, the client's first) and
    /// proves it with `key` (DER: PKCS#8, SEC1 or PKCS#1; RSA, ECDSA P-256 or
    /// P-384, or Ed25519) when the server asks (mutual TLS).
    #[must_use]
    pub fn client_certificate_der(mut self, chain: &[&[u8]], key: PrivateKeyDer<'static>) -> Self {
        let chain = chain
            .iter()
            .map(|c| CertificateDer::from(c.to_vec()))
            .collect();
        self.client = Some((chain, key));
        self
    }

    /// [`Self::client_certificate_der`] from PEM: every certificate of
    /// `cert_pem` (the client's first), the first private key of `key_pem`
    /// (`PRIVATE KEY`, `EC PRIVATE KEY` or `RSA PRIVATE KEY`).
    pub fn client_certificate_pem(
        self,
        cert_pem: &[u8],
        key_pem: &[u8],
    ) -> Result<Self, ConfigError> {
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<_, _>>()
            .map_err(|e| ConfigError::BadClientCertificate(e.to_string()))?;
        if chain.is_empty() {
            return Err(ConfigError::BadClientCertificate(
                "no PEM certificate in it".to_owned(),
            ));
        }
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .map_err(|e| ConfigError::BadClientKey(e.to_string()))?;
        let refs: Vec<&[u8]> = chain.iter().map(|c| c.as_ref()).collect();
        Ok(self.client_certificate_der(&refs, key))
    }

    /// Offers these ALPN protocols, most preferred first (AWS IoT on port
    /// 443 needs `x-amzn-mqtt-ca`). A server that speaks none of them
    /// refuses the handshake ([`RustlsError::AlpnRefused`](super::RustlsError::AlpnRefused)).
    #[must_use]
    pub fn alpn(mut self, protocols: &[&[u8]]) -> Self {
        self.alpn = protocols.iter().map(|p| p.to_vec()).collect();
        self
    }

    /// Which TLS versions to offer (default both).
    #[must_use]
    pub fn versions(mut self, versions: TlsVersions) -> Self {
        self.versions = versions;
        self
    }

    /// How long `connect` may take: the inner stack's TCP connect and the
    /// whole handshake (the TCP connect is bounded by the inner stack's own
    /// timeout too). Keep it at or below the client's connect timeout (both
    /// default to 10 s), so that one deadline spans TCP, TLS and CONNACK.
    #[must_use]
    pub fn handshake_timeout_ms(mut self, ms: u32) -> Self {
        self.handshake_timeout_ms = ms;
        self
    }

    /// How long a `send` may take to hand its records to the inner stack.
    #[must_use]
    pub fn io_timeout_ms(mut self, ms: u32) -> Self {
        self.io_timeout_ms = ms;
        self
    }

    /// The server name.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The TLS versions offered.
    pub fn tls_versions(&self) -> TlsVersions {
        self.versions
    }

    /// The handshake timeout.
    pub fn handshake_timeout(&self) -> u32 {
        self.handshake_timeout_ms
    }

    /// The I/O timeout.
    pub fn io_timeout(&self) -> u32 {
        self.io_timeout_ms
    }

    fn roots_kind(&self) -> &'static str {
        match &self.roots {
            Roots::None => "none",
            Roots::Cas(_) => "CA certificates",
            Roots::System => "system",
            Roots::Insecure => "NOT VERIFIED",
        }
    }

    /// Whether verification is skipped.
    pub(super) fn insecure(&self) -> bool {
        matches!(self.roots, Roots::Insecure)
    }

    /// Whether a client certificate is set.
    pub(super) fn has_client_certificate(&self) -> bool {
        self.client.is_some()
    }

    /// The rustls configuration and the server name these options make.
    pub(super) fn build(&self) -> Result<(Arc<ClientConfig>, ServerName<'static>), ConfigError> {
        let server_name = ServerName::try_from(self.server_name.clone())
            .map_err(|_| ConfigError::BadServerName(self.server_name.clone()))?;
        let provider = Arc::new(::rustls::crypto::ring::default_provider());
        let versions: &[&'static ::rustls::SupportedProtocolVersion] = match self.versions {
            TlsVersions::Both => &[&::rustls::version::TLS13, &::rustls::version::TLS12],
            TlsVersions::Tls12 => &[&::rustls::version::TLS12],
            TlsVersions::Tls13 => &[&::rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(versions)
            .map_err(ConfigError::Tls)?;
        let builder = match &self.roots {
            Roots::None => return Err(ConfigError::NoTrustAnchor),
            Roots::Insecure => builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(SkipVerification(
                    provider.signature_verification_algorithms,
                ))),
            Roots::Cas(cas) => builder.with_root_certificates(root_store(cas)?),
            Roots::System => builder.with_root_certificates(system_store()?),
        };
        let mut config = match &self.client {
            None => builder.with_no_client_auth(),
            Some((chain, key)) => builder
                .with_client_auth_cert(chain.clone(), key.clone_key())
                .map_err(|e| ConfigError::BadClientKey(e.to_string()))?,
        };
        config.alpn_protocols = self.alpn.clone();
        Ok((Arc::new(config), server_name))
    }
}

/// A root store of `cas`; each must parse.
fn root_store(cas: &[CertificateDer<'static>]) -> Result<RootCertStore, ConfigError> {
    let mut store = RootCertStore::empty();
    for ca in cas {
        store
            .add(ca.clone())
            .map_err(|e| ConfigError::BadCa(e.to_string()))?;
    }
    Ok(store)
}

/// The OS trust store; an error if it holds no usable certificate.
fn system_store() -> Result<RootCertStore, ConfigError> {
    let found = rustls_native_certs::load_native_certs();
    let mut store = RootCertStore::empty();
    let (added, _ignored) = store.add_parsable_certificates(found.certs);
    for e in &found.errors {
        log::debug!("system trust store: {e}");
    }
    if added == 0 {
        let why = found
            .errors
            .first()
            .map_or_else(|| "no certificate in it".to_owned(), ToString::to_string);
        return Err(ConfigError::NoSystemRoots(why));
    }
    log::debug!("system trust store: {added} CA certificates");
    Ok(store)
}

/// The verifier of [`RustlsOptions::dangerously_skip_verification`]: any
/// certificate, any name; the handshake signatures are still checked
/// against the certificate sent.
#[derive(Debug)]
struct SkipVerification(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for SkipVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, ::rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, ::rustls::Error> {
        ::rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, ::rustls::Error> {
        ::rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}
