//! `-d`: a minimal logger that writes every record of the umqtt crates to
//! stderr, one line each: each packet sent or received as mosquitto's
//! clients print it (`Client umqtt-sub-1a2b sending SUBSCRIBE (Mid: 1,
//! Topic: 't', QoS: 1)`, `Client … received PUBLISH (d0, q1, r0, m1, 't', ...
//! (5 bytes))`), anything else with the time since start:
//! `[   0.012s INFO  umqtt_simple::blocking] connected to 127.0.0.1:1883 …`.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};
use umqtt_simple::packet::PACKET_LOG;

struct StderrLogger;

static START: OnceLock<Instant> = OnceLock::new();
static CLIENT_ID: OnceLock<String> = OnceLock::new();
static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        // A failed write to stderr has nowhere to be reported.
        if record.target() == PACKET_LOG {
            let id = CLIENT_ID.get().map_or("", String::as_str);
            let _ = writeln!(std::io::stderr().lock(), "Client {id} {}", record.args());
            return;
        }
        let elapsed = START.get_or_init(Instant::now).elapsed().as_secs_f64();
        let _ = writeln!(
            std::io::stderr().lock(),
            "[{elapsed:8.3}s {:<5} {}] {}",
            record.level(),
            record.target(),
            record.args()
        );
    }

    fn flush(&self) {}
}

/// Sends the log to stderr: everything (every packet) with `debug`, nothing
/// otherwise (failures are then reported once, by `main`).
pub fn init(debug: bool) {
    if !debug {
        return;
    }
    START.get_or_init(Instant::now);
    if log::set_logger(&LOGGER).is_ok() {
        log::set_max_level(LevelFilter::Trace);
    }
}

/// Names the client in the per-packet lines (`Client ID sending …`).
pub fn name_client(id: &str) {
    let _ = CLIENT_ID.set(id.to_owned());
}
