//! `umqtt-bench`: speed, memory and size of umqtt-simple next to the raw-socket
//! limit and rumqttc's synchronous client, all in one run against one broker
//! (issue 5; results and method in docs/BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p umqtt-bench              # full run
//! cargo run --release -p umqtt-bench -- --quick   # under 60 s (CI)
//! cargo run --release -p umqtt-bench -- --json    # one JSON object per line
//! ```
//!
//! The crate has no `unsafe`: the counting allocator is `stats_alloc`'s (see
//! [`heap_count`]), and CPU time comes from `/proc` (see [`cpu`]).

mod common;
mod cpu;
mod footprint;
mod heap_count;
mod raw;
mod rumq;
mod umqtt;

use std::collections::BTreeMap;
use std::fmt::{Display, Write as _};
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use crate::common::{IdleResult, PAYLOAD, Res, client_id, topic};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Raw,
    Umqtt,
    Rumqttc,
}

const CLIENTS: [Who; 3] = [Who::Raw, Who::Umqtt, Who::Rumqttc];

impl Who {
    fn name(self) -> &'static str {
        match self {
            Who::Raw => "raw",
            Who::Umqtt => "umqtt-simple",
            Who::Rumqttc => "rumqttc",
        }
    }

    fn column(self) -> &'static str {
        match self {
            Who::Raw => "raw limit",
            Who::Umqtt => "umqtt-simple (std)",
            Who::Rumqttc => "rumqttc (sync)",
        }
    }
}

/// Which way is better for a figure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Better {
    Higher,
    Lower,
    /// Information only.
    Neither,
}

/// One line of the table.
struct Metric {
    id: &'static str,
    label: String,
    unit: &'static str,
    better: Better,
    decimals: usize,
    /// Whether a ratio to the raw limit means anything.
    ratio: bool,
    /// The metric whose raw-limit figure the ratio is to (`None`: this one).
    baseline: Option<&'static str>,
}

struct Config {
    /// The clients to measure (default: all).
    clients: Vec<Who>,
    /// The tests to run (default: all of [`TESTS`]).
    tests: Vec<&'static str>,
    /// A broker to use instead of starting one.
    broker: Option<SocketAddr>,
    quick: bool,
    json: bool,
    reps: usize,
    qos0: usize,
    qos1: usize,
    rtt: usize,
    idle: Duration,
    keepalive_s: u16,
}

/// The groups of measurements, in the order they run.
const TESTS: [&str; 6] = ["footprint", "heap", "qos0", "qos1", "rtt", "idle"];

const USAGE: &str = "usage: umqtt-bench [--quick] [--json] [--reps N] [--only TESTS] [--clients CLIENTS] [--broker ADDR]
                   [--rumqttc-cap N]
  --quick            one repetition and a 6 s idle test: finishes in under 60 s (CI)
  --json             one JSON object per line on stdout instead of the table
  --reps N           repetitions of the throughput and round-trip tests (default 5)
  --only TESTS       comma-separated subset of footprint,heap,qos0,qos1,rtt,idle
  --clients CLIENTS  comma-separated subset of raw,umqtt-simple,rumqttc
  --broker ADDR      use the broker at ADDR (e.g. 127.0.0.1:1883) instead of starting
                     mosquitto (to profile the clients without the broker)
  --rumqttc-cap N    capacity of rumqttc's request channel (default 10, as in its README)";

fn parse_args() -> Result<Config, String> {
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
        idle: Duration::from_secs(10),
        keepalive_s: 5,
    };
    let mut reps = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--quick" => config.quick = true,
            "--json" => config.json = true,
            "--reps" => {
                let n = args.next().and_then(|n| n.parse().ok()).filter(|&n| n > 0);
                reps = Some(n.ok_or("--reps needs a positive number")?);
            }
            "--only" => {
                let list = args.next().unwrap_or_default();
                config.tests = Vec::new();
                for name in list.split(',') {
                    let test = TESTS
                        .iter()
                        .find(|t| **t == name)
                        .ok_or_else(|| format!("unknown test {name:?}\n{USAGE}"))?;
                    config.tests.push(test);
                }
            }
            "--clients" => {
                let list = args.next().unwrap_or_default();
                config.clients = Vec::new();
                for name in list.split(',') {
                    let who = CLIENTS
                        .iter()
                        .find(|w| w.name() == name)
                        .ok_or_else(|| format!("unknown client {name:?}\n{USAGE}"))?;
                    config.clients.push(*who);
                }
            }
            "--rumqttc-cap" => {
                let n = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .filter(|&n: &usize| n > 0);
                let n = n.ok_or("--rumqttc-cap needs a positive number")?;
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
    }
    if let Some(n) = reps {
        config.reps = n;
    }
    Ok(config)
}

/// Everything measured: (metric id, client) to value; `None` where a client
/// has no such figure or the measurement failed.
#[derive(Default)]
struct Results {
    values: BTreeMap<(&'static str, Who), f64>,
    notes: Vec<String>,
    failures: usize,
}

impl Results {
    fn set(&mut self, id: &'static str, who: Who, value: f64) {
        self.values.insert((id, who), value);
    }

    fn get(&self, id: &str, who: Who) -> Option<f64> {
        self.values
            .iter()
            .find(|((i, w), _)| *i == id && *w == who)
            .map(|(_, v)| *v)
    }

    fn note(&mut self, text: String) {
        eprintln!("umqtt-bench: {text}");
        self.notes.push(text);
    }

    /// A measurement that could not be made: noted, and the exit status
    /// becomes 1 (CI checks that the program keeps working, not its figures).
    fn fail(&mut self, text: String) {
        self.failures += 1;
        self.note(format!("FAILED: {text}"));
    }
}

fn progress(text: impl Display) {
    eprintln!("umqtt-bench: {text}");
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    Some(values[values.len() / 2])
}

/// The value at quantile `q` of sorted `samples`.
fn quantile(samples: &[Duration], q: f64) -> Option<Duration> {
    if samples.is_empty() {
        return None;
    }
    let index = ((samples.len() as f64 - 1.0) * q).round() as usize;
    samples.get(index).copied()
}

/// How a client publishes in the QoS 0 test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Qos0Mode {
    /// Its usual way: the raw limit writes about 64 KiB per write, the
    /// clients send each message as it is published.
    Usual,
    /// The raw limit with one packet per write.
    OneWritePerMessage,
    /// umqtt-simple with `Options::batch_qos0` and a transmit buffer of
    /// `tx` bytes.
    Batched { tx: usize },
}

/// The QoS 0 passes besides each client's usual one: the mode and the ids of
/// the two metrics (msg/s, publisher CPU) its figures go to.
fn qos0_extra_passes(who: Who) -> &'static [(Qos0Mode, &'static str, &'static str)] {
    match who {
        Who::Raw => &[(
            Qos0Mode::OneWritePerMessage,
            "qos0_throughput_unbatched",
            "qos0_publisher_cpu_unbatched",
        )],
        Who::Umqtt => &[
            (
                Qos0Mode::Batched { tx: 1024 },
                "qos0_throughput_batched_1k",
                "qos0_publisher_cpu_batched_1k",
            ),
            (
                Qos0Mode::Batched { tx: 16 * 1024 },
                "qos0_throughput_batched_16k",
                "qos0_publisher_cpu_batched_16k",
            ),
        ],
        Who::Rumqttc => &[],
    }
}

/// The QoS 0 test: `who` publishes `n` messages, a raw subscriber counts them.
/// Returns msg/s end to end and the publisher's CPU seconds per 100 000
/// messages.
fn qos0_once(
    who: Who,
    addr: SocketAddr,
    n: usize,
    run: usize,
    mode: Qos0Mode,
) -> Res<(f64, Option<f64>)> {
    let topic = topic("q0", run);
    let counter = raw::Counter::start(addr, &topic, n, Duration::from_secs(5))?;
    let (publish, rumq) = match who {
        Who::Raw => {
            let batched = mode != Qos0Mode::OneWritePerMessage;
            (raw::publish_qos0(addr, topic.as_bytes(), n, batched)?, None)
        }
        Who::Umqtt => {
            let batch_tx = match mode {
                Qos0Mode::Batched { tx } => Some(tx),
                _ => None,
            };
            let publish = umqtt::publish_qos0(addr, topic.as_bytes(), n, batch_tx)?;
            (publish, None)
        }
        Who::Rumqttc => {
            let (publish, rumq) = rumq::publish_qos0(addr, topic.as_bytes(), n)?;
            (publish, Some(rumq))
        }
    };
    let (last, received) = counter.join()?;
    let mut cpu = publish.publisher_cpu;
    if let Some(rumq) = rumq {
        // The connection thread does the writing: its CPU counts too.
        let connection_cpu = rumq.finish()?;
        cpu = cpu.zip(connection_cpu).map(|(a, b)| a + b);
    }
    if received < n {
        return Err(format!(
            "the subscriber received {received} of {n} messages (the broker dropped some)"
        ));
    }
    let elapsed = last.saturating_duration_since(publish.start).as_secs_f64();
    // Per 100 000 messages, whatever the count.
    let cpu_per_100k = cpu.map(|c| c.as_secs_f64() * 100_000.0 / n as f64);
    Ok((n as f64 / elapsed, cpu_per_100k))
}

/// `n` QoS 1 publishes one after the other (after `n / 20` untimed ones);
/// returns the time they took.
fn qos1_once(who: Who, addr: SocketAddr, n: usize, run: usize) -> Res<Duration> {
    let topic = topic("q1", run);
    let warmup = (n / 20).max(10);
    match who {
        Who::Raw => raw::qos1(addr, topic.as_bytes(), warmup, n),
        Who::Umqtt => umqtt::qos1(addr, topic.as_bytes(), warmup, n),
        Who::Rumqttc => rumq::qos1(addr, topic.as_bytes(), warmup, n),
    }
}

fn rtt_once(
    who: Who,
    addr: SocketAddr,
    n: usize,
    run: usize,
    samples: &mut Vec<Duration>,
) -> Res<()> {
    let topic = topic("rt", run);
    let warmup = (n / 20).max(10);
    samples.reserve(n);
    match who {
        Who::Raw => raw::round_trip(addr, topic.as_bytes(), warmup, samples, n),
        Who::Umqtt => umqtt::round_trip(addr, topic.as_bytes(), warmup, samples, n),
        Who::Rumqttc => rumq::round_trip(addr, topic.as_bytes(), warmup, samples, n),
    }
}

/// Allocation counts of one client over the heap workload: 1 000 QoS 0
/// publishes, 1 000 QoS 1 publishes (each with its PUBACK), 1 000 round trips
/// (umqtt-simple also 1 000 `check_msg` calls), after connect and subscribe.
fn heap_once(who: Who, addr: SocketAddr) -> Res<(usize, usize)> {
    let (topic, own) = (topic("hp", 0), topic("hq", who as usize));
    let mut before = None;
    let mut after = None;
    let mut begin = || before = Some(heap_count::stats());
    let mut end = || after = Some(heap_count::stats());
    let (topic, own) = (topic.as_bytes(), own.as_bytes());
    match who {
        Who::Raw => raw::heap(addr, topic, own, &mut begin, &mut end)?,
        Who::Umqtt => umqtt::heap(addr, topic, own, &mut begin, &mut end)?,
        Who::Rumqttc => rumq::heap(addr, topic, own, &mut begin, &mut end)?,
    }
    let (Some(before), Some(after)) = (before, after) else {
        return Err("heap window not reached".into());
    };
    let change = after - before;
    Ok((
        change.allocations + change.reallocations,
        change.bytes_allocated,
    ))
}

/// Bytes a connected client holds: its own size, the buffers it borrows, and
/// the heap it holds once connected (measured by the counting allocator
/// around construction and connect).
fn memory_once(who: Who, addr: SocketAddr) -> Res<(usize, usize, usize)> {
    match who {
        Who::Raw => Ok((size_of::<std::net::TcpStream>(), 0, 0)),
        Who::Umqtt => umqtt::memory(addr),
        Who::Rumqttc => rumq::memory(addr),
    }
}

/// Runs the idle test for every client at once (they are idle: they do not
/// disturb each other), then wakes each with a message.
fn idle_all(addr: SocketAddr, config: &Config) -> Vec<(Who, Res<IdleResult>)> {
    let barrier = Arc::new(Barrier::new(config.clients.len() + 1));
    let keepalive = config.keepalive_s;
    let handles: Vec<_> = config
        .clients
        .iter()
        .map(|&who| {
            let barrier = Arc::clone(&barrier);
            let wake = topic("id", who as usize);
            let handle = thread::spawn(move || {
                let mut ready = Some(|| {
                    barrier.wait();
                });
                let result = match who {
                    Who::Raw => raw::idle(addr, wake.as_bytes(), keepalive, || {
                        if let Some(f) = ready.take() {
                            f();
                        }
                    }),
                    Who::Umqtt => umqtt::idle(addr, wake.as_bytes(), keepalive, || {
                        if let Some(f) = ready.take() {
                            f();
                        }
                    }),
                    Who::Rumqttc => rumq::idle(addr, wake.as_bytes(), keepalive, || {
                        if let Some(f) = ready.take() {
                            f();
                        }
                    }),
                };
                // A client that failed before it was ready must not block the
                // others at the barrier.
                if let Some(f) = ready.take() {
                    f();
                }
                result
            });
            (who, handle)
        })
        .collect();
    barrier.wait();
    thread::sleep(config.idle);
    let waker = raw::RawConn::connect(addr, &client_id("waker"), 60);
    let mut results = Vec::new();
    match waker {
        Ok(mut waker) => {
            for &who in &config.clients {
                let packet =
                    raw::publish_packet(topic("id", who as usize).as_bytes(), &PAYLOAD, None);
                if let Err(e) = waker.send(&packet) {
                    progress(format!("idle: waking {}: {e}", who.name()));
                }
            }
            for (who, handle) in handles {
                let result = handle
                    .join()
                    .unwrap_or_else(|_| Err("the idle thread panicked".into()));
                results.push((who, result));
            }
            waker.disconnect();
        }
        Err(e) => results.extend(
            config
                .clients
                .iter()
                .map(|&w| (w, Err(format!("waker: {e}")))),
        ),
    }
    results
}

fn metrics(config: &Config) -> Vec<Metric> {
    let thousands = |n: usize| fmt_num(n as f64, 0);
    vec![
        Metric {
            id: "qos0_throughput",
            label: format!("QoS 0 end to end, {} msgs", thousands(config.qos0)),
            unit: "msg/s",
            better: Better::Higher,
            decimals: 0,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "qos0_throughput_unbatched",
            label: "  raw limit with one write per message".into(),
            unit: "msg/s",
            better: Better::Neither,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "qos0_throughput_batched_1k",
            label: "  umqtt-simple batch_qos0, 1 KiB tx buffer".into(),
            unit: "msg/s",
            better: Better::Neither,
            decimals: 0,
            ratio: true,
            baseline: Some("qos0_throughput"),
        },
        Metric {
            id: "qos0_throughput_batched_16k",
            label: "  umqtt-simple batch_qos0, 16 KiB tx buffer".into(),
            unit: "msg/s",
            better: Better::Neither,
            decimals: 0,
            ratio: true,
            baseline: Some("qos0_throughput"),
        },
        Metric {
            id: "qos0_publisher_cpu",
            label: "QoS 0 publisher CPU per 100 000 msgs".into(),
            unit: "s",
            better: Better::Lower,
            decimals: 3,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "qos0_publisher_cpu_unbatched",
            label: "  raw limit with one write per message".into(),
            unit: "s",
            better: Better::Neither,
            decimals: 3,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "qos0_publisher_cpu_batched_1k",
            label: "  umqtt-simple batch_qos0, 1 KiB tx buffer".into(),
            unit: "s",
            better: Better::Neither,
            decimals: 3,
            ratio: true,
            baseline: Some("qos0_publisher_cpu"),
        },
        Metric {
            id: "qos0_publisher_cpu_batched_16k",
            label: "  umqtt-simple batch_qos0, 16 KiB tx buffer".into(),
            unit: "s",
            better: Better::Neither,
            decimals: 3,
            ratio: true,
            baseline: Some("qos0_publisher_cpu"),
        },
        Metric {
            id: "qos1_throughput",
            label: format!("QoS 1 one at a time, {} msgs", thousands(config.qos1)),
            unit: "msg/s",
            better: Better::Higher,
            decimals: 0,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "round_trip_median",
            label: format!("round trip median, {} samples", thousands(config.rtt)),
            unit: "µs",
            better: Better::Lower,
            decimals: 1,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "round_trip_p99",
            label: "round trip p99".into(),
            unit: "µs",
            better: Better::Lower,
            decimals: 1,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "idle_cpu",
            label: format!(
                "idle CPU, {} s blocked, keepalive {} s",
                config.idle.as_secs(),
                config.keepalive_s
            ),
            unit: "%",
            better: Better::Lower,
            decimals: 3,
            ratio: true,
            baseline: None,
        },
        Metric {
            id: "idle_pings",
            label: "  PINGREQs sent while idle".into(),
            unit: "count",
            better: Better::Neither,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "heap_allocations",
            label: "heap allocations after connect (3 000 msgs)".into(),
            unit: "count",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "heap_bytes",
            label: "  bytes allocated after connect".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "client_size",
            label: "size_of client (rumqttc: Client + Connection)".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "client_buffers",
            label: "  buffers the client borrows (tx + rx)".into(),
            unit: "bytes",
            better: Better::Neither,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "heap_held_after_connect",
            label: "  heap held once connected".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "memory_total",
            label: "  memory of a connected client, total".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "code_size_text",
            label: "machine code, no_std staticlib, opt-level s".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
        Metric {
            id: "code_size_rodata",
            label: "  read-only data, same staticlib".into(),
            unit: "bytes",
            better: Better::Lower,
            decimals: 0,
            ratio: false,
            baseline: None,
        },
    ]
}

/// `value` with thin thousands separators and `decimals` decimals.
fn fmt_num(value: f64, decimals: usize) -> String {
    let text = format!("{value:.decimals$}");
    let (int, frac) = match text.split_once('.') {
        Some((i, f)) => (i.to_string(), Some(f.to_string())),
        None => (text.clone(), None),
    };
    let (sign, digits) = match int.strip_prefix('-') {
        Some(d) => ("-", d.to_string()),
        None => ("", int),
    };
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push(' ');
        }
        grouped.push(c);
    }
    match frac {
        Some(f) => format!("{sign}{grouped}.{f}"),
        None => format!("{sign}{grouped}"),
    }
}

fn ratio(results: &Results, metric: &Metric, who: Who) -> Option<f64> {
    if !metric.ratio {
        return None;
    }
    let raw = results.get(metric.baseline.unwrap_or(metric.id), Who::Raw)?;
    let value = results.get(metric.id, who)?;
    (raw != 0.0).then(|| value / raw)
}

fn json_string(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_number(v: Option<f64>) -> String {
    match v {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".into(),
    }
}

fn print_json(results: &Results, metrics: &[Metric]) {
    for metric in metrics {
        for who in CLIENTS {
            let Some(value) = results.get(metric.id, who) else {
                continue;
            };
            println!(
                "{{\"test\": {}, \"client\": {}, \"value\": {}, \"unit\": {}, \"ratio_to_raw\": {}}}",
                json_string(metric.id),
                json_string(who.name()),
                json_number(Some(value)),
                json_string(metric.unit),
                json_number(ratio(results, metric, who)),
            );
        }
    }
    println!(
        "{{\"test\": \"tls\", \"client\": \"umqtt-simple-tls\", \"value\": null, \"unit\": null, \"ratio_to_raw\": null, \"note\": \"not measured: the project has no TLS transport yet\"}}"
    );
}

fn cell(results: &Results, metric: &Metric, who: Who) -> String {
    let Some(value) = results.get(metric.id, who) else {
        return "—".into();
    };
    let mut text = fmt_num(value, metric.decimals);
    if who != Who::Raw
        && let Some(r) = ratio(results, metric, who)
    {
        let _ = write!(text, " ({r:.2})");
    }
    text
}

fn print_table(results: &Results, metrics: &[Metric]) {
    let label_width = metrics
        .iter()
        .map(|m| m.label.chars().count())
        .max()
        .unwrap_or(0);
    let widths = [14, 22, 22];
    let mut header = format!("| {:<label_width$} | {:<5} ", "test", "unit");
    for (who, w) in CLIENTS.iter().zip(widths) {
        let _ = write!(header, "| {:>w$} ", who.column());
    }
    header.push('|');
    println!("{header}");
    let mut rule = format!("|{}|{}", "-".repeat(label_width + 2), "-".repeat(7));
    for w in widths {
        let _ = write!(rule, "|{}:", "-".repeat(w + 1));
    }
    rule.push('|');
    println!("{rule}");
    for metric in metrics {
        let mut line = format!("| {:<label_width$} | {:<5} ", metric.label, metric.unit);
        for (who, w) in CLIENTS.iter().zip(widths) {
            let _ = write!(line, "| {:>w$} ", cell(results, metric, *who));
        }
        line.push('|');
        println!("{line}");
    }
    println!();
    println!("Ratios in parentheses are to the raw limit (raw = 1.00).");
    println!("umqtt-simple over TLS: not measured: the project has no TLS transport yet.");
}

/// One verdict on a target of issue 5.
fn verdicts(results: &Results, metrics: &[Metric]) -> Vec<(bool, String)> {
    let mut out = Vec::new();
    let u = |id: &str| results.get(id, Who::Umqtt);
    let r = |id: &str| results.get(id, Who::Raw);
    let q = |id: &str| results.get(id, Who::Rumqttc);
    let mut ratio_target = |id: &str, what: &str, ok: &dyn Fn(f64) -> bool, want: &str| {
        if let (Some(u), Some(r)) = (u(id), r(id)) {
            let x = u / r;
            out.push((ok(x), format!("{what}: {x:.3} of raw (target {want})")));
        }
    };
    ratio_target("qos1_throughput", "QoS 1 msg/s", &|x| x >= 0.95, "≥ 0.95");
    ratio_target(
        "round_trip_median",
        "round trip median",
        &|x| x <= 1.05,
        "≤ 1.05",
    );
    ratio_target("round_trip_p99", "round trip p99", &|x| x <= 1.05, "≤ 1.05");
    ratio_target(
        "qos0_throughput",
        "QoS 0 end to end",
        &|x| x >= 0.90,
        "≥ 0.90",
    );
    // The batched mode is the one for streams: the same target, against the
    // raw limit's batched writes.
    for (id, buffer) in [
        ("qos0_throughput_batched_1k", "1 KiB"),
        ("qos0_throughput_batched_16k", "16 KiB"),
    ] {
        if let (Some(u), Some(r)) = (u(id), r("qos0_throughput")) {
            let x = u / r;
            out.push((
                x >= 0.90,
                format!(
                    "QoS 0 end to end, batch_qos0 with {buffer} tx: {x:.3} of raw (target ≥ 0.90)"
                ),
            ));
        }
    }
    for metric in metrics {
        if matches!(metric.better, Better::Neither) {
            continue;
        }
        if let (Some(u), Some(q)) = (u(metric.id), q(metric.id)) {
            let ahead = match metric.better {
                Better::Higher => u > q,
                Better::Lower => u < q || (u == 0.0 && q == 0.0),
                Better::Neither => true,
            };
            out.push((
                ahead,
                format!(
                    "ahead of rumqttc: {}: {} vs {} {}",
                    metric.label.trim(),
                    fmt_num(u, metric.decimals),
                    fmt_num(q, metric.decimals),
                    metric.unit
                ),
            ));
        }
    }
    if let Some(a) = u("heap_allocations") {
        out.push((a == 0.0, format!("zero allocations after connect: {a}")));
    }
    if let Some(c) = u("idle_cpu") {
        out.push((c < 1.0, format!("idle CPU under 1 %: {c:.3} %")));
    }
    if let (Some(u), Some(q)) = (u("qos0_publisher_cpu"), q("qos0_publisher_cpu")) {
        out.push((
            u <= q / 2.0,
            format!("publisher CPU at most half of rumqttc's: {u:.3} s vs {q:.3} s"),
        ));
    }
    // "Within a small factor" of the raw limit's batched writes, read as at
    // most ten times its CPU, with a transmit buffer of 16 KiB (the raw limit
    // writes 64 KiB at a time; with 1 KiB a batch is eleven messages).
    if let (Some(u), Some(r)) = (u("qos0_publisher_cpu_batched_16k"), r("qos0_publisher_cpu")) {
        out.push((
            u <= r * 10.0,
            format!(
                "batched publisher CPU (16 KiB tx) within 10 times raw's batched writes: \
                 {u:.3} s vs {r:.3} s ({:.1} times)",
                u / r
            ),
        ));
    }
    out
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split_once(':'))
                .map(|(_, v)| v.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    // Other work on the machine skews every figure: say how busy it was.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().map(str::to_string))
        .map_or(String::new(), |l| format!(", load average {l}"));
    format!("{cpu}, {cores} cores, Linux {kernel}{load}")
}

fn mosquitto_version() -> Option<String> {
    let out = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-h")
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.lines()
        .next()
        .and_then(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with(|c: char| c.is_ascii_digit()))
        })
        .map(str::to_string)
}

fn main() {
    let config = match parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let machine = machine();
    let mut results = Results::default();

    // The broker: mosquitto where installed, else rumqttd in this process.
    let mosquitto = match config.broker {
        Some(_) => None,
        None => umqtt_tests::Mosquitto::start("umqtt-bench", ""),
    };
    let (addr, broker) = match (&mosquitto, config.broker) {
        (_, Some(addr)) => (addr, format!("the broker at {addr}")),
        (Some(m), None) => (
            m.addr,
            format!(
                "mosquitto {}",
                mosquitto_version().unwrap_or_else(|| "(version unknown)".into())
            ),
        ),
        (None, None) => {
            let b = umqtt_tests::InProcessBroker::start();
            results.note(
                "mosquitto is not installed: using the in-process rumqttd broker instead (figures are not comparable with docs/BENCHMARKS.md)".into(),
            );
            (b.addr, "rumqttd (in process)".into())
        }
    };
    progress(format!(
        "{} run, broker {broker} on {addr}, {}",
        if config.quick { "quick" } else { "full" },
        machine
    ));

    let run_test = |name: &str| config.tests.contains(&name);

    // Footprint: code size (two small cargo builds), then memory.
    if run_test("footprint") {
        measure_footprint(&config, addr, &mut results);
    }
    if run_test("heap") {
        measure_heap(&config, addr, &mut results);
    }
    if ["qos0", "qos1", "rtt"].iter().any(|t| run_test(t)) {
        measure_speed(&config, addr, &mut results);
    }
    if run_test("idle") {
        measure_idle(&config, addr, &mut results);
    }

    let metrics = metrics(&config);
    if config.json {
        print_json(&results, &metrics);
    } else {
        println!();
        println!(
            "umqtt-bench ({} run, {} repetition{}): {broker} on loopback; {}; 64-byte payloads, MQTT 3.1.1; rumqttc request channel {}",
            if config.quick { "quick" } else { "full" },
            config.reps,
            if config.reps == 1 { "" } else { "s" },
            machine,
            rumq::REQUEST_CAPACITY.load(Ordering::Relaxed)
        );
        println!();
        print_table(&results, &metrics);
        println!();
        println!("Targets (issue 5):");
        for (ok, text) in verdicts(&results, &metrics) {
            println!("  [{}] {text}", if ok { "met" } else { "MISSED" });
        }
        if !results.notes.is_empty() {
            println!();
            println!("Notes:");
            for n in &results.notes {
                println!("  - {n}");
            }
        }
    }
    progress(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    drop(mosquitto);
    if results.failures > 0 {
        eprintln!("umqtt-bench: {} measurement(s) failed", results.failures);
        std::process::exit(1);
    }
}

fn measure_footprint(config: &Config, addr: SocketAddr, results: &mut Results) {
    progress("footprint: building the no_std staticlibs");
    match footprint::measure() {
        Ok(f) => {
            results.set("code_size_text", Who::Umqtt, f.text() as f64);
            results.set("code_size_rodata", Who::Umqtt, f.rodata() as f64);
            progress(format!(
                "footprint: nostd-check {:?}, baseline {:?}",
                f.with_client, f.baseline
            ));
        }
        Err(e) => results.fail(format!("code size not measured: {e}")),
    }
    for &who in &config.clients {
        match memory_once(who, addr) {
            Ok((size, buffers, heap)) if who != Who::Raw => {
                results.set("client_size", who, size as f64);
                results.set("client_buffers", who, buffers as f64);
                results.set("heap_held_after_connect", who, heap as f64);
                results.set("memory_total", who, (size + buffers + heap) as f64);
            }
            Ok(_) => {}
            Err(e) => results.fail(format!("memory of {}: {e}", who.name())),
        }
    }
}

/// Heap allocations after connect.
fn measure_heap(config: &Config, addr: SocketAddr, results: &mut Results) {
    for &who in &config.clients {
        match heap_once(who, addr) {
            Ok((count, bytes)) => {
                progress(format!(
                    "heap: {}: {count} allocations, {bytes} bytes",
                    who.name()
                ));
                results.set("heap_allocations", who, count as f64);
                results.set("heap_bytes", who, bytes as f64);
            }
            Err(e) => results.fail(format!("heap test of {}: {e}", who.name())),
        }
    }
}

/// QoS 1 and round-trip tests run in this many blocks per repetition, the
/// clients taking turns block by block, so that a change in the machine's load
/// during a repetition hits every client alike.
const BLOCKS: usize = 10;

/// Throughput and round trip. QoS 0: one run per client per repetition, the
/// clients rotated each repetition so that none always runs first. QoS 1 and
/// round trip: [`BLOCKS`] blocks per repetition, interleaved.
fn measure_speed(config: &Config, addr: SocketAddr, results: &mut Results) {
    let run_test = |name: &str| config.tests.contains(&name);
    let clients = &config.clients;
    // Samples by (metric id, client).
    let mut qos0: BTreeMap<(&'static str, Who), Vec<f64>> = BTreeMap::new();
    let mut qos1: BTreeMap<Who, Vec<f64>> = BTreeMap::new();
    let mut rtt: BTreeMap<Who, Vec<Duration>> = BTreeMap::new();
    let mut run = 0;
    for rep in 0..config.reps {
        let tag = |who: Who| format!("[{}/{}] {}", rep + 1, config.reps, who.name());
        if run_test("qos0") {
            // Every client's usual pass first, then the other modes: a
            // burst of batched writes left mosquitto slower for the pass
            // after it (measured: the headline figures moved by 10 %).
            let usual = [(Qos0Mode::Usual, "qos0_throughput", "qos0_publisher_cpu")];
            let rotation = (0..clients.len()).map(|k| clients[(k + rep) % clients.len()]);
            let passes = rotation
                .clone()
                .map(|who| (who, &usual[..]))
                .chain(rotation.map(|who| (who, qos0_extra_passes(who))));
            for (who, modes) in passes {
                for &(mode, rate_id, cpu_id) in modes {
                    run += 1;
                    let what = match mode {
                        Qos0Mode::Usual => "QoS 0".to_string(),
                        Qos0Mode::OneWritePerMessage => "QoS 0 one write per message".into(),
                        Qos0Mode::Batched { tx } => format!("QoS 0 batched, {tx}-byte tx"),
                    };
                    match qos0_once(who, addr, config.qos0, run, mode) {
                        Ok((rate, cpu)) => {
                            progress(format!(
                                "{}: {what}: {} msg/s, publisher CPU {}",
                                tag(who),
                                fmt_num(rate, 0),
                                cpu.map_or("?".into(), |c| format!("{c:.3} s"))
                            ));
                            qos0.entry((rate_id, who)).or_default().push(rate);
                            if let Some(c) = cpu {
                                qos0.entry((cpu_id, who)).or_default().push(c);
                            }
                        }
                        Err(e) => results.fail(format!("{}: {what}: {e}", tag(who))),
                    }
                }
            }
        }
        let mut qos1_time: BTreeMap<Who, Duration> = BTreeMap::new();
        let mut rtt_rep: BTreeMap<Who, Vec<Duration>> = BTreeMap::new();
        let mut failed: Vec<Who> = Vec::new();
        for block in 0..BLOCKS {
            for k in 0..clients.len() {
                let who = clients[(k + block + rep) % clients.len()];
                if failed.contains(&who) {
                    continue;
                }
                run += 1;
                if run_test("qos1") {
                    match qos1_once(who, addr, config.qos1.div_ceil(BLOCKS), run) {
                        Ok(t) => *qos1_time.entry(who).or_default() += t,
                        Err(e) => {
                            results.fail(format!("{}: QoS 1: {e}", tag(who)));
                            failed.push(who);
                            continue;
                        }
                    }
                }
                if run_test("rtt") {
                    let samples = rtt_rep.entry(who).or_default();
                    if let Err(e) = rtt_once(who, addr, config.rtt.div_ceil(BLOCKS), run, samples) {
                        results.fail(format!("{}: round trip: {e}", tag(who)));
                        failed.push(who);
                    }
                }
            }
        }
        for &who in clients {
            if failed.contains(&who) {
                qos1_time.remove(&who);
                rtt_rep.remove(&who);
            }
            let mut line = Vec::new();
            if let Some(t) = qos1_time.get(&who) {
                let rate = (config.qos1.div_ceil(BLOCKS) * BLOCKS) as f64 / t.as_secs_f64();
                line.push(format!("QoS 1 {} msg/s", fmt_num(rate, 0)));
                qos1.entry(who).or_default().push(rate);
            }
            if let Some(mut mine) = rtt_rep.remove(&who) {
                mine.sort();
                line.push(format!(
                    "round trip median {:.1} µs, p99 {:.1} µs",
                    quantile(&mine, 0.5).unwrap_or_default().as_secs_f64() * 1e6,
                    quantile(&mine, 0.99).unwrap_or_default().as_secs_f64() * 1e6
                ));
                rtt.entry(who).or_default().extend(mine);
            }
            if !line.is_empty() {
                progress(format!("{}: {}", tag(who), line.join(", ")));
            }
        }
    }
    for ((id, who), values) in qos0.iter_mut() {
        if let Some(m) = median(values) {
            results.set(id, *who, m);
        }
    }
    for (who, values) in qos1.iter_mut() {
        if let Some(m) = median(values) {
            results.set("qos1_throughput", *who, m);
        }
    }
    for (who, samples) in rtt.iter_mut() {
        samples.sort();
        if let (Some(m), Some(p)) = (quantile(samples, 0.5), quantile(samples, 0.99)) {
            results.set("round_trip_median", *who, m.as_secs_f64() * 1e6);
            results.set("round_trip_p99", *who, p.as_secs_f64() * 1e6);
        }
    }
}

/// Idle, all clients at once.
fn measure_idle(config: &Config, addr: SocketAddr, results: &mut Results) {
    progress(format!(
        "idle: every client blocked for {} s with keepalive {} s",
        config.idle.as_secs(),
        config.keepalive_s
    ));
    for (who, result) in idle_all(addr, config) {
        match result {
            Ok(idle) => {
                if let Some(cpu) = idle.cpu {
                    let percent = 100.0 * cpu.as_secs_f64() / idle.wall.as_secs_f64();
                    results.set("idle_cpu", who, percent);
                }
                if let Some(p) = idle.pings {
                    results.set("idle_pings", who, f64::from(p));
                }
            }
            Err(e) => results.fail(format!("idle test of {}: {e}", who.name())),
        }
    }
}
