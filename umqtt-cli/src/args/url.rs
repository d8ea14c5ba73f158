//! `-L URL`: `mqtt://[user[:password]@]host[:port]/topic` (and `mqtts://`
//! for TLS), as mosquitto_pub and mosquitto_sub take it: one argument for
//! the broker, the credentials and the topic.

/// What a URL says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct BrokerUrl {
    pub(super) tls: bool,
    pub(super) username: Option<String>,
    pub(super) password: Option<String>,
    pub(super) host: String,
    pub(super) port: Option<u16>,
    pub(super) topic: String,
}

/// Parses `url`; the error says what is wrong with it.
pub(super) fn parse_url(url: &str) -> Result<BrokerUrl, String> {
    let bad = |what: &str| {
        format!("invalid URL `{url}`: {what} (give mqtt://[user[:password]@]host[:port]/topic)")
    };
    let (scheme, rest) = url.split_once("://").ok_or_else(|| bad("no scheme"))?;
    let tls = match scheme {
        "mqtt" => false,
        "mqtts" => true,
        _ => return Err(bad("the scheme must be mqtt or mqtts")),
    };
    let (authority, topic) = rest
        .split_once('/')
        .ok_or_else(|| bad("no topic after the host"))?;
    if topic.is_empty() {
        return Err(bad("the topic is empty"));
    }
    let (userinfo, host_port) = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => (Some(userinfo), host_port),
        None => (None, authority),
    };
    let (username, password) = match userinfo.map(|u| u.split_once(':').unwrap_or((u, ""))) {
        Some(("", _)) => return Err(bad("the user name is empty")),
        Some((user, "")) => (Some(user.to_string()), None),
        Some((user, password)) => (Some(user.to_string()), Some(password.to_string())),
        None => (None, None),
    };
    let (host, port) =
        split_host_port(host_port).ok_or_else(|| bad("the port is not 1 to 65535"))?;
    if host.is_empty() {
        return Err(bad("the host is empty"));
    }
    Ok(BrokerUrl {
        tls,
        username,
        password,
        host: host.to_string(),
        port,
        topic: topic.to_string(),
    })
}

/// `host`, `host:port`, `[v6]` or `[v6]:port`; `None` for a bad port.
fn split_host_port(host_port: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = match host_port.strip_prefix('[') {
        Some(v6) => {
            let (host, rest) = v6.split_once(']')?;
            (host, rest.strip_prefix(':'))
        }
        None => match host_port.rsplit_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (host_port, None),
        },
    };
    match port {
        None => Some((host, None)),
        Some(port) => port
            .parse()
            .ok()
            .filter(|&p| p != 0)
            .map(|p| (host, Some(p))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_give_host_port_credentials_and_topic() {
        let u = parse_url("mqtt://alice:secret@broker.local:1884/devices/+/status").unwrap();
        assert_eq!(
            u,
            BrokerUrl {
                tls: false,
                username: Some("alice".into()),
                password: Some("secret".into()),
                host: "broker.local".into(),
                port: Some(1884),
                topic: "devices/+/status".into(),
            }
        );
        let u = parse_url("mqtts://[::1]/t").unwrap();
        assert_eq!((u.tls, u.host.as_str(), u.port), (true, "::1", None));
        let u = parse_url("mqtt://bob@h:1/a/b").unwrap();
        assert_eq!((u.username.as_deref(), u.password), (Some("bob"), None));
        assert_eq!(parse_url("mqtt://[::1]:8883/t").unwrap().port, Some(8883));
    }

    #[test]
    fn a_wrong_url_says_what_is_wrong() {
        for (url, what) in [
            ("broker/t", "no scheme"),
            ("http://h/t", "the scheme must be mqtt or mqtts"),
            ("mqtt://h", "no topic after the host"),
            ("mqtt://h/", "the topic is empty"),
            ("mqtt://h:0/t", "the port is not 1 to 65535"),
            ("mqtt://h:x/t", "the port is not 1 to 65535"),
            ("mqtt:///t", "the host is empty"),
            ("mqtt://:pw@h/t", "the user name is empty"),
        ] {
            let e = parse_url(url).unwrap_err();
            assert!(e.contains(what), "{url}: {e}");
            assert!(
                e.contains("mqtt://[user[:password]@]host[:port]/topic"),
                "{e}"
            );
        }
    }
}
