//! umqtt over embassy-net on a TAP device, end to end: each test in a network
//! namespace of its own with mosquitto inside (see `umqtt_tests::netns`),
//! the embassy executor (stack and client tasks) on a thread of the test
//! process, which is inside the namespace too.
//!
//! Only addresses inside the namespace are used (192.168.69.0/24 on the TAP,
//! and loopback); nothing can leave it. Every wait is bounded.

use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use embassy_net::Stack;
use embassy_net::tcp::client::TcpClient;
use umqtt_embassy_example::raw::{self, CONNACK_ACCEPTED};
use umqtt_embassy_example::{TapConfig, TapTcpState, start};
use umqtt_tests::netns::{self as support, STACK_IP, TAP, broker};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(10);

fn tap_config() -> TapConfig {
    TapConfig::new(TAP, STACK_IP, 24)
}

/// Runs `command` to its end, killing it if it takes longer than `limit`.
/// Returns its exit status and what it printed.
fn run_within(command: &mut Command, limit: Duration) -> (std::process::ExitStatus, String) {
    let dir = std::env::temp_dir();
    let out_path = dir.join(format!("umqtt-embassy-{}.out", std::process::id()));
    let out = std::fs::File::create(&out_path).expect("create the output file");
    let err = out.try_clone().expect("clone the output file");
    let mut child = command
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .expect("start the command");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for the command") {
            break status;
        }
        if started.elapsed() > limit {
            let _ = child.kill();
            let _ = child.wait();
            let output = std::fs::read_to_string(&out_path).unwrap_or_default();
            panic!("{command:?} did not finish within {limit:?}; output:\n{output}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let output = std::fs::read_to_string(&out_path).unwrap_or_default();
    let _ = std::fs::remove_file(&out_path);
    (status, output)
}

#[embassy_executor::task]
async fn raw_connect(stack: Stack<'static>, done: mpsc::Sender<Result<[u8; 4], String>>) {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
    let limit = embassy_time::Duration::from_secs(5);
    let result = raw::connect_and_read_connack(&tcp, broker(), limit)
        .await
        .map_err(|e| e.to_string());
    let _ = done.send(result);
}

/// The plumbing alone: TAP device, embassy-net, the std executor and time
/// driver carry a hand-encoded CONNECT to mosquitto and its CONNACK back.
#[test]
fn raw_connect_over_embassy_net() {
    let Some(ns) = support::enter("raw_connect_over_embassy_net") else {
        return;
    };
    let mosquitto = ns.mosquitto();
    let (done, finished) = mpsc::channel();
    start(tap_config(), move |spawner, stack| {
        spawner.spawn(raw_connect(stack, done))
    })
    .expect("start embassy-net on the TAP device");
    let connack = finished
        .recv_timeout(WAIT)
        .expect("the raw CONNECT task reports within the limit")
        .expect("CONNECT and CONNACK over embassy-net");
    assert_eq!(connack, CONNACK_ACCEPTED);
    let log = mosquitto.log();
    assert!(
        log.contains(&format!("New client connected from {STACK_IP}")),
        "log:\n{log}"
    );
}

#[test]
fn example_binary_runs_over_tap() {
    let Some(ns) = support::enter("example_binary_runs_over_tap") else {
        return;
    };
    let _mosquitto = ns.mosquitto();
    let (status, output) = run_within(
        Command::new(env!("CARGO_BIN_EXE_umqtt-embassy-demo")).args([
            "--tap",
            TAP,
            "--ip",
            &format!("{STACK_IP}/24"),
            "--broker",
            &broker().to_string(),
            "--raw",
        ]),
        Duration::from_secs(30),
    );
    println!("{output}");
    assert!(status.success(), "umqtt-embassy-demo failed ({status})");
    assert!(output.contains("CONNACK [20, 02, 00, 00]"), "{output}");
}
