//! `umqtt`: mosquitto_pub and mosquitto_sub habits on the umqtt client.
//!
//! ```text
//! umqtt pub -h broker -t devices/42/cmd -m reboot -q 1
//! umqtt sub -h broker -t 'devices/+/status' -v -C 10 -W 60
//! ```
//!
//! `umqtt pub --help` and `umqtt sub --help` list the options. Exit status:
//! 0 on success, 1 with a one-line reason on stderr when the broker or the
//! network failed (a refused TLS handshake included, with its reason), 2 for a
//! bad command line.

#![forbid(unsafe_code)]

mod args;
mod format;
mod interrupt;
mod logger;
mod publish;
mod session;
mod subscribe;
mod topic_filter;
mod transport;

use std::process::ExitCode;

use args::{Command, Parsed};

/// Exit status for a command line that cannot be run.
const USAGE_ERROR: u8 = 2;

fn main() -> ExitCode {
    let mut raw = Vec::new();
    for arg in std::env::args_os().skip(1) {
        match arg.into_string() {
            Ok(arg) => raw.push(arg),
            Err(arg) => {
                eprintln!("error: argument {arg:?} is not valid UTF-8");
                return ExitCode::from(USAGE_ERROR);
            }
        }
    }
    let command = match args::parse(raw) {
        Ok(Parsed::Run(command)) => command,
        Ok(Parsed::Help(text)) => {
            print!("{text}");
            return ExitCode::SUCCESS;
        }
        Ok(Parsed::Version) => {
            println!("umqtt {}", env!("CARGO_PKG_VERSION"));
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(USAGE_ERROR);
        }
    };
    logger::init(command.connection().debug);
    interrupt::install();
    let result = match &command {
        Command::Pub(args) => publish::run(args),
        Command::Sub(args) => subscribe::run(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
