//! The command line, parsed by hand: `umqtt pub …` and `umqtt sub …` with the
//! flags of mosquitto_pub and mosquitto_sub where they mean the same.
//!
//! Every option is a separate argument (`-t topic`, `--topic topic`); long
//! options also take `--topic=topic`. `-h` is the broker host, as in mosquitto;
//! `--help` prints the help. Parsing never touches the network or stdin: it
//! returns what to run, or a one-line error.

use std::path::PathBuf;
use std::time::Duration;

use umqtt_simple::QoS;
use umqtt_simple::packet::{validate_filter, validate_topic_name};

mod help;
mod table;
mod url;

pub use help::{USAGE, pub_usage, sub_usage};
use table::{OPTIONS, Set};

/// How to reach the broker and who to be: the options `pub` and `sub` share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Connection {
    /// `-h`: host name or IP address.
    pub host: String,
    /// `-p`.
    pub port: u16,
    /// `-i`; `None`: a generated unique id.
    pub client_id: Option<String>,
    /// `-u`.
    pub username: Option<String>,
    /// `-P`.
    pub password: Option<String>,
    /// `-k`, in seconds.
    pub keepalive: u16,
    /// `true` unless `-c`.
    pub clean_session: bool,
    /// `--will-*`.
    pub will: Option<Will>,
    /// `-d`.
    pub debug: bool,
    /// TLS options; `None`: plain TCP. (Boxed: most runs have none.)
    pub tls: Option<Box<Tls>>,
}

/// Which TLS implementation connects (`--tls-engine`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Engine {
    /// rustls (the default): TLS 1.2 and 1.3, RSA and ECDSA, X25519, the
    /// system trust store.
    #[default]
    Rustls,
    /// embedded-tls, what a device's `no_std` build speaks: TLS 1.3, P-256,
    /// one cipher suite.
    Embedded,
}

/// `--tls-version`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsVersion {
    /// `tlsv1.2`: TLS 1.2 only.
    Tls12,
    /// `tlsv1.3`: TLS 1.3 only.
    Tls13,
}

/// `--cafile`, `--capath`, `--cert`, `--key`, `--insecure`, `--tls-engine`,
/// `--tls-version`, `--alpn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `--cafile`.
    pub cafile: Option<PathBuf>,
    /// `--capath`.
    pub capath: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
    /// `--tls-engine`.
    pub engine: Engine,
    /// `--tls-version`; `None`: every version the engine speaks.
    pub version: Option<TlsVersion>,
    /// `--alpn`, in the order given.
    pub alpn: Vec<String>,
}

impl Default for Connection {
    fn default() -> Self {
        Connection {
            host: "localhost".to_string(),
            port: 1883,
            client_id: None,
            username: None,
            password: None,
            keepalive: 60,
            clean_session: true,
            will: None,
            debug: false,
            tls: None,
        }
    }
}

/// The last will (`--will-topic` and friends).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Will {
    /// `--will-topic`.
    pub topic: String,
    /// `--will-payload` (default empty).
    pub payload: String,
    /// `--will-qos` (default 0).
    pub qos: QoS,
    /// `--will-retain`.
    pub retain: bool,
}

/// Where `pub` takes its message from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// `-m`.
    Message(String),
    /// `-n`: an empty message.
    Null,
    /// `-l`: each line of stdin.
    Lines,
    /// `-s`: all of stdin.
    Stdin,
    /// `-f`: a file's contents.
    File(PathBuf),
}

/// `umqtt pub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PubArgs {
    /// The broker and the client's identity.
    pub connection: Connection,
    /// `-t`.
    pub topic: String,
    /// `-m`, `-l`, `-n`, `-s` or `-f`.
    pub source: Source,
    /// `-q`.
    pub qos: QoS,
    /// `-r`.
    pub retain: bool,
    /// `-W`, in seconds: how long until umqtt gives up.
    pub timeout_s: u32,
    /// `--repeat`: how many times to publish the message (at least 1).
    pub repeat: u32,
    /// `--repeat-delay`: the pause between two of them.
    pub repeat_delay: Duration,
    /// `--max-inflight`: with `-l` at QoS 1, how many messages may be sent
    /// and not yet acknowledged.
    pub max_inflight: u16,
    /// `--outbox FILE`: messages go through a file outbox that survives the
    /// process.
    pub outbox: Option<std::path::PathBuf>,
}

/// `pub -W` when not given, in seconds.
pub const DEFAULT_PUB_TIMEOUT_S: u32 = 30;

/// `pub --max-inflight` when not given: mosquitto_pub's default.
pub const DEFAULT_MAX_INFLIGHT: u16 = 20;

/// `umqtt sub`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubArgs {
    /// The broker and the client's identity.
    pub connection: Connection,
    /// `-t`, at least one.
    pub topics: Vec<String>,
    /// `-q`.
    pub qos: QoS,
    /// `-v`.
    pub verbose: bool,
    /// `-C`.
    pub count: Option<u64>,
    /// `-W`, in seconds.
    pub timeout_s: Option<u32>,
    /// `-N`: no newline after each payload.
    pub no_newline: bool,
    /// `-F`: how each message is printed.
    pub format: Option<crate::format::Format>,
    /// `-R`: do not print stale retained messages.
    pub skip_retained: bool,
    /// `-T`: do not print messages whose topic matches one of these.
    pub filter_out: Vec<String>,
    /// `-E`: exit once subscribed.
    pub exit_on_subscribed: bool,
    /// `-U`: filters to unsubscribe from; with no `-t`, exit once done.
    pub unsubscribe: Vec<String>,
    /// `--remove-retained`: clear each retained message received.
    pub remove_retained: bool,
}

/// A subcommand to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `umqtt pub`.
    Pub(PubArgs),
    /// `umqtt sub`.
    Sub(SubArgs),
}

impl Command {
    /// The connection options of either subcommand.
    pub fn connection(&self) -> &Connection {
        match self {
            Command::Pub(a) => &a.connection,
            Command::Sub(a) => &a.connection,
        }
    }
}

/// What the command line asks for.
// Made once per run and matched at once: the size of `Run` costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    /// Run a subcommand.
    Run(Command),
    /// Print this help text and exit 0.
    Help(String),
    /// Print the version and exit 0.
    Version,
}

/// Which subcommand is being parsed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Pub,
    Sub,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Pub => "pub",
            Kind::Sub => "sub",
        }
    }
}

/// The TLS port, used when a TLS option is given without `-p`.
pub const TLS_PORT: u16 = 8883;

/// Parses the arguments after the program name. An `Err` is one line to print
/// after `error: `, with exit status 2.
pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Parsed, String> {
    let mut args = args.into_iter();
    let Some(first) = args.next() else {
        return Err(
            "no subcommand given: use `umqtt pub` or `umqtt sub` (see `umqtt --help`)".into(),
        );
    };
    match first.as_str() {
        "pub" => parse_command(Kind::Pub, args),
        "sub" => parse_command(Kind::Sub, args),
        "--help" | "help" => match args.next().as_deref() {
            None => Ok(Parsed::Help(USAGE.to_string())),
            Some("pub") => Ok(Parsed::Help(pub_usage())),
            Some("sub") => Ok(Parsed::Help(sub_usage())),
            Some(other) => Err(format!("no help for `{other}`: use `pub` or `sub`")),
        },
        "--version" | "-V" => Ok(Parsed::Version),
        other => Err(format!(
            "unknown subcommand `{other}`: use `umqtt pub` or `umqtt sub` (see `umqtt --help`)"
        )),
    }
}

/// Everything the options of one subcommand set, before the checks that need
/// all of them.
#[derive(Default)]
struct Draft {
    connection: Connection,
    will_topic: Option<String>,
    will_payload: Option<String>,
    will_qos: Option<QoS>,
    will_retain: bool,
    topics: Vec<String>,
    sources: Vec<Source>,
    qos: QoS,
    retain: bool,
    verbose: bool,
    count: Option<u64>,
    timeout_s: Option<u32>,
    port_given: bool,
    tls: Tls,
    /// `-L mqtts://…`: TLS without a TLS option.
    tls_url: bool,
    /// `--tls-engine`, `--tls-version` or `--alpn` given (TLS even when
    /// they name the defaults).
    tls_asked: bool,
    no_newline: bool,
    format: Option<crate::format::Format>,
    skip_retained: bool,
    filter_out: Vec<String>,
    exit_on_subscribed: bool,
    unsubscribe: Vec<String>,
    remove_retained: bool,
    repeat: Option<u32>,
    repeat_delay: Option<Duration>,
    max_inflight: Option<u16>,
    outbox: Option<std::path::PathBuf>,
}

fn parse_command(kind: Kind, args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let hint = |message: String| format!("{message} (see `umqtt {} --help`)", kind.name());
    let mut d = Draft::default();
    let mut args = args;
    while let Some(arg) = args.next() {
        // `--name=value` for long options; short ones are always separate.
        let (name, inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let name = name.as_str();
        if name == "--help" {
            return Ok(Parsed::Help(match kind {
                Kind::Pub => pub_usage(),
                Kind::Sub => sub_usage(),
            }));
        }
        let Some(spec) = OPTIONS.iter().find(|o| o.names.contains(&name)) else {
            return Err(hint(if name.starts_with('-') && name.len() > 1 {
                format!("unknown option `{name}` for `umqtt {}`", kind.name())
            } else {
                format!("unexpected argument `{name}`")
            }));
        };
        if !spec.takes(kind) {
            return Err(hint(format!(
                "unknown option `{name}` for `umqtt {}`",
                kind.name()
            )));
        }
        match spec.set {
            Set::Flag(set) => match inline {
                Some(_) => return Err(hint(format!("`{name}` takes no value"))),
                None => set(&mut d),
            },
            Set::Value(set) => {
                let value = inline.or_else(|| args.next()).ok_or_else(|| {
                    if name == "-h" {
                        "`-h` needs a host: -h is the broker host, as in mosquitto; --help prints the help"
                            .to_string()
                    } else {
                        hint(format!("`{name}` needs a value"))
                    }
                })?;
                set(&mut d, kind, name, value)?;
            }
        }
    }
    finish(kind, d).map(Parsed::Run).map_err(hint)
}

/// The checks that need every option: required ones, conflicts, topics.
fn finish(kind: Kind, d: Draft) -> Result<Command, String> {
    let mut connection = d.connection;
    if d.tls_url || d.tls_asked || d.tls != Tls::default() {
        match (&d.tls.cert, &d.tls.key) {
            (Some(_), None) => return Err("--cert needs --key".into()),
            (None, Some(_)) => return Err("--key needs --cert".into()),
            _ => {}
        }
        let cas_given = d.tls.cafile.is_some() || d.tls.capath.is_some();
        if cas_given && d.tls.insecure {
            return Err(
                "--insecure turns verification off, so it cannot be used with --cafile or --capath: choose one"
                    .into(),
            );
        }
        if d.tls.engine == Engine::Embedded {
            if !cas_given && !d.tls.insecure {
                return Err(
                    "--tls-engine embedded needs --cafile or --capath to verify the broker (it cannot read the system trust store), or --insecure"
                        .into(),
                );
            }
            if d.tls.version == Some(TlsVersion::Tls12) {
                return Err(
                    "--tls-engine embedded speaks TLS 1.3 only, so not --tls-version tlsv1.2 (the default engine, rustls, speaks both)"
                        .into(),
                );
            }
        }
        // The rustls engine without --cafile/--capath trusts the system
        // store, as mosquitto_pub's --tls-use-os-certs.
        if !d.port_given {
            connection.port = TLS_PORT;
        }
        connection.tls = Some(Box::new(d.tls));
    }
    if connection.password.is_some() && connection.username.is_none() {
        return Err("-P needs -u: MQTT 3.1.1 sends no password without a user name".into());
    }
    if !connection.clean_session && connection.client_id.as_deref().is_none_or(str::is_empty) {
        return Err("-c needs a client id (-i): a persistent session is found by its id".into());
    }
    connection.will = match d.will_topic {
        Some(topic) => {
            check_topic("--will-topic", &topic)?;
            Some(Will {
                topic,
                payload: d.will_payload.unwrap_or_default(),
                qos: d.will_qos.unwrap_or_default(),
                retain: d.will_retain,
            })
        }
        None if d.will_payload.is_some() || d.will_qos.is_some() || d.will_retain => {
            return Err("--will-payload, --will-qos and --will-retain need --will-topic".into());
        }
        None => None,
    };
    match kind {
        Kind::Pub => {
            let mut topics = d.topics.into_iter();
            let (Some(topic), None) = (topics.next(), topics.next()) else {
                return Err("give exactly one topic with -t".into());
            };
            check_topic("-t", &topic)?;
            let mut sources = d.sources.into_iter();
            let source = match (sources.next(), sources.next()) {
                (Some(source), None) => source,
                (None, _) => return Err("give a message: -m, -l, -n, -s or -f".into()),
                (Some(_), Some(_)) => {
                    return Err("give only one of -m, -l, -n, -s and -f".into());
                }
            };
            if source == Source::Lines && (d.repeat.is_some() || d.repeat_delay.is_some()) {
                return Err("--repeat and --repeat-delay do not go with -l".into());
            }
            Ok(Command::Pub(PubArgs {
                connection,
                topic,
                source,
                qos: d.qos,
                retain: d.retain,
                timeout_s: d.timeout_s.unwrap_or(DEFAULT_PUB_TIMEOUT_S),
                repeat: d.repeat.unwrap_or(1),
                repeat_delay: d.repeat_delay.unwrap_or_default(),
                max_inflight: d.max_inflight.unwrap_or(DEFAULT_MAX_INFLIGHT),
                outbox: d.outbox,
            }))
        }
        Kind::Sub => {
            if d.topics.is_empty() && d.unsubscribe.is_empty() {
                return Err("give at least one topic filter with -t (or -U)".into());
            }
            for topic in &d.topics {
                validate_filter(topic.as_bytes())
                    .map_err(|e| format!("invalid topic filter `{topic}`: {e}"))?;
            }
            for (option, filters) in [("-T", &d.filter_out), ("-U", &d.unsubscribe)] {
                for filter in filters {
                    validate_filter(filter.as_bytes())
                        .map_err(|e| format!("invalid {option} filter `{filter}`: {e}"))?;
                }
            }
            Ok(Command::Sub(SubArgs {
                connection,
                topics: d.topics,
                qos: d.qos,
                verbose: d.verbose,
                count: d.count,
                timeout_s: d.timeout_s,
                no_newline: d.no_newline,
                format: d.format,
                skip_retained: d.skip_retained,
                filter_out: d.filter_out,
                exit_on_subscribed: d.exit_on_subscribed,
                unsubscribe: d.unsubscribe,
                remove_retained: d.remove_retained,
            }))
        }
    }
}

fn check_topic(option: &str, topic: &str) -> Result<(), String> {
    validate_topic_name(topic.as_bytes())
        .map_err(|e| format!("invalid {option} topic `{topic}`: {e}"))
}

fn nonempty(option: &str, value: String) -> Result<String, String> {
    if value.is_empty() {
        Err(format!("`{option}` needs a non-empty value"))
    } else {
        Ok(value)
    }
}

fn parse_port(value: &str) -> Result<u16, String> {
    value
        .parse()
        .ok()
        .filter(|&p| p != 0)
        .ok_or_else(|| format!("invalid port `{value}`: give 1 to 65535"))
}

/// A QoS for `option`; 2 only where `qos2` (everywhere but publishing).
fn parse_qos(option: &str, value: &str, qos2: bool) -> Result<QoS, String> {
    match value {
        "0" => Ok(QoS::AtMostOnce),
        "1" => Ok(QoS::AtLeastOnce),
        "2" if qos2 => Ok(QoS::ExactlyOnce),
        "2" => Err(format!(
            "{option} 2: publishing with QoS 2 is not supported, use 0 or 1"
        )),
        _ if qos2 => Err(format!("invalid QoS `{value}` for {option}: use 0, 1 or 2")),
        _ => Err(format!("invalid QoS `{value}` for {option}: use 0 or 1")),
    }
}

#[cfg(test)]
mod tests;
