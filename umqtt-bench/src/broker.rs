//! The broker every client talks to: one given with `--broker`, else
//! mosquitto on a free loopback port, else rumqttd in this process.

use std::net::SocketAddr;

use umqtt_tests::{InProcessBroker, Mosquitto};

/// The broker of a run; a mosquitto it started stops when this is dropped.
pub struct Broker {
    /// Where it listens.
    pub addr: SocketAddr,
    /// What it is, for the report ("mosquitto 2.0.11").
    pub description: String,
    /// Why the figures are not comparable, when the fallback broker runs.
    pub note: Option<String>,
    /// The mosquitto process, if this run started one.
    _mosquitto: Option<Mosquitto>,
}

/// Uses the broker at `given`, or starts one.
pub fn start(given: Option<SocketAddr>) -> Broker {
    if let Some(addr) = given {
        return Broker {
            addr,
            description: format!("the broker at {addr}"),
            note: None,
            _mosquitto: None,
        };
    }
    match Mosquitto::start("umqtt-bench", "") {
        Some(m) => Broker {
            addr: m.addr,
            description: format!(
                "mosquitto {}",
                mosquitto_version().unwrap_or_else(|| "(version unknown)".into())
            ),
            note: None,
            _mosquitto: Some(m),
        },
        None => Broker {
            addr: InProcessBroker::start().addr,
            description: "rumqttd (in process)".into(),
            note: Some(
                "mosquitto is not installed: using the in-process rumqttd broker instead (figures are not comparable with docs/BENCHMARKS.md)".into(),
            ),
            _mosquitto: None,
        },
    }
}

/// The version mosquitto prints first in its help text.
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
