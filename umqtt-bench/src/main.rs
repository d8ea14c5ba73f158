//! `umqtt-bench`: speed, memory and size of umqtt-simple next to the raw-socket
//! limit and rumqttc's synchronous client, all in one run against one broker
//! (issue 5; results and method in docs/BENCHMARKS.md).
//!
//! ```text
//! cargo run --release -p umqtt-bench              # full run
//! cargo run --release -p umqtt-bench -- --quick   # under 60 s, no TLS (CI)
//! cargo run --release -p umqtt-bench -- --tls     # the TLS measurements only
//! cargo run --release -p umqtt-bench -- --json    # one JSON object per line
//! ```
//!
//! The crate has no `unsafe`: the counting allocator is `stats_alloc`'s (see
//! [`heap_count`]), and CPU time comes from `/proc` (see [`cpu`]).
//!
//! This file is the flow only: read the command line, start the broker, run
//! the passes ([`passes`]), print ([`report`]). The figures are the rows of
//! [`metrics::METRICS`], the targets [`metrics::TARGETS`]; each client has a
//! module of its own ([`raw`], [`umqtt`], [`rumq`]) sharing [`common`]; the
//! TLS pass (umqtt-simple over `TlsStack`, rumqttc over rustls, against a
//! TLS mosquitto of its own) is [`tls`]; the QoS 1 window on loopback and on
//! a slow link is [`window`].

mod args;
mod broker;
mod clients;
mod common;
mod cpu;
mod footprint;
mod heap_count;
mod metrics;
mod passes;
mod raw;
mod report;
mod results;
mod rumq;
mod stats;
mod tls;
mod umqtt;
mod window;

use std::sync::atomic::Ordering;
use std::time::Instant;

use crate::report::RunInfo;
use crate::results::{Results, progress};

fn main() {
    let config = match args::parse_args() {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    };
    let started = Instant::now();
    let machine = report::machine();
    let mut results = Results::default();

    let broker = broker::start(config.broker);
    if let Some(note) = &broker.note {
        results.note(note.clone());
    }
    let addr = broker.addr;
    progress(format!(
        "{} run, broker {} on {addr}, {machine}",
        config.mode(),
        broker.description
    ));

    if config.runs("footprint") || config.runs("tls") {
        passes::measure_code_size(&config, &mut results);
    }
    if config.runs("footprint") {
        passes::measure_memory(&config, addr, &mut results);
    }
    if config.runs("heap") {
        passes::measure_heap(&config, addr, &mut results);
    }
    if ["qos0", "qos1", "rtt"].iter().any(|t| config.runs(t)) {
        passes::measure_speed(&config, addr, &mut results);
    }
    if config.runs("window") || config.runs("slow") {
        window::measure(&config, addr, &mut results);
    }
    if config.runs("idle") {
        passes::measure_idle(&config, addr, &mut results);
    }
    if config.runs("tls") {
        passes::measure_tls(&config, &mut results);
    }

    let info = RunInfo {
        broker: &broker.description,
        machine: &machine,
        rumqttc_capacity: rumq::REQUEST_CAPACITY.load(Ordering::Relaxed),
    };
    report::print(&config, &info, &results);
    progress(format!("done in {:.1} s", started.elapsed().as_secs_f64()));
    drop(broker);
    if results.failures > 0 {
        eprintln!("umqtt-bench: {} measurement(s) failed", results.failures);
        std::process::exit(1);
    }
}
