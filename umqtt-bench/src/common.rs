//! What every client module shares: the error type, the message every test
//! sends, the limits of the tests, what a publisher or an idle client reports,
//! client ids and topics.

use std::fmt::Display;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

/// Errors are messages: the bench reports them and goes on.
pub type Res<T> = Result<T, String>;

/// Adds what failed to an error; formats only on failure (no allocation on
/// the success path, which the heap test counts).
pub trait Ctx<T> {
    /// The error, if any, as "`what`: error".
    fn ctx(self, what: &str) -> Res<T>;
}

impl<T, E: Display> Ctx<T> for Result<T, E> {
    fn ctx(self, what: &str) -> Res<T> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// The 64-byte payload of every message.
pub const PAYLOAD: [u8; 64] = *b"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

/// The longest an idle client waits for its wake-up message before the test
/// fails (the idle period is at most 10 s).
pub const IDLE_LIMIT: Duration = Duration::from_secs(40);

/// Operations of each kind in the heap test.
pub const HEAP_OPS: usize = 1000;

/// What a QoS 0 publisher reports: when it started publishing and the CPU
/// time it used.
pub struct Qos0Publish {
    /// When the first message was published.
    pub start: Instant,
    /// CPU time of the publishing thread, where the platform tells.
    pub publisher_cpu: Option<Duration>,
}

/// What an idle client reports.
pub struct IdleResult {
    /// Wall time from ready to the wake-up message.
    pub wall: Duration,
    /// CPU time used meanwhile, where the platform tells.
    pub cpu: Option<Duration>,
    /// PINGREQs sent (or other packets handled) meanwhile.
    pub pings: Option<u32>,
}

/// Runs `op` `warmup + n` times and returns the time the last `n` took.
pub fn time_after_warmup(
    warmup: usize,
    n: usize,
    mut op: impl FnMut() -> Res<()>,
) -> Res<Duration> {
    let mut start = Instant::now();
    for i in 0..warmup + n {
        if i == warmup {
            start = Instant::now();
        }
        op()?;
    }
    Ok(start.elapsed())
}

/// Runs `op(i)` for `i` in `0..warmup + n`; `samples` gets the time of each
/// run after the first `warmup`. What `op` returns is checked by `check`
/// after the run is timed.
pub fn time_each<T>(
    warmup: usize,
    n: usize,
    samples: &mut Vec<Duration>,
    mut op: impl FnMut(usize) -> Res<T>,
    check: impl Fn(T) -> Res<()>,
) -> Res<()> {
    for i in 0..warmup + n {
        let start = Instant::now();
        let outcome = op(i)?;
        if i >= warmup {
            samples.push(start.elapsed());
        }
        check(outcome)?;
    }
    Ok(())
}

/// A client id unique in this run.
pub fn client_id(tag: &str) -> String {
    static COUNTER: AtomicUsize = AtomicUsize::new(0);
    format!(
        "bench-{tag}-{}-{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed)
    )
}

/// Topics of the same length for every client, so every client puts the same
/// bytes on the wire.
pub fn topic(test: &str, run: usize) -> String {
    format!("umqtt-bench/{test}/{run:05}")
}

/// Bytes of a hex string (whitespace ignored), for the wire-vector tests.
#[cfg(test)]
pub fn hex(text: &str) -> Vec<u8> {
    umqtt_tests::hex(text)
}
