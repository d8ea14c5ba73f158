//! The examples that need no broker of the user's (they start one in their
//! own process) run to the end, as the README promises.

use std::process::Command;

/// Runs an example binary with `args`; returns its standard output, or
/// panics with everything it printed if it failed.
fn run(binary: &str, args: &[&str]) -> String {
    let output = Command::new(binary)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot start {binary}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{binary} {args:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn quickstart_sees_both_messages_come_back_on_its_own_broker() {
    let out = run(env!("CARGO_BIN_EXE_quickstart"), &[]);
    assert!(out.contains("Started an MQTT broker"), "{out}");
    assert!(
        out.contains("Both messages came back. Disconnected."),
        "{out}"
    );
}

#[test]
fn reply_answers_every_request_from_its_loop_not_its_callback() {
    let out = run(env!("CARGO_BIN_EXE_reply"), &["--count", "20"]);
    for n in 1..=20 {
        assert!(
            out.contains(&format!("requester <- b'reply to request {n}'\n")),
            "reply {n} missing:\n{out}"
        );
    }
    assert!(
        out.contains("All 20 requests answered (20 replies sent)"),
        "{out}"
    );
}

#[test]
fn examples_refuse_unknown_options_with_a_clear_error() {
    let output = Command::new(env!("CARGO_BIN_EXE_reply"))
        .arg("--frobnicate")
        .output()
        .expect("start reply");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("unknown option `--frobnicate`"), "{stderr}");
}
