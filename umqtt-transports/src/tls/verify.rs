//! The glue between [`chain`](super::chain) and embedded-tls: a
//! [`TlsVerifier`] that runs the chain checks, then lets rustpki (embedded-tls
//! `rustpki`) verify the signatures, and remembers why it refused.
//!
//! rustpki verifies each signature of the chain up to the trust anchor, and
//! then the server's CertificateVerify signature. It also checks the host
//! name, more narrowly (the first 3 DNS SANs and the CN, no IP SANs); since
//! [`chain::check`] has already decided the name over every SAN, rustpki is
//! given one of the leaf's own names ([`chain::rustpki_host`]), so its check
//! agrees instead of deciding, and a name mismatch is always reported as
//! [`CertError::NameMismatch`].

use core::fmt;

use embedded_tls::blocking::{
    CertificateEntryRef, CertificateRef, CertificateVerifyRef, TlsCipherSuite, TlsError,
    TlsVerifier,
};
use embedded_tls::pki::CertVerifier;

use super::chain::{self, Host, RUSTPKI_NAME_MAX};
use super::options::Anchors;

/// A source of wall-clock time for certificate validity, in seconds since
/// the Unix epoch; `None` when the time is not known (then dates are not
/// checked).
pub trait TlsTime {
    /// The current time in Unix seconds, if known.
    fn unix_now(&self) -> Option<u64>;
}

impl<T: TlsTime + ?Sized> TlsTime for &T {
    fn unix_now(&self) -> Option<u64> {
        (**self).unix_now()
    }
}

/// No wall clock: validity dates are not checked.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoTime;

impl TlsTime for NoTime {
    fn unix_now(&self) -> Option<u64> {
        None
    }
}

/// The system clock (feature `tls-std`).
#[cfg(feature = "std")]
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemTime;

#[cfg(feature = "std")]
impl TlsTime for SystemTime {
    fn unix_now(&self) -> Option<u64> {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .ok()
            .map(|d| d.as_secs())
    }
}

/// Why the server's certificate was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum CertError {
    /// A signature in the chain does not verify with its issuer's key (up to
    /// the trusted CA).
    NotTrusted,
    /// The chain's top certificate was issued by none of the trusted CAs.
    UnknownIssuer,
    /// The certificate is not valid for the server name asked for (checked
    /// against every SAN).
    NameMismatch,
    /// A certificate of the chain (or the trusted CA) has expired.
    Expired,
    /// A certificate of the chain (or the trusted CA) is not valid yet.
    NotYetValid,
    /// A certificate that is not a CA (basicConstraints) signed another one.
    IssuerNotCa,
    /// The trusted CA certificate given is not a CA (basicConstraints).
    TrustAnchorNotCa,
    /// A CA allows fewer intermediate CAs below it than the chain has
    /// (basicConstraints pathLenConstraint).
    PathLenExceeded,
    /// The server certificate has a keyUsage without digitalSignature.
    LeafKeyUsage,
    /// A CA certificate has a keyUsage without keyCertSign.
    CaKeyUsage,
    /// The server certificate (or an intermediate CA) has an
    /// extendedKeyUsage without serverAuth (or anyExtendedKeyUsage).
    ExtendedKeyUsage,
    /// A certificate has a critical extension this verifier does not
    /// process (name constraints, policy constraints, ...).
    UnsupportedCriticalExtension,
    /// A CN or one of the first 3 DNS SANs of a certificate in the chain is
    /// longer than 64 bytes (or a DNS SAN is not UTF-8): rustpki, which
    /// checks the signatures, cannot read it.
    NameTooLong,
    /// The server certificate names the host, but none of the names rustpki
    /// reads (its first 3 DNS SANs and its CN) has a form rustpki can match,
    /// so the signatures cannot be checked.
    NoMatchableName,
    /// A certificate could not be parsed.
    Malformed,
    /// The server sent a raw public key, not a certificate.
    NotX509,
    /// The chain is larger than the verifier's certificate buffer.
    ChainTooLarge,
}

impl fmt::Display for CertError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            CertError::NotTrusted => {
                "the server certificate is not trusted: a signature in its chain does not verify up to the given CA"
            }
            CertError::UnknownIssuer => {
                "the server certificate is not trusted: its chain was issued by none of the given CA certificates"
            }
            CertError::NameMismatch => "the server certificate is not valid for the server name",
            CertError::Expired => "the server certificate (or one of its issuers) has expired",
            CertError::NotYetValid => {
                "the server certificate (or one of its issuers) is not valid yet"
            }
            CertError::IssuerNotCa => {
                "a certificate in the server's chain was signed by a certificate that is not a CA"
            }
            CertError::TrustAnchorNotCa => {
                "the CA certificate given is not a CA (basicConstraints)"
            }
            CertError::PathLenExceeded => {
                "a CA in the server's chain has more intermediate CAs below it than its pathLenConstraint allows"
            }
            CertError::LeafKeyUsage => {
                "the server certificate's keyUsage does not allow digitalSignature"
            }
            CertError::CaKeyUsage => {
                "a CA certificate in the server's chain has a keyUsage without keyCertSign"
            }
            CertError::ExtendedKeyUsage => {
                "the server's chain has an extendedKeyUsage without serverAuth (not for TLS servers)"
            }
            CertError::UnsupportedCriticalExtension => {
                "a certificate in the server's chain has a critical extension this client does not check (e.g. name constraints)"
            }
            CertError::NameTooLong => {
                "a certificate in the server's chain has a CN or DNS name longer than 64 bytes, which the verifier cannot read"
            }
            CertError::NoMatchableName => {
                "the server certificate's first 3 DNS names and CN are all in a form the signature verifier (rustpki) cannot match"
            }
            CertError::Malformed => "a certificate in the server's chain could not be parsed",
            CertError::NotX509 => "the server sent a raw public key, not an X.509 certificate",
            CertError::ChainTooLarge => {
                "the server's certificate chain is larger than the verifier's buffer (CERT_SIZE)"
            }
        })
    }
}

impl core::error::Error for CertError {}

/// The chain checks, then rustpki's signatures against the trust anchor
/// whose subject is the chain's top issuer; remembers why it refused.
pub(crate) struct Verifier<'a, CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> {
    /// rustpki's verifier for the anchor that verified the chain.
    inner: Option<CertVerifier<'a, CS, embedded_tls::blocking::NoClock, CERT_SIZE>>,
    anchors: Anchors<'a>,
    time: T,
    host: Host<'a>,
    failure: Option<CertError>,
}

impl<'a, CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> Verifier<'a, CS, T, CERT_SIZE> {
    pub(crate) fn new(anchors: Anchors<'a>, host: &'a str, time: T) -> Self {
        Verifier {
            inner: None,
            anchors,
            time,
            host: Host::parse(host),
            failure: None,
        }
    }

    /// Why verification failed, if it did.
    pub(crate) fn failure(&self) -> Option<CertError> {
        self.failure
    }

    fn refuse(&mut self, e: CertError) -> TlsError {
        log::warn!("TLS: {e}");
        self.failure = Some(e);
        TlsError::InvalidCertificate
    }

    /// The chain checks, then rustpki's signatures against the first trust
    /// anchor that issued the chain's top certificate (its subject is the
    /// top's issuer and, when both say, its key identifier the top's
    /// authority key identifier) and passes the checks. rustpki takes the
    /// chain only once, so two anchors with the same subject and no key
    /// identifiers cannot both be tried.
    fn verify(&mut self, transcript: &CS::Hash, cert: CertificateRef<'_>) -> Result<(), CertError> {
        if cert
            .entries
            .iter()
            .any(|e| !matches!(e, CertificateEntryRef::X509(_)))
        {
            return Err(CertError::NotX509);
        }
        let ders = cert.entries.iter().filter_map(|e| match e {
            CertificateEntryRef::X509(der) => Some(*der),
            CertificateEntryRef::RawPublicKey(_) => None,
        });
        let leaf = ders.clone().next().ok_or(CertError::Malformed)?;
        let top = chain::parse(ders.clone().next_back().ok_or(CertError::Malformed)?)?;
        let now = self.time.unix_now();
        // The first anchor that issued the top certificate and passes the
        // checks; else the first anchor's refusal.
        let mut refusal = None;
        let mut chosen = None;
        for anchor in self.anchors.iter() {
            if !chain::parse(anchor).is_ok_and(|a| a.issued(&top)) {
                continue;
            }
            match chain::check(ders.clone(), anchor, self.host, now) {
                Ok(()) => {
                    chosen = Some(anchor);
                    break;
                }
                Err(e) => {
                    refusal.get_or_insert(e);
                }
            }
        }
        let anchor = match (chosen, refusal) {
            (Some(anchor), _) => anchor,
            (None, Some(e)) => return Err(e),
            (None, None) => return Err(CertError::UnknownIssuer),
        };
        let mut name = [0u8; RUSTPKI_NAME_MAX];
        let name = chain::rustpki_host(leaf, &mut name)?;
        let mut inner = CertVerifier::new(embedded_tls::blocking::Certificate::X509(anchor));
        if let Some(name) = name {
            TlsVerifier::<CS>::set_hostname_verification(&mut inner, name)
                .map_err(|_| CertError::NameTooLong)?;
        }
        match inner.verify_certificate(transcript, cert) {
            Ok(()) => {
                self.inner = Some(inner);
                Ok(())
            }
            Err(TlsError::OutOfMemory) => Err(CertError::ChainTooLarge),
            Err(TlsError::DecodeError | TlsError::ParseError(_)) => Err(CertError::Malformed),
            Err(_) => Err(CertError::NotTrusted),
        }
    }
}

impl<CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> TlsVerifier<CS>
    for Verifier<'_, CS, T, CERT_SIZE>
{
    /// The host was given to [`Verifier::new`]; rustpki is given one of the
    /// leaf's own names (see the module docs).
    fn set_hostname_verification(&mut self, _hostname: &str) -> Result<(), TlsError> {
        Ok(())
    }

    fn verify_certificate(
        &mut self,
        transcript: &CS::Hash,
        cert: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        self.inner = None;
        self.verify(transcript, cert).map_err(|e| self.refuse(e))
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        let Some(inner) = self.inner.as_mut() else {
            log::warn!("TLS: CertificateVerify without a verified Certificate");
            return Err(TlsError::InvalidCertificate);
        };
        inner.verify_signature(verify).inspect_err(|e| {
            log::warn!("TLS: the server's CertificateVerify signature is invalid: {e:?}");
        })
    }
}
