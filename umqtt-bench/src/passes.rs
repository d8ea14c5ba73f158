//! The passes of a run, in the order they run: footprint (code size, then
//! memory), heap, speed (QoS 0, QoS 1, round trip), idle and TLS. Each hands
//! its tests to the clients (see [`crate::clients`]; TLS: [`crate::tls`])
//! and records the figures in [`Results`].

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Barrier};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::args::Config;
use crate::clients::{self, QOS0_USUAL, Qos0Pass, Who, warmup};
use crate::common::{IdleResult, PAYLOAD, Res, client_id, topic};
use crate::report::fmt_num;
use crate::results::{Results, progress};
use crate::stats::{median, median_p99_us};
use crate::{footprint, raw, tls};

/// Code size: small cargo builds of no_std staticlibs, nostd-check with
/// the TLS stack too when the TLS test runs.
pub fn measure_code_size(config: &Config, results: &mut Results) {
    let with_tls = config.runs("tls");
    progress(format!(
        "footprint: building the no_std staticlibs{}",
        if with_tls {
            " (with and without TLS)"
        } else {
            ""
        }
    ));
    match footprint::measure(with_tls) {
        Ok(f) => {
            results.set("code_size_text", Who::Umqtt, f.text() as f64);
            results.set("code_size_rodata", Who::Umqtt, f.rodata() as f64);
            if let Some(t) = f.with_tls() {
                results.set("code_size_tls_text", Who::Umqtt, t.text as f64);
                results.set("code_size_tls_rodata", Who::Umqtt, t.rodata as f64);
            }
            progress(format!(
                "footprint: nostd-check {:?}, with TLS {:?}, baseline {:?}",
                f.with_client, f.with_tls, f.baseline
            ));
        }
        Err(e) => results.fail(format!("code size not measured: {e}")),
    }
}

/// The memory of each client.
pub fn measure_memory(config: &Config, addr: SocketAddr, results: &mut Results) {
    for &who in &config.clients {
        match clients::memory_once(who, addr) {
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
pub fn measure_heap(config: &Config, addr: SocketAddr, results: &mut Results) {
    for &who in &config.clients {
        match clients::heap_once(who, addr) {
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
pub const BLOCKS: usize = 10;

/// Throughput and round trip. QoS 0: one run per client per repetition, the
/// clients rotated each repetition so that none always runs first. QoS 1 and
/// round trip: [`BLOCKS`] blocks per repetition, interleaved.
pub fn measure_speed(config: &Config, addr: SocketAddr, results: &mut Results) {
    let mut speed = Speed {
        config,
        addr,
        run: 0,
        qos0: BTreeMap::new(),
        qos1: BTreeMap::new(),
        rtt: BTreeMap::new(),
    };
    for rep in 0..config.reps {
        if config.runs("qos0") {
            speed.qos0_rep(rep, results);
        }
        speed.blocks_rep(rep, results);
    }
    speed.record(results);
}

/// The speed tests' state across repetitions.
struct Speed<'a> {
    /// What to run.
    config: &'a Config,
    /// The broker.
    addr: SocketAddr,
    /// Runs so far (each run has topics of its own).
    run: usize,
    /// QoS 0 samples by (metric id, client).
    qos0: BTreeMap<(&'static str, Who), Vec<f64>>,
    /// QoS 1 msg/s of each repetition.
    qos1: BTreeMap<Who, Vec<f64>>,
    /// Every round-trip sample.
    rtt: BTreeMap<Who, Vec<Duration>>,
}

/// What the blocks of one repetition measured.
#[derive(Default)]
struct Rep {
    /// Time of each client's QoS 1 publishes, summed over the blocks.
    qos1_time: BTreeMap<Who, Duration>,
    /// Each client's round-trip samples.
    rtt: BTreeMap<Who, Vec<Duration>>,
    /// The clients that failed a test in this repetition.
    failed: Vec<Who>,
}

impl Speed<'_> {
    /// How progress lines name `who` in repetition `rep`.
    fn tag(&self, rep: usize, who: Who) -> String {
        format!("[{}/{}] {}", rep + 1, self.config.reps, who.name())
    }

    /// The QoS 0 passes of one repetition.
    fn qos0_rep(&mut self, rep: usize, results: &mut Results) {
        let config = self.config;
        let clients = &config.clients;
        // Every client's usual pass first, then the other modes: a burst of
        // batched writes left mosquitto slower for the pass after it
        // (measured: the headline figures moved by 10 %).
        let rotation = (0..clients.len()).map(|k| clients[(k + rep) % clients.len()]);
        let passes = rotation
            .clone()
            .map(|who| (who, &QOS0_USUAL[..]))
            .chain(rotation.map(|who| (who, clients::qos0_extra_passes(who))));
        for (who, modes) in passes {
            for &pass in modes {
                self.qos0_pass(rep, who, pass, results);
            }
        }
    }

    /// One QoS 0 pass of one client.
    fn qos0_pass(&mut self, rep: usize, who: Who, pass: Qos0Pass, results: &mut Results) {
        let (mode, rate_id, cpu_id) = pass;
        self.run += 1;
        let what = mode.describe();
        let tag = self.tag(rep, who);
        match clients::qos0_once(who, self.addr, self.config.qos0, self.run, mode) {
            Ok((rate, cpu)) => {
                progress(format!(
                    "{tag}: {what}: {} msg/s, publisher CPU {}",
                    fmt_num(rate, 0),
                    cpu.map_or("?".into(), |c| format!("{c:.3} s"))
                ));
                self.qos0.entry((rate_id, who)).or_default().push(rate);
                if let Some(c) = cpu {
                    self.qos0.entry((cpu_id, who)).or_default().push(c);
                }
            }
            Err(e) => results.fail(format!("{tag}: {what}: {e}")),
        }
    }

    /// The QoS 1 and round-trip blocks of one repetition, then its summary.
    fn blocks_rep(&mut self, rep: usize, results: &mut Results) {
        let config = self.config;
        let clients = &config.clients;
        let mut this = Rep::default();
        for block in 0..BLOCKS {
            for k in 0..clients.len() {
                let who = clients[(k + block + rep) % clients.len()];
                if !this.failed.contains(&who) {
                    self.run += 1;
                    self.block(rep, who, &mut this, results);
                }
            }
        }
        self.summarise_rep(rep, this);
    }

    /// One block of one client: QoS 1, then round trip.
    fn block(&self, rep: usize, who: Who, this: &mut Rep, results: &mut Results) {
        let (config, addr, run) = (self.config, self.addr, self.run);
        if config.runs("qos1") {
            match clients::qos1_once(who, addr, config.qos1.div_ceil(BLOCKS), run) {
                Ok(t) => *this.qos1_time.entry(who).or_default() += t,
                Err(e) => {
                    results.fail(format!("{}: QoS 1: {e}", self.tag(rep, who)));
                    this.failed.push(who);
                    return;
                }
            }
        }
        if config.runs("rtt") {
            let samples = this.rtt.entry(who).or_default();
            let n = config.rtt.div_ceil(BLOCKS);
            if let Err(e) = clients::rtt_once(who, addr, n, run, samples) {
                results.fail(format!("{}: round trip: {e}", self.tag(rep, who)));
                this.failed.push(who);
            }
        }
    }

    /// Keeps the figures of the clients that did not fail in repetition
    /// `rep` and prints them.
    fn summarise_rep(&mut self, rep: usize, mut this: Rep) {
        let config = self.config;
        for &who in &config.clients {
            if this.failed.contains(&who) {
                this.qos1_time.remove(&who);
                this.rtt.remove(&who);
            }
            let mut line = Vec::new();
            if let Some(t) = this.qos1_time.get(&who) {
                let n = config.qos1.div_ceil(BLOCKS) * BLOCKS;
                let rate = n as f64 / t.as_secs_f64();
                line.push(format!("QoS 1 {} msg/s", fmt_num(rate, 0)));
                self.qos1.entry(who).or_default().push(rate);
            }
            if let Some(mut mine) = this.rtt.remove(&who) {
                mine.sort();
                let (median, p99) = median_p99_us(&mine).unwrap_or_default();
                line.push(format!("round trip median {median:.1} µs, p99 {p99:.1} µs"));
                self.rtt.entry(who).or_default().extend(mine);
            }
            if !line.is_empty() {
                progress(format!("{}: {}", self.tag(rep, who), line.join(", ")));
            }
        }
    }

    /// The medians over the repetitions, into `results`.
    fn record(mut self, results: &mut Results) {
        for ((id, who), values) in self.qos0.iter_mut() {
            if let Some(m) = median(values) {
                results.set(id, *who, m);
            }
        }
        for (who, values) in self.qos1.iter_mut() {
            if let Some(m) = median(values) {
                results.set("qos1_throughput", *who, m);
            }
        }
        for (who, samples) in self.rtt.iter_mut() {
            samples.sort();
            if let Some((m, p)) = median_p99_us(samples) {
                results.set("round_trip_median", *who, m);
                results.set("round_trip_p99", *who, p);
            }
        }
    }
}

/// Idle, all clients at once.
pub fn measure_idle(config: &Config, addr: SocketAddr, results: &mut Results) {
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

/// Runs the idle test for every client at once (they are idle: they do not
/// disturb each other), then wakes each with a message.
fn idle_all(addr: SocketAddr, config: &Config) -> Vec<(Who, Res<IdleResult>)> {
    let barrier = Arc::new(Barrier::new(config.clients.len() + 1));
    let handles: Vec<_> = config
        .clients
        .iter()
        .map(|&who| (who, spawn_idle(who, addr, config.keepalive_s, &barrier)))
        .collect();
    barrier.wait();
    thread::sleep(config.idle);
    let mut waker = match raw::RawConn::connect(addr, &client_id("waker"), 60) {
        Ok(waker) => waker,
        Err(e) => {
            let failed = |&w: &Who| (w, Err(format!("waker: {e}")));
            return config.clients.iter().map(failed).collect();
        }
    };
    for &who in &config.clients {
        let packet = raw::publish_packet(clients::idle_topic(who).as_bytes(), &PAYLOAD, None);
        if let Err(e) = waker.send(&packet) {
            progress(format!("idle: waking {}: {e}", who.name()));
        }
    }
    let results = handles
        .into_iter()
        .map(|(who, handle)| {
            let result = handle
                .join()
                .unwrap_or_else(|_| Err("the idle thread panicked".into()));
            (who, result)
        })
        .collect();
    waker.disconnect();
    results
}

/// A thread running `who`'s idle test; it waits at `barrier` once subscribed
/// (or once failed, so that it never blocks the others).
fn spawn_idle(
    who: Who,
    addr: SocketAddr,
    keepalive_s: u16,
    barrier: &Arc<Barrier>,
) -> JoinHandle<Res<IdleResult>> {
    let barrier = Arc::clone(barrier);
    thread::spawn(move || {
        let mut ready = Some(|| {
            barrier.wait();
        });
        let result = clients::idle_once(who, addr, keepalive_s, || {
            if let Some(f) = ready.take() {
                f();
            }
        });
        // A client that failed before it was ready must not block the
        // others at the barrier.
        if let Some(f) = ready.take() {
            f();
        }
        result
    })
}

/// One client of the TLS pass: umqtt-simple over one of its engines, or
/// rumqttc over rustls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TlsRunner {
    Umqtt(tls::Engine),
    Rumqttc,
}

impl TlsRunner {
    fn name(self) -> &'static str {
        match self {
            TlsRunner::Umqtt(engine) => engine.name(),
            TlsRunner::Rumqttc => "rumqttc over rustls",
        }
    }

    /// The metric ids (connect, QoS 1, round trip median, p99) and columns
    /// its figures go to: each engine's rows in umqtt-simple's column;
    /// rumqttc's figures in its column of both engines' rows, so each row
    /// reads against it.
    fn cells(self) -> &'static [([&'static str; 4], Who)] {
        const EMBEDDED: [&str; 4] = [
            "tls_connect",
            "tls_qos1_throughput",
            "tls_round_trip_median",
            "tls_round_trip_p99",
        ];
        const RUSTLS: [&str; 4] = [
            "tls_rustls_connect",
            "tls_rustls_qos1_throughput",
            "tls_rustls_round_trip_median",
            "tls_rustls_round_trip_p99",
        ];
        match self {
            TlsRunner::Umqtt(tls::Engine::Embedded) => &[(EMBEDDED, Who::Umqtt)],
            TlsRunner::Umqtt(tls::Engine::Rustls) => &[(RUSTLS, Who::Umqtt)],
            TlsRunner::Rumqttc => &[(EMBEDDED, Who::Rumqttc), (RUSTLS, Who::Rumqttc)],
        }
    }
}

/// The TLS pass against a TLS mosquitto of its own: umqtt-simple over each
/// TLS engine and rumqttc over rustls (the raw limit has no TLS), [`BLOCKS`]
/// blocks per repetition, the clients taking turns block by block as in the
/// speed pass. A block is a QoS 1 run and a round-trip run, each on a fresh
/// connection whose connect is timed.
pub fn measure_tls(config: &Config, results: &mut Results) {
    let mut clients: Vec<TlsRunner> = Vec::new();
    if config.clients.contains(&Who::Umqtt) {
        clients.push(TlsRunner::Umqtt(tls::Engine::Embedded));
        clients.push(TlsRunner::Umqtt(tls::Engine::Rustls));
    }
    if config.clients.contains(&Who::Rumqttc) {
        clients.push(TlsRunner::Rumqttc);
    }
    if clients.is_empty() {
        return;
    }
    progress("tls: making P-256 certificates and starting a TLS mosquitto");
    let broker = match tls::start_broker() {
        Ok(b) => b,
        Err(e) => {
            results.note(format!("TLS not measured: {e}"));
            return;
        }
    };
    progress(format!("tls: TLS listener on {}", broker.addr));
    let rustls = match tls::rustls_config(&broker.ca) {
        Ok(c) => c,
        Err(e) => {
            results.fail(format!("TLS: {e}"));
            return;
        }
    };
    let (q1, rt) = (config.qos1.div_ceil(BLOCKS), config.rtt.div_ceil(BLOCKS));
    let mut connects: BTreeMap<TlsRunner, Vec<Duration>> = BTreeMap::new();
    let mut rates: BTreeMap<TlsRunner, Vec<f64>> = BTreeMap::new();
    let mut rtt: BTreeMap<TlsRunner, Vec<Duration>> = BTreeMap::new();
    let mut failed = Vec::new();
    // The last QoS 1 run's heap figures of each engine (the same every run:
    // the client allocates or not by construction).
    let mut heaps: BTreeMap<tls::Engine, tls::TlsHeap> = BTreeMap::new();
    let mut run = 0;
    for rep in 0..config.reps {
        let mut time: BTreeMap<TlsRunner, Duration> = BTreeMap::new();
        for block in 0..BLOCKS {
            for k in 0..clients.len() {
                let who = clients[(k + block + rep) % clients.len()];
                if failed.contains(&who) {
                    continue;
                }
                run += 1;
                let (qt, rtt_topic) = (topic("tq", run), topic("tr", run));
                let c = connects.entry(who).or_default();
                let samples = rtt.entry(who).or_default();
                let outcome = match who {
                    TlsRunner::Umqtt(engine) => {
                        tls::umqtt_qos1(&broker, engine, qt.as_bytes(), (warmup(q1), q1), c)
                            .map(|(t, h)| {
                                heaps.insert(engine, h);
                                t
                            })
                            .and_then(|t| {
                                let n = (warmup(rt), rt);
                                let topic = rtt_topic.as_bytes();
                                tls::umqtt_round_trip(&broker, engine, topic, n, samples, c)
                                    .map(|()| t)
                            })
                    }
                    TlsRunner::Rumqttc => {
                        tls::rumq_qos1(&broker, &rustls, qt.as_bytes(), (warmup(q1), q1), c)
                            .and_then(|t| {
                                let n = (warmup(rt), rt);
                                let topic = rtt_topic.as_bytes();
                                tls::rumq_round_trip(&broker, &rustls, topic, n, samples, c)
                                    .map(|()| t)
                            })
                    }
                };
                match outcome {
                    Ok(t) => *time.entry(who).or_default() += t,
                    Err(e) => {
                        let tag = format!("[{}/{}] {}", rep + 1, config.reps, who.name());
                        results.fail(format!("{tag}: {e}"));
                        failed.push(who);
                    }
                }
            }
        }
        for (who, t) in time.into_iter().filter(|(w, _)| !failed.contains(w)) {
            let rate = (q1 * BLOCKS) as f64 / t.as_secs_f64();
            rates.entry(who).or_default().push(rate);
            progress(format!(
                "[{}/{}] {}: QoS 1 {} msg/s",
                rep + 1,
                config.reps,
                who.name(),
                fmt_num(rate, 0)
            ));
        }
    }
    for (engine, heap) in heaps {
        if failed.contains(&TlsRunner::Umqtt(engine)) {
            continue;
        }
        let (held, allocations) = match engine {
            tls::Engine::Embedded => ("tls_heap_held", "tls_heap_allocations"),
            tls::Engine::Rustls => ("tls_rustls_heap_held", "tls_rustls_heap_allocations"),
        };
        results.set(held, Who::Umqtt, heap.held_after_connect as f64);
        results.set(allocations, Who::Umqtt, heap.allocations_per_msg);
    }
    for who in clients.into_iter().filter(|w| !failed.contains(w)) {
        let set = |results: &mut Results, metric: usize, value: f64| {
            for (ids, column) in who.cells() {
                if let Some(id) = ids.get(metric) {
                    results.set(id, *column, value);
                }
            }
        };
        if let Some(c) = connects.get_mut(&who) {
            c.sort();
            if let Some((median, _)) = median_p99_us(c) {
                set(results, 0, median / 1000.0);
            }
        }
        if let Some(m) = rates.get_mut(&who).and_then(|r| median(r)) {
            set(results, 1, m);
        }
        if let Some(samples) = rtt.get_mut(&who) {
            samples.sort();
            if let Some((m, p)) = median_p99_us(samples) {
                set(results, 2, m);
                set(results, 3, p);
            }
        }
    }
}
