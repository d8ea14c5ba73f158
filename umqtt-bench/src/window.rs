//! The QoS 1 window (issue 16): every client with the same window (umqtt-simple
//! `set_window`, rumqttc `MqttOptions::set_inflight`, the raw limit counting
//! its PUBLISH packets in flight), on loopback and on a slow link.
//!
//! - Loopback ("window"): [`BLOCKS`] blocks per repetition, the clients taking
//!   turns block by block as in the QoS 1 pass; msg/s over the time from the
//!   first timed publish to the last PUBACK, summed over the blocks.
//! - Slow link ("slow"): the clients reach the broker through the workspace
//!   tests' fault proxy as a slow link, every packet held 25 ms each way (a
//!   50 ms round trip, as netem would make it; this kernel has none), with
//!   window 1 and with the window. Latency-bound: the limit is the window
//!   over the round trip, which every client should reach; one repetition.
//!
//! Both run against a mosquitto of their own with `set_tcp_nodelay true`
//! (unless the run was given a broker, or has no mosquitto to start). With
//! mosquitto's default, Nagle's algorithm, it writes the first PUBACK of a
//! burst and holds the rest until that one is acknowledged: on loopback that
//! capped every client, the raw limit included, at about 34 000 msg/s with
//! a window of 32 (below one at a time, 50 000 to 120 000 on the same
//! machine); on the slow link the proxy's kernel delays that
//! acknowledgement by up to 40 ms (it has nothing to send back on the
//! socket until the next burst), and the link gave 480 msg/s where its limit
//! is 640. Both are the broker's setting, not the clients'.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;

#[path = "../../tests/tests/support/fault_proxy.rs"]
mod fault_proxy;

use crate::args::Config;
use crate::clients::{self, Who};
use crate::passes::BLOCKS;
use crate::report::fmt_num;
use crate::results::{Results, progress};
use crate::stats::median;
use umqtt_tests::Mosquitto;

/// One way of the slow link.
pub const LEG: Duration = Duration::from_millis(25);

/// The window tests the run asks for ("window", "slow"), against a
/// mosquitto without Nagle's algorithm (see the module's doc), or against
/// `addr` when the run was given a broker or cannot start one.
pub fn measure(config: &Config, addr: SocketAddr, results: &mut Results) {
    let own = match config.broker {
        Some(_) => None,
        None => Mosquitto::start("umqtt-bench-window", "set_tcp_nodelay true"),
    };
    let broker = own.as_ref().map_or(addr, |m| m.addr);
    match own {
        Some(_) => progress(format!("window: mosquitto with TCP_NODELAY on {broker}")),
        None => results.note(format!(
            "window: against the run's broker at {addr}, whose Nagle algorithm may hold PUBACKs"
        )),
    }
    if config.runs("window") {
        measure_loopback(config, broker, results);
    }
    if config.runs("slow") {
        measure_slow_link(config, broker, results);
    }
}

/// The windowed QoS 1 test on loopback.
fn measure_loopback(config: &Config, addr: SocketAddr, results: &mut Results) {
    let per_block = config.qos1_window.div_ceil(BLOCKS);
    let clients = &config.clients;
    let mut rates: BTreeMap<Who, Vec<f64>> = BTreeMap::new();
    let mut failed = Vec::new();
    let mut run = 0;
    for rep in 0..config.reps {
        let mut time: BTreeMap<Who, Duration> = BTreeMap::new();
        for block in 0..BLOCKS {
            for k in 0..clients.len() {
                let who = clients[(k + block + rep) % clients.len()];
                if failed.contains(&who) {
                    continue;
                }
                run += 1;
                match clients::qos1_window_once(who, addr, config.window, per_block, run) {
                    Ok(t) => *time.entry(who).or_default() += t,
                    Err(e) => {
                        let tag = format!("[{}/{}] {}", rep + 1, config.reps, who.name());
                        results.fail(format!("{tag}: QoS 1 window {}: {e}", config.window));
                        failed.push(who);
                    }
                }
            }
        }
        for (who, t) in time.into_iter().filter(|(w, _)| !failed.contains(w)) {
            let rate = (per_block * BLOCKS) as f64 / t.as_secs_f64();
            progress(format!(
                "[{}/{}] {}: QoS 1 window {} {} msg/s",
                rep + 1,
                config.reps,
                who.name(),
                config.window,
                fmt_num(rate, 0)
            ));
            rates.entry(who).or_default().push(rate);
        }
    }
    for (who, mut r) in rates {
        if let Some(m) = median(&mut r) {
            results.set("qos1_window_throughput", who, m);
        }
    }
}

/// The windowed QoS 1 test through the slow link in front of the broker at
/// `broker`, window 1 then the window, each client in turn.
fn measure_slow_link(config: &Config, broker: SocketAddr, results: &mut Results) {
    let proxy = fault_proxy::FaultProxy::slow_link(broker, LEG);
    progress(format!(
        "slow link: proxy on {} holding every packet {} ms each way, in front of {broker}",
        proxy.addr,
        LEG.as_millis()
    ));
    let mut run = 0;
    for (window, id) in [
        (1, "slow_window1_throughput"),
        (config.window, "slow_window_throughput"),
    ] {
        let n = config.slow_messages(window);
        for &who in &config.clients {
            run += 1;
            match clients::qos1_window_once(who, proxy.addr, window, n, run) {
                Ok(t) => {
                    let rate = n as f64 / t.as_secs_f64();
                    progress(format!(
                        "slow link: {}: QoS 1 window {window}, {n} msgs: {} msg/s",
                        who.name(),
                        fmt_num(rate, 1)
                    ));
                    results.set(id, who, rate);
                }
                Err(e) => results.fail(format!(
                    "slow link: {}: QoS 1 window {window}: {e}",
                    who.name()
                )),
            }
        }
    }
}
