//! Does this chain, given these trust anchors, name this host?
//!
//! Everything about a server's certificate chain that is read from its DER,
//! without a heap: the structure of the path (issuers are CAs, path length
//! constraints, key usage, extended key usage, validity dates, critical
//! extensions), the choice of trust anchor, and the server name (DNS SANs,
//! CN only without DNS SAN, IP SANs for an IP address). What is left to
//! rustpki (see [`verify`](super::verify)) is the signatures.
//!
//! The chain is taken as the server sent it: the leaf first, then each
//! certificate's issuer; the last one is issued by a trust anchor (or is the
//! trust anchor itself).

use core::net::IpAddr;

use super::CertError;

/// The name the client connects to: what the leaf must be valid for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Host<'h> {
    /// A DNS name: matched against DNS SANs (CN when there is none); sent as
    /// SNI.
    Dns(&'h str),
    /// An IP address: matched against IP SANs only; no SNI (RFC 6066).
    Ip(IpAddr),
}

impl<'h> Host<'h> {
    /// An IP address when `name` is one (`[::1]` too), else a DNS name.
    pub(crate) fn parse(name: &'h str) -> Self {
        let bare = name
            .strip_prefix('[')
            .and_then(|n| n.strip_suffix(']'))
            .unwrap_or(name);
        match bare.parse::<IpAddr>() {
            Ok(ip) => Host::Ip(ip),
            Err(_) => Host::Dns(name),
        }
    }
}

const BASIC_CONSTRAINTS_OID: &[u8] = &[0x55, 0x1d, 0x13];
const KEY_USAGE_OID: &[u8] = &[0x55, 0x1d, 0x0f];
const EXT_KEY_USAGE_OID: &[u8] = &[0x55, 0x1d, 0x25];
const SAN_OID: &[u8] = &[0x55, 0x1d, 0x11];
const SKI_OID: &[u8] = &[0x55, 0x1d, 0x0e];
const AKI_OID: &[u8] = &[0x55, 0x1d, 0x23];
/// Extensions that may be critical without changing what is checked here:
/// certificate policies (this verifier asks for no policy).
const HARMLESS_OIDS: [&[u8]; 1] = [&[0x55, 0x1d, 0x20]];
const CN_OID: &[u8] = &[0x55, 0x04, 0x03];
/// id-kp-serverAuth, 1.3.6.1.5.5.7.3.1.
const SERVER_AUTH_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x01];
/// anyExtendedKeyUsage, 2.5.29.37.0.
const ANY_EKU_OID: &[u8] = &[0x55, 0x1d, 0x25, 0x00];

/// keyUsage bit 0 (the first byte's high bit).
const KU_DIGITAL_SIGNATURE: u16 = 0x8000;
/// keyUsage bit 5.
const KU_KEY_CERT_SIGN: u16 = 0x0400;

/// The longest name (CN, DNS SAN) rustpki reads: a longer one among the
/// names it reads fails its parse.
pub(crate) const RUSTPKI_NAME_MAX: usize = 64;
/// How many DNS SANs rustpki reads.
const RUSTPKI_SANS: usize = 3;

/// What the checks need from one certificate.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Cert<'d> {
    pub(crate) issuer: &'d [u8],
    pub(crate) subject: &'d [u8],
    not_before: u64,
    not_after: u64,
    /// basicConstraints: `(cA, pathLenConstraint)`, if present.
    basic: Option<(bool, Option<u32>)>,
    /// keyUsage bits (bit 0 is `0x8000`), if present.
    key_usage: Option<u16>,
    /// extendedKeyUsage: whether it allows serverAuth, if present.
    server_auth: Option<bool>,
    /// The SAN extension's GeneralNames (content of the SEQUENCE), if any.
    san: Option<&'d [u8]>,
    /// subjectKeyIdentifier, if present.
    key_id: Option<&'d [u8]>,
    /// authorityKeyIdentifier's keyIdentifier, if present.
    authority_key_id: Option<&'d [u8]>,
    /// A critical extension not in the lists above.
    unknown_critical: bool,
}

impl Cert<'_> {
    /// Whether this (a trust anchor) issued `cert`: its subject is `cert`'s
    /// issuer and, when both carry one, its key identifier is `cert`'s
    /// authority key identifier (a CA renewed with a new key keeps its name).
    pub(crate) fn issued(&self, cert: &Cert<'_>) -> bool {
        self.subject == cert.issuer
            && match (self.key_id, cert.authority_key_id) {
                (Some(ski), Some(aki)) => ski == aki,
                _ => true,
            }
    }

    fn is_ca(&self) -> bool {
        matches!(self.basic, Some((true, _)))
    }

    fn self_issued(&self) -> bool {
        self.issuer == self.subject
    }

    /// The DNS SANs, in order.
    fn dns_names(&self) -> impl Iterator<Item = &[u8]> {
        self.general_names()
            .filter_map(|(tag, v)| (tag == 0x82).then_some(v))
    }

    fn general_names(&self) -> impl Iterator<Item = (u8, &[u8])> {
        let mut rest = self.san.unwrap_or_default();
        core::iter::from_fn(move || {
            let (tag, value, after) = tlv(rest)?;
            rest = after;
            Some((tag, value))
        })
    }

    /// Whether the certificate is valid for `host`: an IP address against
    /// the IP SANs only; a DNS name against every DNS SAN, or, with none,
    /// the CN.
    pub(crate) fn names(&self, host: Host<'_>) -> bool {
        match host {
            Host::Ip(ip) => self.general_names().any(|(tag, v)| {
                tag == 0x87
                    && match ip {
                        IpAddr::V4(a) => v == a.octets(),
                        IpAddr::V6(a) => v == a.octets(),
                    }
            }),
            Host::Dns(name) => {
                let mut had_dns = false;
                for san in self.dns_names() {
                    had_dns = true;
                    if name_matches(san, name.as_bytes()) {
                        return true;
                    }
                }
                !had_dns
                    && last_common_name(self.subject)
                        .is_some_and(|cn| name_matches(cn, name.as_bytes()))
            }
        }
    }

    /// Whether rustpki can read this certificate's names: it fails the
    /// whole chain when one of the first [`RUSTPKI_SANS`] DNS SANs is not
    /// UTF-8 or is longer than [`RUSTPKI_NAME_MAX`], or any CN is longer.
    fn rustpki_readable(&self) -> bool {
        let sans_ok = self
            .dns_names()
            .take(RUSTPKI_SANS)
            .all(|n| n.len() <= RUSTPKI_NAME_MAX && core::str::from_utf8(n).is_ok());
        sans_ok && common_names(self.subject).all(|cn| cn.len() <= RUSTPKI_NAME_MAX)
    }
}

/// Parses what the checks need from a DER certificate.
pub(crate) fn parse(der: &[u8]) -> Result<Cert<'_>, CertError> {
    parse_inner(der).ok_or(CertError::Malformed)?
}

fn parse_inner(der: &[u8]) -> Option<Result<Cert<'_>, CertError>> {
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
    let (0x30, issuer) = next()? else {
        return None;
    };
    let (0x30, validity) = next()? else {
        return None;
    };
    let (t1, nb, rest) = tlv(validity)?;
    let (t2, na, _) = tlv(rest)?;
    let (0x30, subject) = next()? else {
        return None;
    };
    let _spki = next()?;
    let mut cert = Cert {
        issuer,
        subject,
        not_before: time(t1, nb)?,
        not_after: time(t2, na)?,
        basic: None,
        key_usage: None,
        server_auth: None,
        san: None,
        key_id: None,
        authority_key_id: None,
        unknown_critical: false,
    };
    while let Some((tag, content)) = next() {
        if tag == 0xa3 {
            let (0x30, exts, _) = tlv(content)? else {
                return None;
            };
            if let Err(e) = extensions(exts, &mut cert)? {
                return Some(Err(e));
            }
        }
    }
    Some(Ok(cert))
}

/// Reads the extensions into `cert`; `None` when malformed.
fn extensions<'d>(mut exts: &'d [u8], cert: &mut Cert<'d>) -> Option<Result<(), CertError>> {
    while !exts.is_empty() {
        let (0x30, ext, rest) = tlv(exts)? else {
            return None;
        };
        exts = rest;
        let (0x06, oid, mut body) = tlv(ext)? else {
            return None;
        };
        let mut critical = false;
        if let Some((0x01, flag, after)) = tlv(body) {
            critical = flag.first().is_some_and(|b| *b != 0);
            body = after;
        }
        let (0x04, value, _) = tlv(body)? else {
            return None;
        };
        // Each extension at most once (RFC 5280 §4.2): of two copies the
        // checks here and rustpki's could read different ones.
        if repeated(oid, exts)? {
            return None;
        }
        match oid {
            BASIC_CONSTRAINTS_OID => cert.basic = Some(basic_constraints(value)?),
            KEY_USAGE_OID => cert.key_usage = Some(key_usage(value)?),
            EXT_KEY_USAGE_OID => cert.server_auth = Some(allows_server_auth(value)?),
            SAN_OID => {
                let (0x30, names, _) = tlv(value)? else {
                    return None;
                };
                cert.san = Some(names);
            }
            SKI_OID => {
                let (0x04, id, _) = tlv(value)? else {
                    return None;
                };
                cert.key_id = Some(id);
            }
            AKI_OID => {
                let (0x30, aki, _) = tlv(value)? else {
                    return None;
                };
                // keyIdentifier [0] IMPLICIT OCTET STRING, first if present.
                if let Some((0x80, id, _)) = tlv(aki) {
                    cert.authority_key_id = Some(id);
                }
            }
            _ if critical && !HARMLESS_OIDS.contains(&oid) => cert.unknown_critical = true,
            _ => {}
        }
    }
    Some(Ok(()))
}

/// basicConstraints: `(cA, pathLenConstraint)`.
fn basic_constraints(value: &[u8]) -> Option<(bool, Option<u32>)> {
    let (0x30, mut seq, _) = tlv(value)? else {
        return None;
    };
    let mut ca = false;
    if let Some((0x01, flag, rest)) = tlv(seq) {
        ca = flag.first().is_some_and(|b| *b != 0);
        seq = rest;
    }
    let path_len = match tlv(seq) {
        Some((0x02, int, _)) => Some(unsigned(int)?),
        Some(_) => return None,
        None => None,
    };
    Some((ca, path_len))
}

/// A non-negative DER INTEGER, saturated at `u32::MAX`; `None` if negative
/// or empty.
fn unsigned(int: &[u8]) -> Option<u32> {
    let (&first, _) = int.split_first()?;
    if first & 0x80 != 0 {
        return None;
    }
    Some(int.iter().fold(0u32, |acc, b| {
        acc.checked_mul(256)
            .and_then(|a| a.checked_add(u32::from(*b)))
            .unwrap_or(u32::MAX)
    }))
}

/// keyUsage: a BIT STRING, bit 0 as `0x8000`.
fn key_usage(value: &[u8]) -> Option<u16> {
    let (0x03, bits, _) = tlv(value)? else {
        return None;
    };
    let (&_unused, bytes) = bits.split_first()?;
    let hi = bytes.first().copied().unwrap_or(0);
    let lo = bytes.get(1).copied().unwrap_or(0);
    Some(u16::from_be_bytes([hi, lo]))
}

/// extendedKeyUsage: whether serverAuth or anyExtendedKeyUsage is in it.
fn allows_server_auth(value: &[u8]) -> Option<bool> {
    let (0x30, mut oids, _) = tlv(value)? else {
        return None;
    };
    let mut allowed = false;
    while !oids.is_empty() {
        let (0x06, oid, rest) = tlv(oids)? else {
            return None;
        };
        allowed |= oid == SERVER_AUTH_OID || oid == ANY_EKU_OID;
        oids = rest;
    }
    Some(allowed)
}

/// Every check of the chain `chain` (leaf first, as sent) under the trust
/// anchor `anchor`, except signatures: the anchor and every issuer are CAs,
/// path length constraints hold, key usage and extended key usage (when
/// present) allow what TLS needs, dates hold when `now` is known, no
/// critical extension is left unprocessed, the leaf names `host`, and
/// rustpki can read every name it reads.
///
/// The anchor is assumed to be the one whose subject is the chain's top
/// issuer (or the top certificate itself).
pub(crate) fn check<'c>(
    chain: impl Iterator<Item = &'c [u8]> + Clone,
    anchor_der: &[u8],
    host: Host<'_>,
    now: Option<u64>,
) -> Result<(), CertError> {
    let anchor = parse(anchor_der)?;
    if !anchor.is_ca() {
        return Err(CertError::TrustAnchorNotCa);
    }
    if matches!(anchor.key_usage, Some(ku) if ku & KU_KEY_CERT_SIGN == 0) {
        return Err(CertError::CaKeyUsage);
    }
    if anchor.unknown_critical {
        return Err(CertError::UnsupportedCriticalExtension);
    }
    dates(&anchor, now)?;
    // The certificates the chain carries, the anchor itself left out when
    // sent as an issuer (a server certificate that is itself the trusted
    // one, self-signed, stays: it is the leaf).
    let carried = chain
        .enumerate()
        .filter(|(i, der)| *i == 0 || *der != anchor_der)
        .map(|(_, der)| der);
    // Non-self-issued intermediates seen so far (below the current one).
    let mut intermediates: u32 = 0;
    let mut leaf = None;
    for der in carried {
        let cert = parse(der)?;
        if cert.unknown_critical {
            return Err(CertError::UnsupportedCriticalExtension);
        }
        if !cert.rustpki_readable() {
            return Err(CertError::NameTooLong);
        }
        dates(&cert, now)?;
        if leaf.is_none() {
            if matches!(cert.key_usage, Some(ku) if ku & KU_DIGITAL_SIGNATURE == 0) {
                return Err(CertError::LeafKeyUsage);
            }
            if cert.server_auth == Some(false) {
                return Err(CertError::ExtendedKeyUsage);
            }
            leaf = Some(cert);
            continue;
        }
        if !cert.is_ca() {
            return Err(CertError::IssuerNotCa);
        }
        if matches!(cert.key_usage, Some(ku) if ku & KU_KEY_CERT_SIGN == 0) {
            return Err(CertError::CaKeyUsage);
        }
        if cert.server_auth == Some(false) {
            return Err(CertError::ExtendedKeyUsage);
        }
        path_len(&cert, intermediates)?;
        if !cert.self_issued() {
            intermediates = intermediates.saturating_add(1);
        }
    }
    path_len(&anchor, intermediates)?;
    let leaf = leaf.ok_or(CertError::Malformed)?;
    if !leaf.names(host) {
        return Err(CertError::NameMismatch);
    }
    Ok(())
}

fn path_len(ca: &Cert<'_>, below: u32) -> Result<(), CertError> {
    match ca.basic {
        Some((_, Some(max))) if below > max => Err(CertError::PathLenExceeded),
        _ => Ok(()),
    }
}

fn dates(cert: &Cert<'_>, now: Option<u64>) -> Result<(), CertError> {
    match now {
        Some(now) if now < cert.not_before => Err(CertError::NotYetValid),
        Some(now) if now > cert.not_after => Err(CertError::Expired),
        _ => Ok(()),
    }
}

/// A host name that rustpki's own name check accepts for `leaf`, written
/// into `out`; `Ok(None)` when the leaf has no name rustpki reads (then it
/// must be given no host name).
///
/// rustpki checks the host against the first [`RUSTPKI_SANS`] DNS SANs and
/// the CN, more narrowly than [`check`], which has already decided; the
/// name given to rustpki is one of its own names, so that its check agrees
/// instead of deciding.
pub(crate) fn rustpki_host<'o>(
    leaf_der: &[u8],
    out: &'o mut [u8; RUSTPKI_NAME_MAX],
) -> Result<Option<&'o str>, CertError> {
    let leaf = parse(leaf_der)?;
    let mut any = false;
    let candidates = leaf
        .dns_names()
        .take(RUSTPKI_SANS)
        .chain(last_common_name(leaf.subject).filter(|cn| cn.len() <= RUSTPKI_NAME_MAX));
    for name in candidates {
        any = true;
        if let Some(len) = host_for(name, out) {
            return Ok(out.get(..len).and_then(|h| core::str::from_utf8(h).ok()));
        }
    }
    if any {
        Err(CertError::NoMatchableName)
    } else {
        Ok(None)
    }
}

/// Writes into `out` a host that rustpki matches with `name` (the name
/// itself, or `x` in place of a leading `*`); its length, or `None` when
/// rustpki matches no host with `name`.
fn host_for(name: &[u8], out: &mut [u8; RUSTPKI_NAME_MAX]) -> Option<usize> {
    let plain = |b: &u8| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'.';
    let (host, star) = match name.strip_prefix(b"*.") {
        Some(rest)
            if rest.iter().all(plain) && rest.iter().filter(|b| **b == b'.').count() >= 1 =>
        {
            (name, true)
        }
        _ if !name.is_empty() && name.iter().all(plain) => (name, false),
        _ => return None,
    };
    let dst = out.get_mut(..host.len())?;
    dst.copy_from_slice(host);
    if star {
        *dst.first_mut()? = b'x';
    }
    Some(host.len())
}

/// The values of every CN of a subject.
fn common_names(mut subject: &[u8]) -> impl Iterator<Item = &[u8]> {
    core::iter::from_fn(move || {
        loop {
            let (_, set, rest) = tlv(subject)?;
            subject = rest;
            let Some((0x30, atv, _)) = tlv(set) else {
                continue;
            };
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid == CN_OID
                && let Some((_, v, _)) = tlv(value)
            {
                return Some(v);
            }
        }
    })
}

/// Whether an extension of the list `rest` has the OID `oid`; `None` when
/// malformed.
fn repeated(oid: &[u8], mut rest: &[u8]) -> Option<bool> {
    while !rest.is_empty() {
        let (0x30, ext, after) = tlv(rest)? else {
            return None;
        };
        let (0x06, other, _) = tlv(ext)? else {
            return None;
        };
        if other == oid {
            return Some(true);
        }
        rest = after;
    }
    Some(false)
}

/// The last CN of a subject (the most specific; the one rustpki reads).
fn last_common_name(subject: &[u8]) -> Option<&[u8]> {
    common_names(subject).last()
}

/// RFC 6125 matching, case-insensitive: exact, or `*.` + the host's name
/// without its first label (the wildcard's suffix having at least two
/// labels).
fn name_matches(pattern: &[u8], host: &[u8]) -> bool {
    if pattern.eq_ignore_ascii_case(host) {
        return true;
    }
    match (
        pattern.strip_prefix(b"*."),
        host.iter().position(|b| *b == b'.'),
    ) {
        (Some(suffix), Some(dot)) => {
            // The suffix has two labels at least: a dot with a label on
            // each side (`*.com.` does not).
            let inner_dot = suffix
                .iter()
                .position(|b| *b == b'.')
                .is_some_and(|i| i > 0 && i + 1 < suffix.len());
            dot > 0
                && inner_dot
                && host
                    .get(dot + 1..)
                    .is_some_and(|h| h.eq_ignore_ascii_case(suffix))
        }
        _ => false,
    }
}

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
mod tests;
