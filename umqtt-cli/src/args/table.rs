//! Every option of `pub` and `sub` as a row of a table: its spellings, which
//! subcommands take it, and what it sets.

use std::time::Duration;

use super::{Draft, Kind, Source, nonempty, parse_port, parse_qos};

/// Which subcommands take an option.
#[derive(Clone, Copy)]
pub(super) enum Takes {
    Both,
    Only(Kind),
}

/// What an option does to the draft: a flag, or a value (checked here,
/// with the option's name for the error).
#[derive(Clone, Copy)]
pub(super) enum Set {
    Flag(fn(&mut Draft)),
    Value(fn(&mut Draft, Kind, &str, String) -> Result<(), String>),
}

/// One option of `pub` or `sub`: its spellings, who takes it, what it sets.
pub(super) struct OptionSpec {
    pub(super) names: &'static [&'static str],
    pub(super) takes: Takes,
    pub(super) set: Set,
}

impl OptionSpec {
    pub(super) fn takes(&self, kind: Kind) -> bool {
        match self.takes {
            Takes::Both => true,
            Takes::Only(k) => k == kind,
        }
    }
}

const fn both(names: &'static [&'static str], set: Set) -> OptionSpec {
    OptionSpec {
        names,
        takes: Takes::Both,
        set,
    }
}

const fn only(kind: Kind, names: &'static [&'static str], set: Set) -> OptionSpec {
    OptionSpec {
        names,
        takes: Takes::Only(kind),
        set,
    }
}

/// Every option, with mosquitto_pub's and mosquitto_sub's spellings.
pub(super) const OPTIONS: &[OptionSpec] = &[
    both(
        &["-h", "--host"],
        Set::Value(|d, _, n, v| {
            d.connection.host = nonempty(n, v)?;
            Ok(())
        }),
    ),
    both(
        &["-p", "--port"],
        Set::Value(|d, _, _, v| {
            d.connection.port = parse_port(&v)?;
            d.port_given = true;
            Ok(())
        }),
    ),
    both(
        &["--cafile"],
        Set::Value(|d, _, n, v| {
            d.tls.cafile = Some(nonempty(n, v)?.into());
            Ok(())
        }),
    ),
    both(
        &["--cert"],
        Set::Value(|d, _, n, v| {
            d.tls.cert = Some(nonempty(n, v)?.into());
            Ok(())
        }),
    ),
    both(
        &["--key"],
        Set::Value(|d, _, n, v| {
            d.tls.key = Some(nonempty(n, v)?.into());
            Ok(())
        }),
    ),
    both(&["--insecure"], Set::Flag(|d| d.tls.insecure = true)),
    both(
        &["--capath"],
        Set::Value(|d, _, n, v| {
            d.tls.capath = Some(nonempty(n, v)?.into());
            Ok(())
        }),
    ),
    both(
        &["--tls-engine"],
        Set::Value(|d, _, _, v| {
            d.tls_asked = true;
            d.tls.engine = match v.as_str() {
                "rustls" => super::Engine::Rustls,
                "embedded" => super::Engine::Embedded,
                other => {
                    return Err(format!(
                        "--tls-engine `{other}`: choose rustls (the default) or embedded"
                    ));
                }
            };
            Ok(())
        }),
    ),
    both(
        &["--tls-version"],
        Set::Value(|d, _, _, v| {
            d.tls_asked = true;
            d.tls.version = Some(match v.as_str() {
                "tlsv1.2" => super::TlsVersion::Tls12,
                "tlsv1.3" => super::TlsVersion::Tls13,
                "tlsv1.1" | "tlsv1" => {
                    return Err(format!(
                        "--tls-version {v}: TLS 1.1 and older are not spoken (insecure); choose tlsv1.2 or tlsv1.3"
                    ));
                }
                other => {
                    return Err(format!(
                        "--tls-version `{other}`: choose tlsv1.2 or tlsv1.3"
                    ));
                }
            });
            Ok(())
        }),
    ),
    both(
        &["--alpn", "--tls-alpn"],
        Set::Value(|d, _, n, v| {
            let protocol = nonempty(n, v)?;
            if protocol.len() > 255 {
                return Err(format!(
                    "{n}: a protocol name is at most 255 bytes (this one is {})",
                    protocol.len()
                ));
            }
            d.tls_asked = true;
            d.tls.alpn.push(protocol);
            Ok(())
        }),
    ),
    // mqtt(s)://[user[:password]@]host[:port]/topic
    both(
        &["-L", "--url"],
        Set::Value(|d, _, _, v| {
            let url = super::url::parse_url(&v)?;
            d.connection.host = url.host;
            if let Some(port) = url.port {
                d.connection.port = port;
                d.port_given = true;
            }
            if url.username.is_some() {
                d.connection.username = url.username;
                d.connection.password = url.password;
            }
            d.tls_url |= url.tls;
            d.topics.push(url.topic);
            Ok(())
        }),
    ),
    // An empty id asks the broker to assign one (clean session only).
    both(
        &["-i", "--id"],
        Set::Value(|d, _, _, v| {
            d.connection.client_id = Some(v);
            Ok(())
        }),
    ),
    both(
        &["-u", "--username"],
        Set::Value(|d, _, _, v| {
            d.connection.username = Some(v);
            Ok(())
        }),
    ),
    both(
        &["-P", "--pw"],
        Set::Value(|d, _, _, v| {
            d.connection.password = Some(v);
            Ok(())
        }),
    ),
    both(
        &["-k", "--keepalive"],
        Set::Value(|d, _, _, v| {
            d.connection.keepalive = v
                .parse()
                .map_err(|_| format!("invalid keepalive `{v}`: give 0 to 65535 seconds"))?;
            Ok(())
        }),
    ),
    both(
        &["-c", "--disable-clean-session"],
        Set::Flag(|d| d.connection.clean_session = false),
    ),
    both(&["-d", "--debug"], Set::Flag(|d| d.connection.debug = true)),
    both(
        &["--will-topic"],
        Set::Value(|d, _, _, v| {
            d.will_topic = Some(v);
            Ok(())
        }),
    ),
    both(
        &["--will-payload"],
        Set::Value(|d, _, _, v| {
            d.will_payload = Some(v);
            Ok(())
        }),
    ),
    // The broker publishes a will, so QoS 2 is fine.
    both(
        &["--will-qos"],
        Set::Value(|d, _, n, v| {
            d.will_qos = Some(parse_qos(n, &v, true)?);
            Ok(())
        }),
    ),
    both(&["--will-retain"], Set::Flag(|d| d.will_retain = true)),
    both(
        &["-t", "--topic"],
        Set::Value(|d, _, _, v| {
            d.topics.push(v);
            Ok(())
        }),
    ),
    // The client receives QoS 2, but publishes with 0 or 1.
    both(
        &["-q", "--qos"],
        Set::Value(|d, kind, n, v| {
            d.qos = parse_qos(n, &v, kind == Kind::Sub)?;
            Ok(())
        }),
    ),
    both(
        &["-W"],
        Set::Value(|d, _, _, v| {
            d.timeout_s = Some(v.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                format!("invalid timeout `{v}` for -W: give whole seconds above 0")
            })?);
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["-m", "--message"],
        Set::Value(|d, _, _, v| {
            d.sources.push(Source::Message(v));
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["-l", "--stdin-line"],
        Set::Flag(|d| d.sources.push(Source::Lines)),
    ),
    only(
        Kind::Pub,
        &["-n", "--null-message"],
        Set::Flag(|d| d.sources.push(Source::Null)),
    ),
    only(
        Kind::Pub,
        &["-s", "--stdin-file"],
        Set::Flag(|d| d.sources.push(Source::Stdin)),
    ),
    only(
        Kind::Pub,
        &["-f", "--file"],
        Set::Value(|d, _, _, v| {
            d.sources.push(Source::File(v.into()));
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["-r", "--retain"],
        Set::Flag(|d| d.retain = true),
    ),
    only(
        Kind::Sub,
        &["-v", "--verbose"],
        Set::Flag(|d| d.verbose = true),
    ),
    only(
        Kind::Sub,
        &["-C"],
        Set::Value(|d, _, _, v| {
            d.count = Some(
                v.parse()
                    .ok()
                    .filter(|&n| n > 0)
                    .ok_or_else(|| format!("invalid count `{v}` for -C: give a number above 0"))?,
            );
            Ok(())
        }),
    ),
    only(Kind::Sub, &["-N"], Set::Flag(|d| d.no_newline = true)),
    only(
        Kind::Sub,
        &["-F"],
        Set::Value(|d, _, _, v| {
            d.format = Some(crate::format::Format::parse(&v)?);
            Ok(())
        }),
    ),
    only(Kind::Sub, &["-R"], Set::Flag(|d| d.skip_retained = true)),
    only(
        Kind::Sub,
        &["-E"],
        Set::Flag(|d| d.exit_on_subscribed = true),
    ),
    only(
        Kind::Sub,
        &["-T", "--filter-out"],
        Set::Value(|d, _, _, v| {
            d.filter_out.push(v);
            Ok(())
        }),
    ),
    only(
        Kind::Sub,
        &["-U", "--unsubscribe"],
        Set::Value(|d, _, _, v| {
            d.unsubscribe.push(v);
            Ok(())
        }),
    ),
    only(
        Kind::Sub,
        &["--remove-retained"],
        Set::Flag(|d| d.remove_retained = true),
    ),
    only(
        Kind::Pub,
        &["--repeat"],
        Set::Value(|d, _, _, v| {
            d.repeat = Some(v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("invalid count `{v}` for --repeat: give a number above 0")
            })?);
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["--repeat-delay"],
        Set::Value(|d, _, _, v| {
            let delay = v
                .parse::<f64>()
                .ok()
                .and_then(|s| Duration::try_from_secs_f64(s).ok())
                .ok_or_else(|| {
                    format!("invalid delay `{v}` for --repeat-delay: give seconds, 0 or more")
                })?;
            d.repeat_delay = Some(delay);
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["--max-inflight"],
        Set::Value(|d, _, _, v| {
            d.max_inflight = Some(v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                format!("invalid count `{v}` for --max-inflight: give 1 to 65535")
            })?);
            Ok(())
        }),
    ),
    only(
        Kind::Pub,
        &["--outbox"],
        Set::Value(|d, _, n, v| {
            d.outbox = Some(nonempty(n, v)?.into());
            Ok(())
        }),
    ),
];
