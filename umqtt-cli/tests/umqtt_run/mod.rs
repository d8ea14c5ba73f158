//! Running the `umqtt` binary in the TLS tests (`cli_tls.rs`,
//! `cli_rustls.rs`): with only the trust-store variables a test sets, and
//! never longer than [`WAIT`].

use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How long one `umqtt` run may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// `umqtt` with `args` and the environment `env`, without the trust store
/// variables of this machine (the child sees only the ones a test sets).
pub fn umqtt(args: &[String], env: &[(&str, &str)]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_umqtt"));
    c.args(args)
        .stdin(Stdio::null())
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .envs(env.iter().copied());
    c
}

/// Runs `umqtt` to the end, within [`WAIT`]: its output and how long it
/// took.
pub fn run(args: &[String], env: &[(&str, &str)]) -> (Output, Duration) {
    let start = Instant::now();
    let mut child = umqtt(args, env)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("umqtt");
    while child.try_wait().expect("try_wait").is_none() {
        if start.elapsed() > WAIT {
            let _ = child.kill();
            panic!("umqtt {args:?} did not exit within {WAIT:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    (child.wait_with_output().expect("output"), start.elapsed())
}
