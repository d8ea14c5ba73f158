//! The DER logic on certificates built here byte by byte (signatures are
//! rustpki's business, so they are dummies); the same checks against
//! openssl-made chains and mosquitto are in `tests/tests/mosquitto_tls.rs`.

extern crate std;

use std::vec::Vec;

use super::*;

fn der(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = std::vec![tag];
    let len = content.len();
    if len < 0x80 {
        out.push(len as u8);
    } else if len < 0x100 {
        out.extend([0x81, len as u8]);
    } else {
        out.extend([0x82, (len >> 8) as u8, len as u8]);
    }
    out.extend_from_slice(content);
    out
}

fn seq(parts: &[&[u8]]) -> Vec<u8> {
    der(0x30, &parts.concat())
}

/// A Name with the CN `cn`; empty for "".
fn name(cn: &str) -> Vec<u8> {
    if cn.is_empty() {
        return seq(&[]);
    }
    let atv = seq(&[&der(0x06, CN_OID), &der(0x0c, cn.as_bytes())]);
    seq(&[&der(0x31, &atv)])
}

fn ext(oid: &[u8], critical: bool, value: &[u8]) -> Vec<u8> {
    let flag = if critical {
        der(0x01, &[0xff])
    } else {
        Vec::new()
    };
    seq(&[&der(0x06, oid), &flag, &der(0x04, value)])
}

fn ca_ext(path_len: Option<u8>) -> Vec<u8> {
    let len = path_len.map(|n| der(0x02, &[n])).unwrap_or_default();
    ext(
        BASIC_CONSTRAINTS_OID,
        true,
        &seq(&[&der(0x01, &[0xff]), &len]),
    )
}

fn not_ca_ext() -> Vec<u8> {
    ext(BASIC_CONSTRAINTS_OID, true, &seq(&[]))
}

/// keyUsage with the bits of `first` (bit 0 = 0x80) set.
fn ku_ext(first: u8) -> Vec<u8> {
    ext(KEY_USAGE_OID, true, &der(0x03, &[0x00, first]))
}

fn eku_ext(oids: &[&[u8]]) -> Vec<u8> {
    let list: Vec<Vec<u8>> = oids.iter().map(|o| der(0x06, o)).collect();
    let refs: Vec<&[u8]> = list.iter().map(Vec::as_slice).collect();
    ext(EXT_KEY_USAGE_OID, false, &seq(&refs))
}

/// A SAN extension: `dns` names, then `ips` (4 or 16 bytes each).
fn san_ext(dns: &[&str], ips: &[&[u8]]) -> Vec<u8> {
    let mut names = Vec::new();
    for d in dns {
        names.extend(der(0x82, d.as_bytes()));
    }
    for ip in ips {
        names.extend(der(0x87, ip));
    }
    ext(SAN_OID, false, &der(0x30, &names))
}

const CLIENT_AUTH_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x03, 0x02];

/// A certificate `subject` issued by `issuer` with the extensions `exts`,
/// valid from 2020 to 2040.
fn cert(subject: &str, issuer: &str, exts: &[Vec<u8>]) -> Vec<u8> {
    let alg = seq(&[&der(
        0x06,
        &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02],
    )]);
    let validity = seq(&[&der(0x17, b"200101000000Z"), &der(0x17, b"400101000000Z")]);
    let spki = seq(&[&alg, &der(0x03, &[0, 4, 1, 2])]);
    let ext_refs: Vec<&[u8]> = exts.iter().map(Vec::as_slice).collect();
    let tbs = seq(&[
        &der(0xa0, &der(0x02, &[2])),
        &der(0x02, &[1]),
        &alg,
        &name(issuer),
        &validity,
        &name(subject),
        &spki,
        &der(0xa3, &seq(&ext_refs)),
    ]);
    seq(&[&tbs, &alg, &der(0x03, &[0, 0x30, 0])])
}

const NOW: Option<u64> = Some(1_800_000_000); // 2027

fn check_chain(chain: &[&Vec<u8>], anchor: &[u8], host: &str) -> Result<(), CertError> {
    check(
        chain.iter().map(|c| c.as_slice()),
        anchor,
        Host::parse(host),
        NOW,
    )
}

fn root() -> Vec<u8> {
    cert("root", "root", &[ca_ext(None)])
}

fn leaf_of(issuer: &str, exts: &[Vec<u8>]) -> Vec<u8> {
    let mut all = std::vec![not_ca_ext()];
    all.extend_from_slice(exts);
    cert("leaf", issuer, &all)
}

fn localhost() -> Vec<u8> {
    san_ext(&["localhost"], &[])
}

#[test]
fn a_plain_leaf_under_the_anchor_passes() {
    let leaf = leaf_of("root", &[localhost()]);
    assert_eq!(check_chain(&[&leaf], &root(), "localhost"), Ok(()));
}

#[test]
fn an_intermediate_with_pathlen_0_may_sign_a_leaf_but_not_a_further_ca() {
    let root = root();
    let inter = cert("inter", "root", &[ca_ext(Some(0))]);
    let sub = cert("sub", "inter", &[ca_ext(None)]);
    let leaf_of_sub = leaf_of("sub", &[localhost()]);
    let leaf_of_inter = leaf_of("inter", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf_of_sub, &sub, &inter], &root, "localhost"),
        Err(CertError::PathLenExceeded)
    );
    assert_eq!(
        check_chain(&[&leaf_of_inter, &inter], &root, "localhost"),
        Ok(())
    );
}

#[test]
fn the_anchors_pathlen_counts_the_intermediates_but_not_the_anchor_sent_back() {
    let root = cert("root", "root", &[ca_ext(Some(0))]);
    let inter = cert("inter", "root", &[ca_ext(None)]);
    let leaf_direct = leaf_of("root", &[localhost()]);
    let leaf_under = leaf_of("inter", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf_direct, &root], &root, "localhost"),
        Ok(())
    );
    assert_eq!(
        check_chain(&[&leaf_under, &inter], &root, "localhost"),
        Err(CertError::PathLenExceeded)
    );
}

#[test]
fn a_trusted_self_signed_ca_may_serve_as_its_own_leaf() {
    let both = cert("localhost", "localhost", &[ca_ext(None), localhost()]);
    assert_eq!(check_chain(&[&both], &both, "localhost"), Ok(()));
    assert_eq!(
        check_chain(&[&both], &both, "other"),
        Err(CertError::NameMismatch)
    );
}

#[test]
fn key_usage_is_enforced_when_present() {
    let root = root();
    let signing = leaf_of("root", &[localhost(), ku_ext(0x80)]);
    let encipher_only = leaf_of("root", &[localhost(), ku_ext(0x20)]);
    assert_eq!(check_chain(&[&signing], &root, "localhost"), Ok(()));
    assert_eq!(
        check_chain(&[&encipher_only], &root, "localhost"),
        Err(CertError::LeafKeyUsage)
    );
    // A CA whose keyUsage lacks keyCertSign (0x04) signs nothing.
    let crl_only = cert("inter", "root", &[ca_ext(None), ku_ext(0x02)]);
    let cert_sign = cert("inter", "root", &[ca_ext(None), ku_ext(0x06)]);
    let leaf = leaf_of("inter", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf, &crl_only], &root, "localhost"),
        Err(CertError::CaKeyUsage)
    );
    assert_eq!(
        check_chain(&[&leaf, &cert_sign], &root, "localhost"),
        Ok(())
    );
    let anchor = cert("root", "root", &[ca_ext(None), ku_ext(0x02)]);
    let leaf = leaf_of("root", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf], &anchor, "localhost"),
        Err(CertError::CaKeyUsage)
    );
}

#[test]
fn extended_key_usage_must_allow_server_auth_when_present() {
    let root = root();
    let client = leaf_of("root", &[localhost(), eku_ext(&[CLIENT_AUTH_OID])]);
    let server = leaf_of(
        "root",
        &[localhost(), eku_ext(&[CLIENT_AUTH_OID, SERVER_AUTH_OID])],
    );
    let any = leaf_of("root", &[localhost(), eku_ext(&[ANY_EKU_OID])]);
    assert_eq!(
        check_chain(&[&client], &root, "localhost"),
        Err(CertError::ExtendedKeyUsage)
    );
    assert_eq!(check_chain(&[&server], &root, "localhost"), Ok(()));
    assert_eq!(check_chain(&[&any], &root, "localhost"), Ok(()));
    let inter = cert(
        "inter",
        "root",
        &[ca_ext(None), eku_ext(&[CLIENT_AUTH_OID])],
    );
    let leaf = leaf_of("inter", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf, &inter], &root, "localhost"),
        Err(CertError::ExtendedKeyUsage)
    );
}

#[test]
fn the_host_is_matched_over_every_san_not_only_the_first_three() {
    let root = root();
    let sans = [
        "a.example",
        "b.example",
        "c.example",
        "localhost",
        "e.example",
    ];
    let leaf = leaf_of("root", &[san_ext(&sans, &[])]);
    assert_eq!(check_chain(&[&leaf], &root, "localhost"), Ok(()));
    assert_eq!(check_chain(&[&leaf], &root, "e.example"), Ok(()));
    assert_eq!(
        check_chain(&[&leaf], &root, "other.example"),
        Err(CertError::NameMismatch)
    );
}

#[test]
fn the_cn_counts_only_without_a_dns_san() {
    let root = root();
    let with_san = cert(
        "localhost",
        "root",
        &[not_ca_ext(), san_ext(&["x.example"], &[])],
    );
    let without = cert("localhost", "root", &[not_ca_ext()]);
    assert_eq!(
        check_chain(&[&with_san], &root, "localhost"),
        Err(CertError::NameMismatch)
    );
    assert_eq!(check_chain(&[&without], &root, "localhost"), Ok(()));
}

#[test]
fn an_ip_host_matches_ip_sans_only() {
    let root = root();
    let ip = leaf_of("root", &[san_ext(&["localhost"], &[&[127, 0, 0, 1]])]);
    let dns_spelled = cert(
        "127.0.0.1",
        "root",
        &[not_ca_ext(), san_ext(&["127.0.0.1"], &[])],
    );
    let cn_only = cert("127.0.0.1", "root", &[not_ca_ext()]);
    let mut v6 = [0u8; 16];
    v6[15] = 1;
    let ip6 = leaf_of("root", &[san_ext(&[], &[&v6])]);
    assert_eq!(check_chain(&[&ip], &root, "127.0.0.1"), Ok(()));
    assert_eq!(
        check_chain(&[&ip], &root, "127.0.0.2"),
        Err(CertError::NameMismatch)
    );
    assert_eq!(
        check_chain(&[&dns_spelled], &root, "127.0.0.1"),
        Err(CertError::NameMismatch)
    );
    assert_eq!(
        check_chain(&[&cn_only], &root, "127.0.0.1"),
        Err(CertError::NameMismatch)
    );
    assert_eq!(check_chain(&[&ip6], &root, "::1"), Ok(()));
    assert_eq!(check_chain(&[&ip6], &root, "[::1]"), Ok(()));
    assert_eq!(
        check_chain(&[&ip6], &root, "127.0.0.1"),
        Err(CertError::NameMismatch)
    );
}

#[test]
fn issuers_and_the_anchor_must_be_cas() {
    let root = root();
    let other_leaf = leaf_of("root", &[]);
    let evil = leaf_of("leaf", &[localhost()]);
    assert_eq!(
        check_chain(&[&evil, &other_leaf], &root, "localhost"),
        Err(CertError::IssuerNotCa)
    );
    let not_ca_anchor = cert("root", "root", &[not_ca_ext()]);
    let leaf = leaf_of("root", &[localhost()]);
    assert_eq!(
        check_chain(&[&leaf], &not_ca_anchor, "localhost"),
        Err(CertError::TrustAnchorNotCa)
    );
}

#[test]
fn an_unknown_critical_extension_is_refused_and_a_non_critical_one_ignored() {
    let root = root();
    let name_constraints: &[u8] = &[0x55, 0x1d, 0x1e];
    let critical = leaf_of(
        "root",
        &[localhost(), ext(name_constraints, true, &seq(&[]))],
    );
    let plain = leaf_of(
        "root",
        &[localhost(), ext(name_constraints, false, &seq(&[]))],
    );
    assert_eq!(
        check_chain(&[&critical], &root, "localhost"),
        Err(CertError::UnsupportedCriticalExtension)
    );
    assert_eq!(check_chain(&[&plain], &root, "localhost"), Ok(()));
}

/// RFC 5280 §4.2 allows each extension once; the last copy used to win
/// here while rustpki reads another (two SANs), or a second basicConstraints
/// could lift the first one's pathLenConstraint.
#[test]
fn a_repeated_extension_is_malformed() {
    let two_sans = leaf_of("root", &[san_ext(&["other"], &[]), localhost()]);
    let two_basic = leaf_of("root", &[localhost(), not_ca_ext()]);
    assert_eq!(
        check_chain(&[&two_sans], &root(), "localhost"),
        Err(CertError::Malformed)
    );
    assert_eq!(
        check_chain(&[&two_basic], &root(), "localhost"),
        Err(CertError::Malformed)
    );
}

#[test]
fn a_name_rustpki_cannot_read_is_refused_with_its_own_error() {
    let long = "a".repeat(70);
    let leaf = cert(&long, "root", &[not_ca_ext(), localhost()]);
    assert_eq!(
        check_chain(&[&leaf], &root(), "localhost"),
        Err(CertError::NameTooLong)
    );
    // Beyond the first 3 DNS SANs, rustpki reads nothing: a long 4th is fine.
    let sans = [
        "a.example",
        "b.example",
        "c.example",
        long.as_str(),
        "localhost",
    ];
    let leaf = leaf_of("root", &[san_ext(&sans, &[])]);
    assert_eq!(check_chain(&[&leaf], &root(), "localhost"), Ok(()));
}

#[test]
fn dates_of_the_chain_and_the_anchor_are_checked_when_the_time_is_known() {
    let leaf = leaf_of("root", &[localhost()]);
    let root = root();
    let chain = || core::iter::once(leaf.as_slice());
    let host = Host::parse("localhost");
    assert_eq!(check(chain(), &root, host, None), Ok(()));
    assert_eq!(
        check(chain(), &root, host, Some(2_300_000_000)),
        Err(CertError::Expired)
    );
    assert_eq!(
        check(chain(), &root, host, Some(1_000_000_000)),
        Err(CertError::NotYetValid)
    );
}

#[test]
fn an_anchor_issued_the_top_certificate_by_subject_and_key_identifier() {
    let ski = |id: u8| ext(SKI_OID, false, &der(0x04, &[id; 4]));
    let aki = |id: u8| ext(AKI_OID, false, &seq(&[&der(0x80, &[id; 4])]));
    let root_a = cert("root", "root", &[ca_ext(None), ski(1)]);
    let root_b = cert("root", "root", &[ca_ext(None), ski(2)]);
    let other = cert("other", "other", &[ca_ext(None)]);
    let leaf = leaf_of("root", &[localhost(), aki(2)]);
    let leaf_no_aki = leaf_of("root", &[localhost()]);
    fn p(d: &[u8]) -> Cert<'_> {
        parse(d).expect("parse")
    }
    let (leaf, leaf_no_aki) = (p(&leaf), p(&leaf_no_aki));
    assert!(!p(&root_a).issued(&leaf));
    assert!(p(&root_b).issued(&leaf));
    assert!(p(&root_a).issued(&leaf_no_aki));
    assert!(!p(&other).issued(&leaf_no_aki));
}

#[test]
fn rustpki_is_given_a_name_of_the_leaf_it_matches() {
    let mut out = [0u8; RUSTPKI_NAME_MAX];
    let sans = ["a.example", "b.example", "c.example", "localhost"];
    let leaf = leaf_of("root", &[san_ext(&sans, &[])]);
    assert_eq!(rustpki_host(&leaf, &mut out), Ok(Some("a.example")));
    let wild = leaf_of("root", &[san_ext(&["*.example.com"], &[])]);
    assert_eq!(rustpki_host(&wild, &mut out), Ok(Some("x.example.com")));
    // An IP-only certificate: its CN, or nothing when it has none.
    let ip_cn = cert("127.0.0.1", "root", &[san_ext(&[], &[&[127, 0, 0, 1]])]);
    assert_eq!(rustpki_host(&ip_cn, &mut out), Ok(Some("127.0.0.1")));
    let no_cn = cert("", "root", &[san_ext(&[], &[&[127, 0, 0, 1]])]);
    assert_eq!(rustpki_host(&no_cn, &mut out), Ok(None));
    let spaced = cert("My Broker", "root", &[san_ext(&[], &[&[127, 0, 0, 1]])]);
    assert_eq!(
        rustpki_host(&spaced, &mut out),
        Err(CertError::NoMatchableName)
    );
}

#[test]
fn host_parse_tells_addresses_from_names() {
    assert_eq!(Host::parse("localhost"), Host::Dns("localhost"));
    assert!(matches!(Host::parse("10.0.0.1"), Host::Ip(IpAddr::V4(_))));
    assert!(matches!(Host::parse("::1"), Host::Ip(IpAddr::V6(_))));
    assert!(matches!(Host::parse("[::1]"), Host::Ip(IpAddr::V6(_))));
    assert_eq!(Host::parse("1.2.3.4.example"), Host::Dns("1.2.3.4.example"));
}

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
    // A trailing dot is no second label of the wildcard's suffix.
    assert!(!name_matches(b"*.com.", b"example.com."));
    assert!(!name_matches(b"*..com", b"a..com"));
    assert!(!name_matches(b"localhost", b"otherhost"));
}

#[test]
fn malformed_der_is_refused_not_panicked_on() {
    assert_eq!(tlv(&[0x30, 0x03, 1, 2]), None);
    assert_eq!(tlv(&[0x30, 0x81]), None);
    assert_eq!(
        tlv(&[0x30, 0x82, 0, 1, 7]),
        Some((0x30, &[7u8][..], &[][..]))
    );
    assert!(parse(&[0x30, 0x00]).is_err());
    let good = leaf_of("root", &[localhost(), ku_ext(0x80)]);
    for len in 0..good.len() {
        let _ = parse(good.get(..len).unwrap_or_default());
    }
    assert_eq!(unsigned(&[0x80]), None);
    assert_eq!(unsigned(&[0x00, 0xff]), Some(255));
    assert_eq!(unsigned(&[0x7f; 8]), Some(u32::MAX));
}
