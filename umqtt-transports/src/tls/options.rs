//! [`TlsOptions`]: the server name, what to trust, and the session's options.

use super::MaxFragmentLength;

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
    pub(super) server_name: &'a str,
    pub(super) cas: Anchors<'a>,
    pub(super) skip_verification: bool,
    pub(super) client: Option<(&'a [u8], &'a [u8])>,
    pub(super) alpn: Option<&'a [&'a [u8]]>,
    pub(super) max_fragment_length: Option<MaxFragmentLength>,
    pub(super) handshake_timeout_ms: u32,
    pub(super) io_timeout_ms: u32,
}

impl<'a> TlsOptions<'a> {
    /// The default handshake timeout: 10 s.
    pub const DEFAULT_HANDSHAKE_TIMEOUT_MS: u32 = 10_000;
    /// The default I/O timeout: 10 s.
    pub const DEFAULT_IO_TIMEOUT_MS: u32 = 10_000;

    /// Options for a server called `server_name`: a DNS name (checked against
    /// the certificate's DNS names and sent as SNI) or an IP address such as
    /// `192.0.2.7` or `::1` (checked against its IP address SANs only; no SNI
    /// is sent, as RFC 6066 forbids an address there). Trust nothing yet: set
    /// [`Self::ca`] or [`Self::cas`].
    pub fn new(server_name: &'a str) -> Self {
        TlsOptions {
            server_name,
            cas: Anchors::None,
            skip_verification: false,
            client: None,
            alpn: None,
            max_fragment_length: None,
            handshake_timeout_ms: Self::DEFAULT_HANDSHAKE_TIMEOUT_MS,
            io_timeout_ms: Self::DEFAULT_IO_TIMEOUT_MS,
        }
    }

    /// Trusts the CA certificate `der` (DER; [`pem::decode`](super::pem::decode) converts PEM),
    /// and no other.
    #[must_use]
    pub fn ca(mut self, der: &'a [u8]) -> Self {
        self.cas = Anchors::One(der);
        self
    }

    /// Trusts each of the CA certificates `ders` (DER; a bundle such as a
    /// `--cafile` with several CAs, or a CA before and after a rollover), and
    /// no other. The server's chain is checked against the ones whose
    /// subject is the issuer of the chain's top certificate.
    ///
    /// ```
    /// use umqtt_transports::tls::TlsOptions;
    ///
    /// let (old_ca, new_ca): (&[u8], &[u8]) = (&[1], &[2]);
    /// let cas = [old_ca, new_ca];
    /// let options = TlsOptions::new("broker.local").cas(&cas);
    /// assert_eq!(options.trust_anchors().count(), 2);
    /// ```
    #[must_use]
    pub fn cas(mut self, ders: &'a [&'a [u8]]) -> Self {
        self.cas = Anchors::Many(ders);
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

    /// The trusted CA certificates (DER), as given to [`Self::ca`] or
    /// [`Self::cas`].
    pub fn trust_anchors(&self) -> impl Iterator<Item = &'a [u8]> + Clone + use<'a> {
        self.cas.iter()
    }
}

/// The trusted CA certificates: one, or a caller's slice of them (no heap).
#[derive(Debug, Clone, Copy)]
pub(super) enum Anchors<'a> {
    None,
    One(&'a [u8]),
    Many(&'a [&'a [u8]]),
}

impl<'a> Anchors<'a> {
    pub(super) fn iter(self) -> impl Iterator<Item = &'a [u8]> + Clone {
        let (one, many): (Option<&'a [u8]>, &'a [&'a [u8]]) = match self {
            Anchors::None => (None, &[]),
            Anchors::One(der) => (Some(der), &[]),
            Anchors::Many(ders) => (None, ders),
        };
        one.into_iter().chain(many.iter().copied())
    }

    pub(super) fn is_empty(self) -> bool {
        self.iter().next().is_none()
    }
}
