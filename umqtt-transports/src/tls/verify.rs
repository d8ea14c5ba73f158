//! Certificate checks that rustpki (embedded-tls `rustpki`) leaves out, done
//! without a heap before handing the chain to rustpki, and the reason a
//! verification failed.
//!
//! rustpki verifies each signature of the chain up to the trusted CA and the
//! server name (DNS SANs and CN), but:
//! - it accepts any certificate of the chain as an issuer: a leaf of the
//!   trusted CA could sign a certificate for any name. Here every issuer (each
//!   certificate after the first, and the trusted CA) must say `CA:TRUE` in
//!   basicConstraints.
//! - it checks validity dates only with a clock type, and has none on
//!   `no_std`. Here they are checked against [`TlsTime`] when the user gives
//!   one (std: the system clock by default).
//!
//! Gaps that remain (documented in the README): key usage and extended key
//! usage are not checked, nor path length constraints, name constraints or
//! revocation; IP address SANs are not supported (the server name must be a
//! DNS name); rustpki reads only the first 3 DNS SANs; an unknown critical
//! extension is not refused.

use core::fmt;

use embedded_tls::blocking::{
    CertificateEntryRef, CertificateRef, CertificateVerifyRef, TlsCipherSuite, TlsError,
    TlsVerifier,
};
use embedded_tls::pki::CertVerifier;

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
    /// The chain does not lead to the trusted CA (a signature does not verify).
    NotTrusted,
    /// The certificate is not valid for the server name asked for.
    NameMismatch,
    /// A certificate of the chain has expired.
    Expired,
    /// A certificate of the chain is not valid yet.
    NotYetValid,
    /// A certificate that is not a CA (basicConstraints) signed another one.
    IssuerNotCa,
    /// The trusted CA certificate given is not a CA (basicConstraints).
    TrustAnchorNotCa,
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
                "the server certificate is not trusted (not signed by the given CA)"
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
            CertError::Malformed => "a certificate in the server's chain could not be parsed",
            CertError::NotX509 => "the server sent a raw public key, not an X.509 certificate",
            CertError::ChainTooLarge => {
                "the server's certificate chain is larger than the verifier's buffer (CERT_SIZE)"
            }
        })
    }
}

impl core::error::Error for CertError {}

/// rustpki's verifier with the checks above in front, remembering why it
/// refused.
pub(crate) struct Verifier<'a, CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> {
    inner: CertVerifier<'a, CS, embedded_tls::blocking::NoClock, CERT_SIZE>,
    ca: &'a [u8],
    time: T,
    host: &'a str,
    failure: Option<CertError>,
}

impl<'a, CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> Verifier<'a, CS, T, CERT_SIZE> {
    pub(crate) fn new(ca_der: &'a [u8], host: &'a str, time: T) -> Self {
        Verifier {
            inner: CertVerifier::new(embedded_tls::blocking::Certificate::X509(ca_der)),
            ca: ca_der,
            time,
            host,
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

    fn check(&self, cert: &CertificateRef<'_>) -> Result<(), CertError> {
        let ca = parse(self.ca).ok_or(CertError::Malformed)?;
        if !ca.is_ca {
            return Err(CertError::TrustAnchorNotCa);
        }
        let now = self.time.unix_now();
        let mut leaf_names = None;
        for (i, entry) in cert.entries.iter().enumerate() {
            let CertificateEntryRef::X509(der) = entry else {
                return Err(CertError::NotX509);
            };
            let parsed = parse(der).ok_or(CertError::Malformed)?;
            if i > 0 && !parsed.is_ca {
                return Err(CertError::IssuerNotCa);
            }
            if let Some(now) = now {
                if now < parsed.not_before {
                    return Err(CertError::NotYetValid);
                }
                if now > parsed.not_after {
                    return Err(CertError::Expired);
                }
            }
            if i == 0 {
                leaf_names = Some(parsed.names_match(self.host));
            }
        }
        match leaf_names {
            Some(true) => Ok(()),
            Some(false) => Err(CertError::NameMismatch),
            None => Err(CertError::Malformed),
        }
    }
}

impl<CS: TlsCipherSuite, T: TlsTime, const CERT_SIZE: usize> TlsVerifier<CS>
    for Verifier<'_, CS, T, CERT_SIZE>
{
    fn set_hostname_verification(&mut self, hostname: &str) -> Result<(), TlsError> {
        TlsVerifier::<CS>::set_hostname_verification(&mut self.inner, hostname)
    }

    fn verify_certificate(
        &mut self,
        transcript: &CS::Hash,
        cert: CertificateRef<'_>,
    ) -> Result<(), TlsError> {
        if let Err(e) = self.check(&cert) {
            return Err(self.refuse(e));
        }
        match self.inner.verify_certificate(transcript, cert) {
            Ok(()) => Ok(()),
            Err(TlsError::OutOfMemory) => Err(self.refuse(CertError::ChainTooLarge)),
            Err(TlsError::DecodeError | TlsError::ParseError(_)) => {
                Err(self.refuse(CertError::Malformed))
            }
            Err(_) => Err(self.refuse(CertError::NotTrusted)),
        }
    }

    fn verify_signature(&mut self, verify: CertificateVerifyRef<'_>) -> Result<(), TlsError> {
        self.inner.verify_signature(verify).inspect_err(|e| {
            log::warn!("TLS: the server's CertificateVerify signature is invalid: {e:?}");
        })
    }
}

/// What the checks need from one certificate.
struct Parsed<'d> {
    is_ca: bool,
    not_before: u64,
    not_after: u64,
    /// The extensions' DER (the content of `[3]`), if any.
    extensions: Option<&'d [u8]>,
    /// The subject's DER.
    subject: &'d [u8],
}

impl Parsed<'_> {
    /// Whether `host` matches a DNS SAN, or, with no DNS SAN, the CN.
    fn names_match(&self, host: &str) -> bool {
        let mut had_san = false;
        if let Some(san) = self.extensions.and_then(|e| extension(e, &SAN_OID))
            && let Some((0x30, mut names, _)) = tlv(san)
        {
            while let Some((tag, value, rest)) = tlv(names) {
                if tag == 0x82 {
                    had_san = true;
                    if name_matches(value, host.as_bytes()) {
                        return true;
                    }
                }
                names = rest;
            }
        }
        if had_san {
            return false;
        }
        common_name(self.subject).is_some_and(|cn| name_matches(cn, host.as_bytes()))
    }
}

const BASIC_CONSTRAINTS_OID: [u8; 3] = [0x55, 0x1d, 0x13];
const SAN_OID: [u8; 3] = [0x55, 0x1d, 0x11];
const CN_OID: [u8; 3] = [0x55, 0x04, 0x03];

/// One DER TLV: `(tag, content, rest)`.
fn tlv(input: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = input.split_first()?;
    let (&first, mut rest) = rest.split_first()?;
    let len = if first < 0x80 {
        usize::from(first)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 3 {
            return None;
        }
        let (bytes, after) = rest.split_at_checked(n)?;
        rest = after;
        bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b))
    };
    let (content, rest) = rest.split_at_checked(len)?;
    Some((tag, content, rest))
}

/// Parses what the checks need from a DER certificate.
fn parse(der: &[u8]) -> Option<Parsed<'_>> {
    let (0x30, cert, _) = tlv(der)? else {
        return None;
    };
    let (0x30, mut tbs, _) = tlv(cert)? else {
        return None;
    };
    let mut next = || -> Option<(u8, &[u8])> {
        let (tag, content, rest) = tlv(tbs)?;
        tbs = rest;
        Some((tag, content))
    };
    let mut field = next()?;
    if field.0 == 0xa0 {
        field = next()?; // version
    }
    let _serial = field;
    let _signature = next()?;
    let _issuer = next()?;
    let (0x30, validity) = next()? else {
        return None;
    };
    let (t1, nb, rest) = tlv(validity)?;
    let (t2, na, _) = tlv(rest)?;
    let not_before = time(t1, nb)?;
    let not_after = time(t2, na)?;
    let (0x30, subject) = next()? else {
        return None;
    };
    let _spki = next()?;
    let mut extensions = None;
    while let Some((tag, content)) = next() {
        if tag == 0xa3 {
            let (0x30, exts, _) = tlv(content)? else {
                return None;
            };
            extensions = Some(exts);
        }
    }
    let is_ca = extensions
        .and_then(|e| extension(e, &BASIC_CONSTRAINTS_OID))
        .and_then(|bc| {
            let (0x30, seq, _) = tlv(bc)? else {
                return None;
            };
            match tlv(seq) {
                Some((0x01, [v], _)) => Some(*v != 0),
                _ => Some(false),
            }
        })
        .unwrap_or(false);
    Some(Parsed {
        is_ca,
        not_before,
        not_after,
        extensions,
        subject,
    })
}

/// The value (content of the OCTET STRING) of the extension `oid`.
fn extension<'d>(mut exts: &'d [u8], oid: &[u8]) -> Option<&'d [u8]> {
    while let Some((_, ext, rest)) = tlv(exts) {
        exts = rest;
        let Some((0x06, id, mut body)) = tlv(ext) else {
            continue;
        };
        if id != oid {
            continue;
        }
        if let Some((0x01, _, after)) = tlv(body) {
            body = after; // critical
        }
        let (0x04, value, _) = tlv(body)? else {
            return None;
        };
        return Some(value);
    }
    None
}

/// The first CN of a subject.
fn common_name(mut subject: &[u8]) -> Option<&[u8]> {
    while let Some((_, set, rest)) = tlv(subject) {
        subject = rest;
        let Some((0x30, atv, _)) = tlv(set) else {
            continue;
        };
        let Some((0x06, oid, value)) = tlv(atv) else {
            continue;
        };
        if oid == CN_OID {
            return tlv(value).map(|(_, v, _)| v);
        }
    }
    None
}

/// RFC 6125 matching, case-insensitive: exact, or `*.` + the host's name
/// without its first label.
fn name_matches(pattern: &[u8], host: &[u8]) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    match (
        pattern.strip_prefix(b"*."),
        host.iter().position(|b| *b == b'.'),
    ) {
        (Some(suffix), Some(dot)) => {
            dot > 0
                && suffix.contains(&b'.')
                && host
                    .get(dot + 1..)
                    .is_some_and(|h| h.eq_ignore_ascii_case(suffix))
        }
        _ => false,
    }
}

/// A UTCTime (`0x17`, `YYMMDDHHMMSSZ`) or GeneralizedTime (`0x18`,
/// `YYYYMMDDHHMMSSZ`) in Unix seconds.
fn time(tag: u8, s: &[u8]) -> Option<u64> {
    let digits = |r: core::ops::Range<usize>| -> Option<u64> {
        s.get(r)?.iter().try_fold(0u64, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u64::from(b - b'0'))
        })
    };
    let (year, rest) = match tag {
        0x17 => {
            let yy = digits(0..2)?;
            (if yy < 50 { 2000 + yy } else { 1900 + yy }, 2)
        }
        0x18 => (digits(0..4)?, 4),
        _ => return None,
    };
    if s.get(rest + 10) != Some(&b'Z') {
        return None;
    }
    let month = digits(rest..rest + 2)?;
    let day = digits(rest + 2..rest + 4)?;
    let hour = digits(rest + 4..rest + 6)?;
    let min = digits(rest + 6..rest + 8)?;
    let sec = digits(rest + 8..rest + 10)?;
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || year < 1970 {
        return None;
    }
    // Days from civil (Howard Hinnant's algorithm).
    let (y, m) = if month <= 2 {
        (year - 1, month + 9)
    } else {
        (year, month - 3)
    };
    let era = y / 400;
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400 + hour * 3600 + min * 60 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_convert_to_unix_seconds() {
        assert_eq!(time(0x17, b"700101000000Z"), Some(0));
        assert_eq!(time(0x17, b"000301000000Z"), Some(951_868_800));
        assert_eq!(time(0x18, b"20380119031408Z"), Some(2_147_483_648));
        assert_eq!(time(0x17, b"2401010000Z"), None);
        assert_eq!(time(0x17, b"991301000000Z"), None);
    }

    #[test]
    fn names_match_exactly_or_by_one_leftmost_wildcard() {
        assert!(name_matches(b"LocalHost", b"localhost"));
        assert!(name_matches(b"*.example.com", b"a.example.com"));
        assert!(!name_matches(b"*.example.com", b"a.b.example.com"));
        assert!(!name_matches(b"*.com", b"example.com"));
        assert!(!name_matches(b"localhost", b"otherhost"));
    }

    #[test]
    fn tlv_refuses_truncated_input() {
        assert_eq!(tlv(&[0x30, 0x03, 1, 2]), None);
        assert_eq!(tlv(&[0x30, 0x81]), None);
        assert_eq!(
            tlv(&[0x30, 0x82, 0, 1, 7]),
            Some((0x30, &[7u8][..], &[][..]))
        );
        assert!(parse(&[0x30, 0x00]).is_none());
    }
}
