//! Host name lookups for both std stacks: the system resolver, IP literals
//! without a lookup, IPv4 preferred.

use core::net::IpAddr;

use embedded_nal::AddrType;
use std::net::ToSocketAddrs;
use std::string::ToString;

use super::StdNetError;

/// Resolves `hostname` with the system resolver (blocking; never returns
/// `WouldBlock`) and returns its first address of the requested type;
/// [`AddrType::Either`] prefers IPv4. IP literals (`127.0.0.1`, `::1`,
/// `[::1]`) are returned without a lookup.
pub(super) fn resolve(hostname: &str, addr_type: AddrType) -> nb::Result<IpAddr, StdNetError> {
    let unbracketed = hostname
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(hostname);
    let found = if let Ok(ip) = unbracketed.parse::<IpAddr>() {
        pick(core::iter::once(ip), &addr_type)
    } else {
        let addrs = (hostname, 0u16).to_socket_addrs().map_err(|e| {
            nb::Error::Other(StdNetError::Dns {
                host: hostname.to_string(),
                message: e.to_string(),
            })
        })?;
        pick(addrs.map(|a| a.ip()), &addr_type)
    };
    found.ok_or_else(|| {
        nb::Error::Other(StdNetError::NoAddress {
            host: hostname.to_string(),
        })
    })
}

/// The first address of the wanted type; for `Either` the first IPv4 address,
/// else the first IPv6 one.
pub(super) fn pick(addrs: impl Iterator<Item = IpAddr>, addr_type: &AddrType) -> Option<IpAddr> {
    let mut first_v6 = None;
    for ip in addrs {
        match (addr_type, ip) {
            (AddrType::IPv4 | AddrType::Either, IpAddr::V4(_)) => return Some(ip),
            (AddrType::IPv6, IpAddr::V6(_)) => return Some(ip),
            (AddrType::Either, IpAddr::V6(_)) if first_v6.is_none() => first_v6 = Some(ip),
            _ => {}
        }
    }
    first_v6
}
