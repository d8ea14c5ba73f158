//! Measures `umqtt pub -l -q 1` (default window 20, or `--max-inflight N`
//! among the extra arguments) through a slow link: the
//! workspace tests' fault proxy holding every packet 25 ms each way (a 50 ms
//! round trip) in front of mosquitto, once with mosquitto's default
//! (Nagle's algorithm on) and once with `set_tcp_nodelay true`.
//!
//! Each run feeds LINES lines to a fresh `umqtt pub` and reads from the
//! proxy's record the time from the first PUBLISH to the last PUBACK of its
//! connection; it prints msg/s per run and the spread. Not a test: a
//! measurement for docs/BENCHMARKS.md.
//!
//! ```sh
//! cargo build --release -p umqtt-cli
//! cargo run --release -p umqtt-tests --example pub_lines_slow_link -- target/release/umqtt [RUNS] [LINES] [extra pub args…]
//! ```

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use umqtt_tests::Mosquitto;

#[path = "../tests/support/fault_proxy.rs"]
mod fault_proxy;

use fault_proxy::{Direction, FaultProxy, PUBACK, PUBLISH};

fn main() {
    let mut args = std::env::args().skip(1);
    let umqtt = args.next().unwrap_or_else(|| "target/release/umqtt".into());
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(7);
    let lines: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(2_000);
    let extra: Vec<String> = args.collect();
    let window: f64 = extra
        .iter()
        .position(|a| a == "--max-inflight")
        .and_then(|i| extra.get(i + 1))
        .and_then(|n| n.parse().ok())
        .unwrap_or(20.0);
    let input: String = (0..lines).map(|i| format!("line {i:05}\n")).collect();
    for (name, config) in [
        ("mosquitto default (Nagle on)", "max_queued_messages 0"),
        (
            "mosquitto set_tcp_nodelay true",
            "max_queued_messages 0\nset_tcp_nodelay true",
        ),
    ] {
        let Some(broker) = Mosquitto::start("pub-lines-slow", config) else {
            eprintln!("mosquitto not found");
            return;
        };
        let proxy = FaultProxy::slow_link(broker.addr, Duration::from_millis(25));
        let mut rates = Vec::new();
        for run in 0..runs {
            let mut child = Command::new(&umqtt)
                .args(["pub", "-h", "127.0.0.1", "-p"])
                .arg(proxy.addr.port().to_string())
                .args(["-t", "bench/lines", "-q", "1", "-l"])
                .args(&extra)
                .stdin(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .expect("run umqtt");
            child
                .stdin
                .take()
                .expect("stdin")
                .write_all(input.as_bytes())
                .expect("feed stdin");
            let out = child.wait_with_output().expect("umqtt ends");
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let records = proxy.records();
            let mine = records.iter().filter(|r| r.conn == run);
            let first = mine
                .clone()
                .find(|r| r.dir == Direction::ToBroker && r.is(PUBLISH))
                .map(|r| r.at);
            let last = mine
                .filter(|r| r.dir == Direction::ToClient && r.is(PUBACK))
                .map(|r| r.at)
                .next_back();
            let (Some(first), Some(last)) = (first, last) else {
                panic!("run {run}: no PUBLISH or PUBACK on the wire");
            };
            let rate = lines as f64 / (last - first).as_secs_f64();
            println!("{name}: run {run}: {lines} lines, {rate:.1} msg/s");
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        println!(
            "{name}: {runs} runs of {lines} lines: min {:.1}, median {:.1}, max {:.1} msg/s \
             (the link allows {:.0} with window {window})",
            rates[0],
            rates[rates.len() / 2],
            rates[rates.len() - 1],
            window / 0.050
        );
    }
}
