//! What the example binaries share: argument parsing, the std client (and
//! the reconnecting one, in [`robust`]), an in-process broker for the
//! quickstart, and error reporting.
//!
//! The binaries in `src/bin/` are the examples; this library only keeps them
//! short.

use std::fmt::Display;
use std::process::ExitCode;

use umqtt_simple::{Client, Options};
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};

pub mod args;
pub mod broker;
pub mod robust;
pub mod tls;

pub use args::Args;

/// The client every example uses: the `std` TCP stack, the `std` clock, and
/// [`StdWait`], which sleeps in the kernel until the socket has data, so
/// `wait_msg` does not burn a CPU core while nothing arrives.
pub type StdClient<'a> = Client<'a, StdTcpStack, StdClock, StdWait>;

/// A client over the `tx` and `rx` buffers, not connected yet.
pub fn std_client<'a>(tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>) -> StdClient<'a> {
    // `Client::new` waits by spinning (fine on a microcontroller);
    // `with_waiter(StdWait)` makes it sleep instead.
    Client::new(StdTcpStack::new(), StdClock::new(), tx, rx, options).with_waiter(StdWait::new())
}

/// Sends the client's log to stderr: `RUST_LOG=warn` shows warnings,
/// `RUST_LOG=debug` connects, `RUST_LOG=trace` every packet. By default only
/// errors are logged, so a failure prints one line (see [`report`]); the
/// in-process broker's log stays off unless `RUST_LOG` names `rumqttd`
/// (and `tracing`, its spans).
pub fn init_logging() {
    env_logger::Builder::new()
        .filter_level(log::LevelFilter::Error)
        .filter_module("rumqttd", log::LevelFilter::Off)
        .filter_module("tracing", log::LevelFilter::Off)
        .parse_default_env()
        .init();
}

/// Bytes as Python prints them (`b'hello'`), like the original examples.
pub fn py_bytes(bytes: &[u8]) -> String {
    format!("b'{}'", bytes.escape_ascii())
}

/// Adds what was being done to an error: `connect to localhost:1883: …`.
pub trait Context<T> {
    /// The error as one line, prefixed with `what`.
    fn context(self, what: impl Display) -> Result<T, String>;
}

impl<T, E: Display> Context<T> for Result<T, E> {
    fn context(self, what: impl Display) -> Result<T, String> {
        self.map_err(|e| format!("{what}: {e}"))
    }
}

/// The exit code for `result`: 0, or 1 after printing the error on one line.
pub fn report(result: Result<(), String>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// What every example's `main` does: parses the command line, accepting only
/// the `allowed` options and printing `usage` on `--help` (see
/// [`Args::parse`]), sets up logging ([`init_logging`]), then runs `run` and
/// returns its exit code ([`report`]).
pub fn main_with_args(
    usage: &str,
    allowed: &[&str],
    run: impl FnOnce(&Args) -> Result<(), String>,
) -> ExitCode {
    let args = Args::parse(usage, allowed);
    init_logging();
    report(run(&args))
}
