//! A tiny hand-written command-line parser shared by the examples.
//!
//! Every example takes a few of the same options; each binary lists the ones
//! it accepts and gets an [`Args`] back. `--name value` and `--name=value`
//! both work.

use umqtt_simple::QoS;

/// The options of all the examples; each binary reads the ones it accepts.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Args {
    /// `--host H`: the broker's host name or IP address.
    pub host: Option<String>,
    /// `--port P`.
    pub port: Option<u16>,
    /// `--id ID`: the MQTT client id.
    pub id: Option<String>,
    /// `--topic T`.
    pub topic: Option<String>,
    /// `--message M`.
    pub message: Option<String>,
    /// `--qos 0|1` (default 0).
    pub qos: QoS,
    /// `--count N`: stop after N messages.
    pub count: Option<u64>,
    /// `--check`: poll with `check_msg` instead of blocking in `wait_msg`.
    pub check: bool,
    /// `--cafile FILE`: the CA certificate (PEM) that verifies the broker (TLS).
    pub cafile: Option<String>,
    /// `--cert FILE`: the client certificate (PEM), for mutual TLS.
    pub cert: Option<String>,
    /// `--key FILE`: the client certificate's P-256 key (PEM).
    pub key: Option<String>,
}

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these options.
    Run(Args),
    /// `--help` or `-h`: print the usage.
    Help,
}

impl Args {
    /// Parses the process's arguments, accepting only `allowed` options
    /// (spelled without the dashes, e.g. `"host"`). Prints `usage` and exits 0
    /// on `--help`; prints one line and exits 2 on a bad argument.
    pub fn parse(usage: &str, allowed: &[&str]) -> Args {
        match Args::parse_from(std::env::args().skip(1), allowed) {
            Ok(Parsed::Run(args)) => args,
            Ok(Parsed::Help) => {
                print!("{usage}");
                std::process::exit(0);
            }
            Err(e) => {
                eprintln!("error: {e} (try --help)");
                std::process::exit(2);
            }
        }
    }

    /// Parses `args` (without the program name); testable core of
    /// [`Args::parse`].
    pub fn parse_from(
        args: impl IntoIterator<Item = String>,
        allowed: &[&str],
    ) -> Result<Parsed, String> {
        let mut parsed = Args::default();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            if arg == "--help" || arg == "-h" {
                return Ok(Parsed::Help);
            }
            let Some(flag) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument `{arg}`"));
            };
            let (name, inline) = match flag.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (flag, None),
            };
            if !allowed.contains(&name) {
                return Err(format!("unknown option `--{name}`"));
            }
            if name == "check" {
                parsed.check = true;
                continue;
            }
            let Some(value) = inline.or_else(|| args.next()) else {
                return Err(format!("`--{name}` needs a value"));
            };
            let bad = || format!("invalid value `{value}` for `--{name}`");
            match name {
                "host" => parsed.host = Some(value),
                "port" => {
                    parsed.port = Some(value.parse().ok().filter(|&p| p != 0).ok_or_else(bad)?)
                }
                "id" => parsed.id = Some(value),
                "topic" => parsed.topic = Some(value),
                "message" => parsed.message = Some(value),
                "qos" => {
                    // The examples publish too: QoS 0 or 1.
                    parsed.qos = value
                        .parse()
                        .ok()
                        .and_then(QoS::from_u8)
                        .filter(|&q| q != QoS::ExactlyOnce)
                        .ok_or_else(bad)?;
                }
                "count" => parsed.count = Some(value.parse().map_err(|_| bad())?),
                "cafile" => parsed.cafile = Some(value),
                "cert" => parsed.cert = Some(value),
                "key" => parsed.key = Some(value),
                _ => return Err(format!("unknown option `--{name}`")),
            }
        }
        Ok(Parsed::Run(parsed))
    }

    /// The broker's host: `--host`, or `localhost`.
    pub fn host_or_localhost(&self) -> &str {
        self.host.as_deref().unwrap_or("localhost")
    }

    /// The broker's port: `--port`, or MQTT's 1883.
    pub fn port_or_default(&self) -> u16 {
        self.port.unwrap_or(1883)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: &[&str] = &[
        "host", "port", "id", "topic", "message", "qos", "count", "check",
    ];

    fn parse(args: &[&str]) -> Result<Parsed, String> {
        Args::parse_from(args.iter().map(|s| s.to_string()), ALL)
    }

    fn run(args: &[&str]) -> Args {
        match parse(args) {
            Ok(Parsed::Run(a)) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    #[test]
    fn defaults() {
        let a = run(&[]);
        assert_eq!(a, Args::default());
        assert_eq!(a.host_or_localhost(), "localhost");
        assert_eq!(a.port_or_default(), 1883);
    }

    #[test]
    fn every_option_both_spellings() {
        let a = run(&[
            "--host",
            "10.0.0.2",
            "--port=1884",
            "--id",
            "me",
            "--topic",
            "t",
            "--message=m",
            "--qos",
            "1",
            "--count",
            "3",
            "--check",
        ]);
        assert_eq!(a.host.as_deref(), Some("10.0.0.2"));
        assert_eq!(a.port, Some(1884));
        assert_eq!(a.id.as_deref(), Some("me"));
        assert_eq!(a.topic.as_deref(), Some("t"));
        assert_eq!(a.message.as_deref(), Some("m"));
        assert_eq!(a.qos, QoS::AtLeastOnce);
        assert_eq!(a.count, Some(3));
        assert!(a.check);
    }

    #[test]
    fn help_wins() {
        assert_eq!(parse(&["--port", "1", "-h"]), Ok(Parsed::Help));
        assert_eq!(parse(&["--help"]), Ok(Parsed::Help));
    }

    #[test]
    fn errors_are_one_line() {
        for (args, msg) in [
            (&["--nope"][..], "unknown option `--nope`"),
            (&["--port"], "`--port` needs a value"),
            (&["--port", "x"], "invalid value `x` for `--port`"),
            (&["--port", "0"], "invalid value `0` for `--port`"),
            (&["--qos", "2"], "invalid value `2` for `--qos`"),
            (&["--count", "-1"], "invalid value `-1` for `--count`"),
            (&["extra"], "unexpected argument `extra`"),
        ] {
            assert_eq!(parse(args), Err(msg.to_string()), "{args:?}");
        }
    }

    #[test]
    fn options_not_allowed_are_refused() {
        let r = Args::parse_from(["--qos".to_string(), "1".to_string()], &["host"]);
        assert_eq!(r, Err("unknown option `--qos`".to_string()));
    }
}
