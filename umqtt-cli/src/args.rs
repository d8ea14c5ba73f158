//! The command line, parsed by hand: `umqtt pub …` and `umqtt sub …` with the
//! flags of mosquitto_pub and mosquitto_sub where they mean the same.
//!
//! Every option is a separate argument (`-t topic`, `--topic topic`); long
//! options also take `--topic=topic`. `-h` is the broker host, as in mosquitto;
//! `--help` prints the help. Parsing never touches the network or stdin: it
//! returns what to run, or a one-line error.

use std::path::PathBuf;

use umqtt_simple::QoS;
use umqtt_simple::packet::{validate_filter, validate_topic_name};

/// `umqtt --help`.
pub const USAGE: &str = "\
umqtt: publish and subscribe to an MQTT 3.1.1 broker, the mosquitto_pub and
mosquitto_sub way, on the umqtt client.

Usage:
  umqtt pub -t TOPIC (-m MESSAGE | -l | -n | -s | -f FILE) [options]
  umqtt sub -t FILTER [-t FILTER ...] [-v] [-C COUNT] [-W SECONDS] [options]
  umqtt pub --help | umqtt sub --help | umqtt --version

Exit status: 0 on success, 1 when the broker or the network failed (one line
on stderr says why), 2 for a bad command line.
";

/// Options shared by `pub` and `sub`, for their help texts.
const CONNECTION_HELP: &str = "\
Connection:
  -h, --host HOST          broker host name or IP address (default localhost)
  -p, --port PORT          broker port (default 1883)
  -i, --id ID              client id (default umqtt-pub-… / umqtt-sub-…, unique)
  -u, --username USER      user name
  -P, --pw PASSWORD        password (needs -u)
  -k, --keepalive SECONDS  keepalive, 0 to turn it off (default 60)
  -c, --disable-clean-session
                           persistent session: the broker keeps subscriptions
                           and queued QoS 1 messages while away (needs -i)
      --will-topic TOPIC   last will: published by the broker if this client
      --will-payload TEXT  vanishes without disconnecting (payload default
      --will-qos 0|1|2     empty, QoS 0, not retained)
      --will-retain        (Ctrl-C ends umqtt without disconnecting, so the
                           will is published then, unlike mosquitto_sub)
  -d, --debug              log every packet and connection event to stderr
      --help               print this help

TLS (TLS 1.3; any TLS option without -p means port 8883):
      --cafile FILE        verify the broker with this CA certificate (PEM);
                           the certificate must name the -h host
      --cert FILE          client certificate (PEM), for mutual TLS
      --key FILE           its private key (PEM, P-256), needs --cert
      --insecure           do not verify the broker's certificate (dangerous:
                           anyone on the path can read and change the traffic)
A failed handshake exits with status 1 and the reason (not trusted, name
mismatch, expired, TLS 1.2 only, plain TCP port, ...).

The connection is re-established by itself after it is lost (a broker
restart), with a note on stderr: \"connection lost, reconnecting…\" then
\"reconnected\". The first connection is not retried: if it fails, umqtt exits
with status 1 and the reason (connection refused, not authorised, timeout).
";

/// `umqtt pub --help`.
pub fn pub_usage() -> String {
    format!(
        "\
Usage: umqtt pub -t TOPIC (-m MESSAGE | -l | -n | -s | -f FILE) [options]

Publishes one message, or one per line of stdin, then disconnects. A lost
connection is re-established (a QoS 1 message is then sent again) until -W
seconds have passed: then umqtt gives up with status 1.

Message:
  -t, --topic TOPIC        topic to publish to (required)
  -m, --message MESSAGE    the message
  -l, --stdin-line         each line of stdin is a message (empty lines are
                           skipped; a trailing \\r is removed)
  -n, --null-message       an empty message (with -r: clears a retained one)
  -s, --stdin-file         all of stdin is one message
  -f, --file FILE          the contents of FILE are the message
  -q, --qos 0|1            quality of service (default 0; publishing with QoS 2
                           is not supported)
  -r, --retain             the broker keeps the message for later subscribers
  -W SECONDS               give up after SECONDS, counted from the start (with
                           -l: per message; default 30)

{CONNECTION_HELP}"
    )
}

/// `umqtt sub --help`.
pub fn sub_usage() -> String {
    format!(
        "\
Usage: umqtt sub -t FILTER [-t FILTER ...] [options]

Subscribes and prints each message's payload on its own line, until
interrupted, -C messages have been printed or -W seconds have passed (each
exits with status 0). Messages over 16 MiB are skipped with a warning.

Subscription:
  -t, --topic FILTER       topic filter, wildcards allowed (repeatable)
  -q, --qos 0|1|2          subscription QoS (default 0; QoS 2 messages are
                           printed exactly once)
  -v, --verbose            print \"topic payload\" (an empty payload prints
                           \"topic (null)\"; without -v it prints nothing)
  -C COUNT                 exit after COUNT messages
  -W SECONDS               exit after SECONDS seconds, counted from the start
                           (status 1 if not even subscribed by then)

{CONNECTION_HELP}"
    )
}

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

/// `--cafile`, `--cert`, `--key`, `--insecure`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tls {
    /// `--cafile`.
    pub cafile: Option<PathBuf>,
    /// `--cert`.
    pub cert: Option<PathBuf>,
    /// `--key`.
    pub key: Option<PathBuf>,
    /// `--insecure`.
    pub insecure: bool,
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
}

/// `pub -W` when not given, in seconds.
pub const DEFAULT_PUB_TIMEOUT_S: u32 = 30;

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
}

fn parse_command(kind: Kind, args: impl Iterator<Item = String>) -> Result<Parsed, String> {
    let hint = |message: String| format!("{message} (see `umqtt {} --help`)", kind.name());
    let mut d = Draft::default();
    let mut args = args;
    while let Some(arg) = args.next() {
        // `--name=value` for long options; short ones are always separate.
        let (name, mut inline) = match arg.split_once('=') {
            Some((name, value)) if name.starts_with("--") => {
                (name.to_string(), Some(value.to_string()))
            }
            _ => (arg.clone(), None),
        };
        let name = name.as_str();
        let mut value = || {
            inline.take().or_else(|| args.next()).ok_or_else(|| {
                if name == "-h" {
                    "`-h` needs a host: -h is the broker host, as in mosquitto; --help prints the help"
                        .to_string()
                } else {
                    hint(format!("`{name}` needs a value"))
                }
            })
        };
        let flag = |inline: &Option<String>| match inline {
            Some(_) => Err(hint(format!("`{name}` takes no value"))),
            None => Ok(true),
        };
        match (kind, name) {
            (_, "--help") => {
                return Ok(Parsed::Help(match kind {
                    Kind::Pub => pub_usage(),
                    Kind::Sub => sub_usage(),
                }));
            }
            (_, "-h" | "--host") => d.connection.host = nonempty(name, value()?)?,
            (_, "-p" | "--port") => {
                d.connection.port = parse_port(&value()?)?;
                d.port_given = true;
            }
            (_, "--cafile") => d.tls.cafile = Some(nonempty(name, value()?)?.into()),
            (_, "--cert") => d.tls.cert = Some(nonempty(name, value()?)?.into()),
            (_, "--key") => d.tls.key = Some(nonempty(name, value()?)?.into()),
            (_, "--insecure") => d.tls.insecure = flag(&inline)?,
            (_, "--capath") => {
                return Err(hint(
                    "--capath is not supported: give the CA certificate with --cafile".into(),
                ));
            }
            // An empty id asks the broker to assign one (clean session only).
            (_, "-i" | "--id") => d.connection.client_id = Some(value()?),
            (_, "-u" | "--username") => d.connection.username = Some(value()?),
            (_, "-P" | "--pw") => d.connection.password = Some(value()?),
            (_, "-k" | "--keepalive") => {
                let v = value()?;
                d.connection.keepalive = v
                    .parse()
                    .map_err(|_| format!("invalid keepalive `{v}`: give 0 to 65535 seconds"))?;
            }
            (_, "-c" | "--disable-clean-session") => d.connection.clean_session = !flag(&inline)?,
            (_, "-d" | "--debug") => d.connection.debug = flag(&inline)?,
            (_, "--will-topic") => d.will_topic = Some(value()?),
            (_, "--will-payload") => d.will_payload = Some(value()?),
            (_, "--will-qos") => d.will_qos = Some(parse_qos(name, &value()?, true)?),
            (_, "--will-retain") => d.will_retain = flag(&inline)?,
            (_, "-t" | "--topic") => d.topics.push(value()?),
            // The client receives QoS 2, and the broker publishes a will.
            (_, "-q" | "--qos") => d.qos = parse_qos(name, &value()?, kind == Kind::Sub)?,
            (Kind::Pub, "-m" | "--message") => d.sources.push(Source::Message(value()?)),
            (Kind::Pub, "-l" | "--stdin-line") => {
                flag(&inline)?;
                d.sources.push(Source::Lines);
            }
            (Kind::Pub, "-n" | "--null-message") => {
                flag(&inline)?;
                d.sources.push(Source::Null);
            }
            (Kind::Pub, "-s" | "--stdin-file") => {
                flag(&inline)?;
                d.sources.push(Source::Stdin);
            }
            (Kind::Pub, "-f" | "--file") => d.sources.push(Source::File(value()?.into())),
            (Kind::Pub, "-r" | "--retain") => d.retain = flag(&inline)?,
            (Kind::Sub, "-v" | "--verbose") => d.verbose = flag(&inline)?,
            (Kind::Sub, "-C") => {
                let v = value()?;
                d.count =
                    Some(v.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
                        format!("invalid count `{v}` for -C: give a number above 0")
                    })?);
            }
            (_, "-W") => {
                let v = value()?;
                d.timeout_s = Some(v.parse().ok().filter(|&s| s > 0).ok_or_else(|| {
                    format!("invalid timeout `{v}` for -W: give whole seconds above 0")
                })?);
            }
            (_, other) if other.starts_with('-') && other.len() > 1 => {
                return Err(hint(format!(
                    "unknown option `{other}` for `umqtt {}`",
                    kind.name()
                )));
            }
            (_, other) => return Err(hint(format!("unexpected argument `{other}`"))),
        }
    }
    finish(kind, d).map(Parsed::Run).map_err(hint)
}

/// The checks that need every option: required ones, conflicts, topics.
fn finish(kind: Kind, d: Draft) -> Result<Command, String> {
    let mut connection = d.connection;
    if d.tls != Tls::default() {
        match (&d.tls.cert, &d.tls.key) {
            (Some(_), None) => return Err("--cert needs --key".into()),
            (None, Some(_)) => return Err("--key needs --cert".into()),
            _ => {}
        }
        if d.tls.cafile.is_none() && !d.tls.insecure {
            return Err("TLS needs --cafile to verify the broker (or --insecure)".into());
        }
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
            Ok(Command::Pub(PubArgs {
                connection,
                topic,
                source,
                qos: d.qos,
                retain: d.retain,
                timeout_s: d.timeout_s.unwrap_or(DEFAULT_PUB_TIMEOUT_S),
            }))
        }
        Kind::Sub => {
            if d.topics.is_empty() {
                return Err("give at least one topic filter with -t".into());
            }
            for topic in &d.topics {
                validate_filter(topic.as_bytes())
                    .map_err(|e| format!("invalid topic filter `{topic}`: {e}"))?;
            }
            Ok(Command::Sub(SubArgs {
                connection,
                topics: d.topics,
                qos: d.qos,
                verbose: d.verbose,
                count: d.count,
                timeout_s: d.timeout_s,
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
mod tests {
    use super::*;

    fn parse_strs(args: &[&str]) -> Result<Parsed, String> {
        parse(args.iter().map(|s| s.to_string()))
    }

    fn publish(args: &[&str]) -> PubArgs {
        let mut all = vec!["pub"];
        all.extend_from_slice(args);
        match parse_strs(&all) {
            Ok(Parsed::Run(Command::Pub(a))) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn subscribe(args: &[&str]) -> SubArgs {
        let mut all = vec!["sub"];
        all.extend_from_slice(args);
        match parse_strs(&all) {
            Ok(Parsed::Run(Command::Sub(a))) => a,
            other => panic!("{args:?}: {other:?}"),
        }
    }

    fn error(args: &[&str]) -> String {
        match parse_strs(args) {
            Err(e) => e,
            other => panic!("{args:?} should fail: {other:?}"),
        }
    }

    #[test]
    fn pub_defaults() {
        let a = publish(&["-t", "a/b", "-m", "hello"]);
        assert_eq!(
            a,
            PubArgs {
                connection: Connection::default(),
                topic: "a/b".into(),
                source: Source::Message("hello".into()),
                qos: QoS::AtMostOnce,
                retain: false,
                timeout_s: DEFAULT_PUB_TIMEOUT_S,
            }
        );
        assert_eq!(a.connection.host, "localhost");
        assert_eq!(a.connection.port, 1883);
        assert_eq!(a.connection.keepalive, 60);
        assert!(a.connection.clean_session);
    }

    #[test]
    fn pub_every_option_short() {
        let a = publish(&[
            "-h",
            "10.0.0.2",
            "-p",
            "1884",
            "-i",
            "dev",
            "-u",
            "alice",
            "-P",
            "secret",
            "-k",
            "30",
            "-c",
            "-d",
            "-t",
            "t",
            "-l",
            "-q",
            "1",
            "-r",
            "-W",
            "5",
            "--will-topic",
            "w",
            "--will-payload",
            "gone",
            "--will-qos",
            "1",
            "--will-retain",
        ]);
        assert_eq!(a.timeout_s, 5);
        let c = &a.connection;
        assert_eq!(c.host, "10.0.0.2");
        assert_eq!(c.port, 1884);
        assert_eq!(c.client_id.as_deref(), Some("dev"));
        assert_eq!(c.username.as_deref(), Some("alice"));
        assert_eq!(c.password.as_deref(), Some("secret"));
        assert_eq!(c.keepalive, 30);
        assert!(!c.clean_session);
        assert!(c.debug);
        assert_eq!(
            c.will,
            Some(Will {
                topic: "w".into(),
                payload: "gone".into(),
                qos: QoS::AtLeastOnce,
                retain: true,
            })
        );
        assert_eq!(a.source, Source::Lines);
        assert_eq!(a.qos, QoS::AtLeastOnce);
        assert!(a.retain);
    }

    #[test]
    fn long_options_both_spellings() {
        let a = publish(&[
            "--host=broker",
            "--port",
            "8883",
            "--id=x",
            "--username",
            "u",
            "--pw=p",
            "--keepalive=0",
            "--topic",
            "t",
            "--message=a=b",
            "--qos=1",
            "--retain",
        ]);
        assert_eq!(a.connection.host, "broker");
        assert_eq!(a.connection.port, 8883);
        assert_eq!(a.connection.keepalive, 0);
        assert_eq!(a.source, Source::Message("a=b".into()));
        assert!(a.retain);
        let s = subscribe(&[
            "--topic=x/#",
            "--verbose",
            "--disable-clean-session",
            "--id",
            "i",
        ]);
        assert!(s.verbose);
        assert!(!s.connection.clean_session);
    }

    #[test]
    fn pub_message_sources() {
        assert_eq!(publish(&["-t", "t", "-n"]).source, Source::Null);
        assert_eq!(publish(&["-t", "t", "-s"]).source, Source::Stdin);
        assert_eq!(
            publish(&["-t", "t", "-f", "fw.bin"]).source,
            Source::File("fw.bin".into())
        );
        // A message may look like an option: it is the value of -m.
        assert_eq!(
            publish(&["-t", "t", "-m", "-v"]).source,
            Source::Message("-v".into())
        );
        assert_eq!(
            publish(&["-t", "t", "-m", ""]).source,
            Source::Message(String::new())
        );
    }

    #[test]
    fn sub_topics_repeat_and_limits() {
        let s = subscribe(&[
            "-t", "a/+", "-t", "b/#", "-v", "-C", "5", "-W", "3", "-q", "1",
        ]);
        assert_eq!(s.topics, vec!["a/+".to_string(), "b/#".to_string()]);
        assert!(s.verbose);
        assert_eq!(s.count, Some(5));
        assert_eq!(s.timeout_s, Some(3));
        assert_eq!(s.qos, QoS::AtLeastOnce);
        let s = subscribe(&["-t", "#"]);
        assert_eq!((s.count, s.timeout_s, s.verbose), (None, None, false));
        assert_eq!(subscribe(&["-t", "#", "-q", "2"]).qos, QoS::ExactlyOnce);
    }

    #[test]
    fn an_empty_client_id_asks_the_broker_for_one_with_a_clean_session() {
        // MQTT-3.1.3-6: the broker assigns an id to an empty one.
        let s = subscribe(&["-t", "#", "-i", ""]);
        assert_eq!(s.connection.client_id.as_deref(), Some(""));
        assert!(s.connection.clean_session);
    }

    #[test]
    fn help_everywhere() {
        assert_eq!(parse_strs(&["--help"]), Ok(Parsed::Help(USAGE.into())));
        assert_eq!(parse_strs(&["help"]), Ok(Parsed::Help(USAGE.into())));
        assert_eq!(parse_strs(&["help", "pub"]), Ok(Parsed::Help(pub_usage())));
        assert_eq!(parse_strs(&["help", "sub"]), Ok(Parsed::Help(sub_usage())));
        assert_eq!(
            parse_strs(&["pub", "--help"]),
            Ok(Parsed::Help(pub_usage()))
        );
        // --help wins over what is missing or wrong after it.
        assert_eq!(
            parse_strs(&["sub", "--help", "-q", "7"]),
            Ok(Parsed::Help(sub_usage()))
        );
        assert_eq!(parse_strs(&["--version"]), Ok(Parsed::Version));
        // The limits the help states are the ones in force.
        let mib = crate::session::RX_BUFFER >> 20;
        assert!(sub_usage().contains(&format!("over {mib} MiB")));
        assert!(pub_usage().contains(&format!("default {DEFAULT_PUB_TIMEOUT_S})")));
        for text in [pub_usage(), sub_usage()] {
            assert!(text.contains("-h, --host HOST"));
            assert!(text.contains("--cafile FILE"));
        }
    }

    #[test]
    fn h_is_the_host_not_help() {
        assert_eq!(
            publish(&["-h", "example", "-t", "t", "-n"]).connection.host,
            "example"
        );
        assert_eq!(
            error(&["pub", "-t", "t", "-n", "-h"]),
            "`-h` needs a host: -h is the broker host, as in mosquitto; --help prints the help"
        );
    }

    #[test]
    fn tls_options_select_tls_and_port_8883() {
        let a = publish(&["-t", "t", "-n", "--cafile", "ca.pem"]);
        assert_eq!(a.connection.port, TLS_PORT);
        let tls = a.connection.tls.expect("tls");
        assert_eq!(tls.cafile, Some(PathBuf::from("ca.pem")));
        assert!(!tls.insecure);
        let a = publish(&["-t", "t", "-n", "--insecure", "-p", "9999"]);
        assert_eq!(a.connection.port, 9999);
        assert!(a.connection.tls.expect("tls").insecure);
        let a = publish(&[
            "-t",
            "t",
            "-n",
            "--cafile=ca.pem",
            "--cert",
            "c.pem",
            "--key",
            "k.pem",
        ]);
        let tls = a.connection.tls.expect("tls");
        assert_eq!(tls.cert, Some(PathBuf::from("c.pem")));
        assert_eq!(tls.key, Some(PathBuf::from("k.pem")));
        assert_eq!(publish(&["-t", "t", "-n"]).connection.tls, None);
        assert_eq!(publish(&["-t", "t", "-n"]).connection.port, 1883);
    }

    #[test]
    fn incomplete_tls_options_are_refused_with_one_clear_line() {
        assert!(
            error(&[
                "pub", "-t", "t", "-n", "--cert", "c.pem", "--cafile", "ca.pem"
            ])
            .starts_with("--cert needs --key")
        );
        assert!(
            error(&["sub", "-t", "t", "--key", "k.pem", "--cafile", "ca"])
                .starts_with("--key needs --cert")
        );
        assert!(
            error(&["sub", "-t", "t", "--cert", "c", "--key", "k"])
                .starts_with("TLS needs --cafile")
        );
        assert!(
            error(&["sub", "-t", "t", "--capath", "/etc/ssl"])
                .starts_with("--capath is not supported")
        );
    }

    #[test]
    fn errors_are_one_line() {
        let cases: &[(&[&str], &str)] = &[
            (&[], "no subcommand given"),
            (&["publish"], "unknown subcommand `publish`"),
            (&["pub", "-m", "x"], "give exactly one topic with -t"),
            (
                &["pub", "-t", "a", "-t", "b", "-m", "x"],
                "give exactly one topic with -t",
            ),
            (&["pub", "-t", "a"], "give a message: -m, -l, -n, -s or -f"),
            (
                &["pub", "-t", "a", "-m", "x", "-l"],
                "give only one of -m, -l, -n, -s and -f",
            ),
            (&["pub", "-t", "a/#", "-m", "x"], "invalid -t topic `a/#`"),
            (&["pub", "-t", "", "-m", "x"], "invalid -t topic ``"),
            (&["sub"], "give at least one topic filter with -t"),
            (&["sub", "-t", "a/b#"], "invalid topic filter `a/b#`"),
            (
                &["sub", "-t", "a", "-m", "x"],
                "unknown option `-m` for `umqtt sub`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-v"],
                "unknown option `-v` for `umqtt pub`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-C", "1"],
                "unknown option `-C`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "extra"],
                "unexpected argument `extra`",
            ),
            (&["pub", "-t"], "`-t` needs a value"),
            (
                &["pub", "-t", "a", "-m", "x", "-p", "0"],
                "invalid port `0`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-p", "65536"],
                "invalid port `65536`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-q", "2"],
                "-q 2: publishing with QoS 2 is not supported",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-c", "-i", ""],
                "-c needs a client id (-i)",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-q", "one"],
                "invalid QoS `one` for -q",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-k", "-1"],
                "invalid keepalive `-1`",
            ),
            (
                &["pub", "-t", "a", "-m", "x", "-h", ""],
                "`-h` needs a non-empty value",
            ),
            (&["pub", "-t", "a", "-m", "x", "-P", "pw"], "-P needs -u"),
            (&["sub", "-t", "a", "-c"], "-c needs a client id (-i)"),
            (
                &["sub", "-t", "a", "--will-payload", "x"],
                "need --will-topic",
            ),
            (&["sub", "-t", "a", "--will-retain"], "need --will-topic"),
            (
                &["sub", "-t", "a", "--will-topic", "w/+"],
                "invalid --will-topic topic `w/+`",
            ),
            (
                &["sub", "-t", "a", "--will-qos", "3"],
                "invalid QoS `3` for --will-qos: use 0, 1 or 2",
            ),
            (&["sub", "-t", "a", "-C", "0"], "invalid count `0` for -C"),
            (&["sub", "-t", "a", "-C", "x"], "invalid count `x` for -C"),
            (&["sub", "-t", "a", "-W", "0"], "invalid timeout `0` for -W"),
            (
                &["sub", "-t", "a", "-W", "1.5"],
                "invalid timeout `1.5` for -W",
            ),
            (&["sub", "-t", "a", "-v=1"], "unknown option `-v=1`"),
            (
                &["sub", "-t", "a", "--verbose=1"],
                "`--verbose` takes no value",
            ),
            (&["help", "nope"], "no help for `nope`"),
        ];
        for (args, expected) in cases {
            let e = error(args);
            assert!(
                e.contains(expected),
                "{args:?}: {e:?} should contain {expected:?}"
            );
            assert!(!e.contains('\n'), "{args:?}: {e:?} is not one line");
        }
    }

    #[test]
    fn subcommand_errors_point_at_its_help() {
        assert!(error(&["sub", "-x"]).ends_with("(see `umqtt sub --help`)"));
        assert!(error(&["pub", "-x"]).ends_with("(see `umqtt pub --help`)"));
    }
}
