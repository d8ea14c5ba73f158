//! The command line: what to measure, how often, and against which broker.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::Duration;

use crate::clients::{CLIENTS, Who};
use crate::passes::BLOCKS;
use crate::rumq;

/// What one run measures.
pub struct Config {
    /// The clients to measure (default: all).
    pub clients: Vec<Who>,
    /// The tests to run (default: all of [`TESTS`]).
    pub tests: Vec<&'static str>,
    /// A broker to use instead of starting one.
    pub broker: Option<SocketAddr>,
    /// The short mode: one repetition, a 6 s idle test.
    pub quick: bool,
    /// JSON lines on stdout instead of the table.
    pub json: bool,
    /// Repetitions of the throughput and round-trip tests.
    pub reps: usize,
    /// Messages of the QoS 0 test.
    pub qos0: usize,
    /// Messages of the QoS 1 test.
    pub qos1: usize,
    /// Samples of the round-trip test.
    pub rtt: usize,
    /// The QoS 1 window of the window tests (both clients alike).
    pub window: usize,
    /// Messages of the windowed QoS 1 test on loopback.
    pub qos1_window: usize,
    /// Round trips of each slow-link test: messages with window 1, and the
    /// messages with [`Config::window`] over the window.
    pub slow_rounds: usize,
    /// How long the idle test blocks.
    pub idle: Duration,
    /// The keepalive of the idle test, in seconds.
    pub keepalive_s: u16,
}

impl Config {
    /// Whether the test `name` runs.
    pub fn runs(&self, name: &str) -> bool {
        self.tests.contains(&name)
    }

    /// Connects the TLS pass times per client: one per block of each of its
    /// two tests (QoS 1, round trip), every repetition.
    pub fn tls_connects(&self) -> usize {
        2 * BLOCKS * self.reps
    }

    /// Messages of the slow-link test with a window of `window`.
    pub fn slow_messages(&self, window: usize) -> usize {
        self.slow_rounds * window
    }

    /// "quick" or "full".
    pub fn mode(&self) -> &'static str {
        if self.quick { "quick" } else { "full" }
    }
}

/// The groups of measurements, in the order they run ("tls": the TLS pass and
/// the code size with the TLS stack; not in a `--quick` run unless asked
/// for).
pub const TESTS: [&str; 9] = [
    "footprint",
    "heap",
    "qos0",
    "qos1",
    "window",
    "slow",
    "rtt",
    "idle",
    "tls",
];

/// What `--help` prints (and every unknown argument).
const USAGE: &str =
    "usage: umqtt-bench [--quick] [--tls] [--json] [--reps N] [--only TESTS] [--clients CLIENTS]
                   [--broker ADDR] [--rumqttc-cap N] [--window N]
  --quick            one repetition and a 6 s idle test, no TLS: finishes in under 60 s (CI)
  --tls              the TLS measurements only (same as --only tls): umqtt-simple over TLS and
                     rumqttc over rustls against a TLS mosquitto the bench starts, and the
                     code size with the TLS stack
  --json             one JSON object per line on stdout instead of the table
  --reps N           repetitions of the throughput and round-trip tests (default 5)
  --only TESTS       comma-separated subset of footprint,heap,qos0,qos1,window,slow,rtt,idle,tls
                     (window: QoS 1 with a window on loopback; slow: QoS 1 with window 1
                     and with the window through a proxy holding every packet 25 ms each
                     way; both against a second mosquitto with set_tcp_nodelay)
  --clients CLIENTS  comma-separated subset of raw,umqtt-simple,rumqttc
  --broker ADDR      use the broker at ADDR (e.g. 127.0.0.1:1883) instead of starting
                     mosquitto (to profile the clients without the broker)
  --rumqttc-cap N    capacity of rumqttc's request channel (default 10, as in its README)
  --window N         the QoS 1 window of the window and slow tests, the same for umqtt-simple
                     (set_window), rumqttc (set_inflight) and the raw limit (default 32)";

/// Reads the command line (`--help` prints the usage and exits; `--rumqttc-cap`
/// sets [`rumq::REQUEST_CAPACITY`]). The error is the message to print.
pub fn parse_args() -> Result<Config, String> {
    let mut config = Config {
        clients: CLIENTS.to_vec(),
        tests: TESTS.to_vec(),
        broker: None,
        quick: false,
        json: false,
        reps: 5,
        qos0: 100_000,
        qos1: 10_000,
        rtt: 2_000,
        window: 32,
        qos1_window: 50_000,
        slow_rounds: 100,
        idle: Duration::from_secs(10),
        keepalive_s: 5,
    };
    let mut reps = None;
    let mut chosen = false;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => config.quick = true,
            "--json" => config.json = true,
            "--reps" => reps = Some(positive(args.next(), "--reps")?),
            "--only" => {
                config.tests = list(args.next(), "test", &TESTS, |t| t)?;
                chosen = true;
            }
            "--tls" => {
                config.tests = vec!["tls"];
                chosen = true;
            }
            "--clients" => config.clients = list(args.next(), "client", &CLIENTS, |w| w.name())?,
            "--window" => {
                let n = positive(args.next(), "--window")?;
                config.window = n.min(usize::from(u16::MAX));
            }
            "--rumqttc-cap" => {
                let n = positive(args.next(), "--rumqttc-cap")?;
                rumq::REQUEST_CAPACITY.store(n, Ordering::Relaxed);
            }
            "--broker" => {
                let addr = args.next().and_then(|a| a.parse().ok());
                config.broker =
                    Some(addr.ok_or("--broker needs an address such as 127.0.0.1:1883")?);
            }
            "-h" | "--help" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => return Err(format!("unknown argument {other:?}\n{USAGE}")),
        }
    }
    if config.quick {
        config.reps = 1;
        config.idle = Duration::from_secs(6);
        config.qos1_window = 20_000;
        // The slow link is latency-bound: a second per client and window.
        config.slow_rounds = 20;
        if !chosen {
            config.tests.retain(|&t| t != "tls");
        }
    }
    if let Some(n) = reps {
        config.reps = n;
    }
    Ok(config)
}

/// The positive number after `option`.
fn positive(value: Option<String>, option: &str) -> Result<usize, String> {
    value
        .and_then(|n| n.parse().ok())
        .filter(|&n| n > 0)
        .ok_or_else(|| format!("{option} needs a positive number"))
}

/// The items of the comma-separated `value` among `known`, which `name`
/// names; `kind` says what an unknown one is.
fn list<T: Copy>(
    value: Option<String>,
    kind: &str,
    known: &[T],
    name: impl Fn(T) -> &'static str,
) -> Result<Vec<T>, String> {
    value
        .unwrap_or_default()
        .split(',')
        .map(|item| {
            known
                .iter()
                .copied()
                .find(|&k| name(k) == item)
                .ok_or_else(|| format!("unknown {kind} {item:?}\n{USAGE}"))
        })
        .collect()
}
