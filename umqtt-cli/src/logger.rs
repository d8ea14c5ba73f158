//! `-d`: a minimal logger that writes every record of the umqtt crates to
//! stderr, one line each, with the time since start:
//! `[   0.012s DEBUG umqtt_simple::client] connected to 127.0.0.1:1883 …`.

use std::io::Write;
use std::sync::OnceLock;
use std::time::Instant;

use log::{LevelFilter, Log, Metadata, Record};

struct StderrLogger;

static START: OnceLock<Instant> = OnceLock::new();
static LOGGER: StderrLogger = StderrLogger;

impl Log for StderrLogger {
    fn enabled(&self, _metadata: &Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &Record<'_>) {
        let elapsed = START.get_or_init(Instant::now).elapsed().as_secs_f64();
        // A failed write to stderr has nowhere to be reported.
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
