//! The examples that need no broker of the user's (they start one in their
//! own process) run to the end, as the README promises.

use std::process::{Command, Stdio};
use std::thread::sleep;
use std::time::{Duration, Instant};

use umqtt_examples::broker::start_local_broker;

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
    // rumqttd forwards the QoS 0 message at the subscription's QoS 1; the
    // demo must not leave that looking like MQTT's rule.
    if out.contains("\"hello at QoS 0\" (delivered at QoS 1") {
        assert!(
            out.contains("deliver at the lower of the publish and subscription QoS (here 0)"),
            "{out}"
        );
    }
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

/// Starts `subscriber` (a port of the seed's subscriber examples, with
/// `--count 1`) on a broker started here, then runs the `pub` example every
/// 100 ms until the subscriber has printed its message and exited.
fn subscriber_receives_from_the_pub_example(subscriber: &str, extra: &[&str]) -> String {
    let addr = start_local_broker(None).expect("local broker");
    let port = addr.port().to_string();
    let common = ["--host", "127.0.0.1", "--port", &port];
    let mut sub = Command::new(subscriber)
        .args(common)
        .args(["--count", "1"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the subscriber");
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(status) = sub.try_wait().expect("subscriber status") {
            let output = sub.wait_with_output().expect("subscriber output");
            let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
            assert!(
                status.success(),
                "{subscriber} failed ({status}):\n{stdout}\n{}",
                String::from_utf8_lossy(&output.stderr)
            );
            return stdout;
        }
        if Instant::now() > deadline {
            let _ = sub.kill();
            panic!("{subscriber} received nothing within 20 s");
        }
        run(
            env!("CARGO_BIN_EXE_pub"),
            &[&common[..], &["--qos", "1"]].concat(),
        );
        sleep(Duration::from_millis(100));
    }
}

#[test]
fn sub_example_prints_what_the_pub_example_publishes() {
    let out = subscriber_receives_from_the_pub_example(env!("CARGO_BIN_EXE_sub"), &[]);
    assert!(out.contains("(b'foo_topic', b'hello')"), "{out}");
}

#[test]
fn sub_example_polling_with_check_msg_prints_it_too() {
    let out = subscriber_receives_from_the_pub_example(env!("CARGO_BIN_EXE_sub"), &["--check"]);
    assert!(out.contains("(b'foo_topic', b'hello')"), "{out}");
}

#[test]
fn robust_sub_example_prints_what_the_pub_example_publishes() {
    let out = subscriber_receives_from_the_pub_example(env!("CARGO_BIN_EXE_robust_sub"), &[]);
    assert!(out.contains("(b'foo_topic', b'hello')"), "{out}");
}
