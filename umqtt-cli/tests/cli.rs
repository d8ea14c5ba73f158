//! The `umqtt` binary against real brokers: mosquitto as a subprocess (skipped
//! with a printed reason when it is not installed, unless
//! `UMQTT_REQUIRE_MOSQUITTO=1`) and rumqttd in-process. Only 127.0.0.1.
//!
//! A `sub` is known to be subscribed when its `-d` log says so ("subscribed
//! to …"), so no test publishes into the void.

use std::io::{Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_tests::{
    FakeBroker, InProcessBroker, Mosquitto, free_port, mosquitto_required, read_connect,
    scratch_dir,
};

/// How long anything that must happen may take.
const WAIT: Duration = Duration::from_secs(20);

fn umqtt() -> Command {
    Command::new(env!("CARGO_BIN_EXE_umqtt"))
}

/// `-h 127.0.0.1 -p PORT` for `addr`.
fn broker_args(addr: SocketAddr) -> Vec<String> {
    vec![
        "-h".into(),
        addr.ip().to_string(),
        "-p".into(),
        addr.port().to_string(),
    ]
}

/// The outcome of a finished run.
#[derive(Debug)]
struct Outcome {
    status: ExitStatus,
    stdout: String,
    stderr: String,
    took: Duration,
}

/// Runs `umqtt ARGS` to the end, feeding it `stdin`.
fn run(args: &[String], stdin: &[u8]) -> Outcome {
    let mut running = Running::spawn(args);
    running.write_stdin(stdin);
    running.finish()
}

/// A `umqtt` process whose stdout and stderr are collected as they come.
struct Running {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    started: Instant,
}

impl Running {
    fn spawn(args: &[String]) -> Running {
        let mut child = umqtt()
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("run the umqtt binary");
        let stdout = collect(child.stdout.take().expect("stdout"));
        let stderr = collect(child.stderr.take().expect("stderr"));
        Running {
            stdin: child.stdin.take(),
            child,
            stdout,
            stderr,
            started: Instant::now(),
        }
    }

    /// `umqtt sub ARGS -d`, returned once it has subscribed to every filter.
    fn subscribed(args: &[String]) -> Running {
        let mut all = args.to_vec();
        all.push("-d".into());
        let topics = args.iter().filter(|a| *a == "-t").count();
        let running = Running::spawn(&all);
        running.wait_stderr_count("subscribed to `", topics);
        running
    }

    /// Sends the process the signal `name` (`INT`, `TERM`).
    fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .args([format!("-{name}"), self.child.id().to_string()])
            .status()
            .expect("run kill");
        assert!(status.success(), "kill -{name}");
    }

    /// Writes `bytes` to stdin and keeps it open.
    fn feed_stdin(&mut self, bytes: &[u8]) {
        if let Some(stdin) = self.stdin.as_mut() {
            stdin.write_all(bytes).expect("write to umqtt's stdin");
            stdin.flush().expect("flush umqtt's stdin");
        }
    }

    /// Writes `bytes` to stdin and closes it.
    fn write_stdin(&mut self, bytes: &[u8]) {
        if let Some(mut stdin) = self.stdin.take() {
            // A process that exited early (a usage error) no longer reads.
            let _ = stdin.write_all(bytes);
        }
    }

    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.stdout.lock().unwrap()).into_owned()
    }

    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().unwrap()).into_owned()
    }

    /// Waits until stderr holds `needle` `count` times.
    fn wait_stderr_count(&self, needle: &str, count: usize) {
        let start = Instant::now();
        while self.stderr().matches(needle).count() < count {
            assert!(
                start.elapsed() < WAIT,
                "no {count}× {needle:?} on stderr within {WAIT:?}; stderr:\n{}",
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_stderr(&self, needle: &str) {
        self.wait_stderr_count(needle, 1);
    }

    /// Waits until stdout holds `needle`.
    fn wait_stdout(&self, needle: &str) {
        let start = Instant::now();
        while !self.stdout().contains(needle) {
            assert!(
                start.elapsed() < WAIT,
                "no {needle:?} on stdout within {WAIT:?}; stdout:\n{}\nstderr:\n{}",
                self.stdout(),
                self.stderr()
            );
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for the process to exit by itself (within [`WAIT`]).
    fn finish(mut self) -> Outcome {
        drop(self.stdin.take());
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            if self.started.elapsed() > WAIT {
                let _ = self.child.kill();
                panic!(
                    "umqtt did not exit within {WAIT:?}; stdout:\n{}\nstderr:\n{}",
                    self.stdout(),
                    self.stderr()
                );
            }
            thread::sleep(Duration::from_millis(10));
        };
        let took = self.started.elapsed();
        // Let the collectors reach end of file.
        thread::sleep(Duration::from_millis(50));
        Outcome {
            status,
            stdout: self.stdout(),
            stderr: self.stderr(),
            took,
        }
    }

    /// SIGKILL: the process vanishes without a DISCONNECT.
    fn kill(mut self) {
        self.child.kill().expect("kill");
        self.child.wait().expect("wait");
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> Arc<Mutex<Vec<u8>>> {
    let sink = Arc::new(Mutex::new(Vec::new()));
    let fill = Arc::clone(&sink);
    thread::spawn(move || {
        let mut buf = [0u8; 64 * 1024];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 {
                break;
            }
            fill.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    sink
}

/// `base` followed by `extra`, as owned strings.
fn with(base: &[String], extra: &[&str]) -> Vec<String> {
    base.iter()
        .cloned()
        .chain(extra.iter().map(|s| s.to_string()))
        .collect()
}

fn assert_success(outcome: &Outcome, what: &str) {
    assert!(
        outcome.status.success(),
        "{what}: {:?}\nstdout:\n{}\nstderr:\n{}",
        outcome.status,
        outcome.stdout,
        outcome.stderr
    );
}

/// A failure: exit status 1 and exactly one line on stderr, which contains
/// `reason`.
fn assert_failure(outcome: &Outcome, code: i32, reason: &str) {
    assert_eq!(outcome.status.code(), Some(code), "{outcome:?}");
    assert!(outcome.stderr.ends_with('\n'), "{outcome:?}");
    assert_eq!(outcome.stderr.lines().count(), 1, "{outcome:?}");
    assert!(outcome.stderr.contains(reason), "{outcome:?}");
}

/// `umqtt pub` to `addr` with `extra`, which must succeed.
fn publish(addr: SocketAddr, extra: &[&str]) {
    let outcome = run(&with(&cmd("pub", addr), extra), b"");
    assert_success(&outcome, &format!("pub {extra:?}"));
}

/// `pub`/`sub` arguments: the subcommand first, then the broker.
fn cmd(sub: &str, addr: SocketAddr) -> Vec<String> {
    let mut args = vec![sub.to_string()];
    args.extend(broker_args(addr));
    args
}

// ---------------------------------------------------------------- round trips

fn round_trip(addr: SocketAddr) {
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/rt", "-v", "-C", "2"]));
    let publisher = cmd("pub", addr);
    let out = run(
        &with(&publisher, &["-t", "cli/rt", "-m", "hello world"]),
        b"",
    );
    assert_success(&out, "pub -m");
    let out = run(&with(&publisher, &["-t", "cli/rt", "-n"]), b"");
    assert_success(&out, "pub -n");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 2");
    assert_eq!(outcome.stdout, "cli/rt hello world\ncli/rt (null)\n");
}

#[test]
fn round_trip_through_mosquitto() {
    let Some(broker) = Mosquitto::start("cli-round-trip", "") else {
        return;
    };
    round_trip(broker.addr);
}

#[test]
fn round_trip_through_rumqttd() {
    let broker = InProcessBroker::start();
    round_trip(broker.addr);
}

#[test]
fn qos1_round_trip_waits_for_the_puback() {
    let Some(broker) = Mosquitto::start("cli-qos1", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/q1", "-q", "1", "-C", "1"],
    ));
    let out = run(
        &with(
            &cmd("pub", addr),
            &["-t", "cli/q1", "-q", "1", "-m", "at least once", "-d"],
        ),
        b"",
    );
    assert_success(&out, "pub -q 1");
    assert!(out.stderr.contains("received PUBACK"), "{}", out.stderr);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -q 1");
    assert_eq!(outcome.stdout, "at least once\n");
    // The subscription was granted QoS 1 and the message came with it.
    assert!(
        outcome.stderr.contains("(granted QoS 1)"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn retained_message_reaches_a_later_subscriber_until_cleared() {
    let Some(broker) = Mosquitto::start("cli-retain", "") else {
        return;
    };
    let addr = broker.addr;
    publish(addr, &["-t", "cli/retained", "-r", "-m", "kept"]);
    let out = run(
        &with(&cmd("sub", addr), &["-t", "cli/retained", "-C", "1"]),
        b"",
    );
    assert_success(&out, "sub for the retained message");
    assert_eq!(out.stdout, "kept\n");

    // An empty retained message clears it: a new subscriber gets nothing.
    publish(addr, &["-t", "cli/retained", "-r", "-n"]);
    let out = run(
        &with(&cmd("sub", addr), &["-t", "cli/retained", "-W", "1"]),
        b"",
    );
    assert_success(&out, "sub -W 1 after clearing");
    assert_eq!(out.stdout, "");
}

#[test]
fn will_is_delivered_when_sub_is_killed_not_when_it_exits() {
    let Some(broker) = Mosquitto::start("cli-will", "") else {
        return;
    };
    let addr = broker.addr;
    let watcher = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/will/#", "-v", "-C", "1"],
    ));
    let will = [
        "--will-topic",
        "cli/will/status",
        "--will-payload",
        "gone",
        "--will-qos",
        "1",
    ];

    // A sub that ends by itself (-W) disconnects: no will.
    let polite = run(
        &with(
            &cmd("sub", addr),
            &[&["-t", "cli/other", "-W", "1"][..], &will].concat(),
        ),
        b"",
    );
    assert_success(&polite, "sub -W 1 with a will");

    // One that vanishes (SIGKILL) leaves its will to the broker.
    let victim = Running::subscribed(&with(
        &cmd("sub", addr),
        &[&["-t", "cli/other"][..], &will].concat(),
    ));
    victim.kill();
    let outcome = watcher.finish();
    assert_success(&outcome, "watcher");
    assert_eq!(outcome.stdout, "cli/will/status gone\n");
}

#[test]
fn ctrl_c_disconnects_cleanly_so_the_will_is_not_published() {
    let Some(broker) = Mosquitto::start("cli-sigint", "") else {
        return;
    };
    let addr = broker.addr;
    let will = [
        "--will-topic",
        "cli/sigint/status",
        "--will-payload",
        "gone",
    ];
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &[&["-t", "cli/sigint/other"][..], &will].concat(),
    ));
    let watcher = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/sigint/#", "-v", "-W", "2"],
    ));
    sub.signal("INT");
    let outcome = sub.finish();
    assert_success(&outcome, "sub after Ctrl-C");
    assert!(
        outcome.took < Duration::from_secs(5),
        "ended {:?} after the start",
        outcome.took
    );
    let watched = watcher.finish();
    assert_success(&watched, "watcher");
    assert_eq!(watched.stdout, "", "a clean DISCONNECT: no will");
}

#[test]
fn persistent_session_keeps_qos1_messages_while_away() {
    let Some(broker) = Mosquitto::start("cli-session", "") else {
        return;
    };
    let addr = broker.addr;
    let id = format!("cli-session-{}", std::process::id());
    let session = ["-t", "cli/session", "-q", "1", "-c", "-i", &id];
    // Subscribe, then leave politely: the session stays.
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-W", "1"]].concat()),
        b"",
    );
    assert_success(&out, "first sub -c");
    publish(addr, &["-t", "cli/session", "-q", "1", "-m", "queued"]);
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-C", "1"]].concat()),
        b"",
    );
    assert_success(&out, "second sub -c");
    assert_eq!(out.stdout, "queued\n");
}

#[test]
fn sub_count_acknowledges_exactly_that_many_and_the_next_session_gets_the_rest() {
    // Five QoS 1 messages queued for a persistent session arrive in one
    // burst; `-C 2` takes two. The other three must stay with the broker.
    let Some(broker) = Mosquitto::start("cli-count-ack", "") else {
        return;
    };
    let addr = broker.addr;
    let id = format!("cli-count-ack-{}", std::process::id());
    let session = ["-t", "cli/count", "-q", "1", "-c", "-i", &id];
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-W", "1"]].concat()),
        b"",
    );
    assert_success(&out, "first sub -c");
    for n in 1..=5 {
        publish(
            addr,
            &["-t", "cli/count", "-q", "1", "-m", &format!("m{n}")],
        );
    }
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-C", "2"]].concat()),
        b"",
    );
    assert_success(&out, "sub -C 2");
    assert_eq!(out.stdout, "m1\nm2\n");
    let out = run(
        &with(
            &cmd("sub", addr),
            &[&session[..], &["-C", "3", "-W", "10"]].concat(),
        ),
        b"",
    );
    assert_success(&out, "sub -C 3");
    assert_eq!(
        out.stdout, "m3\nm4\nm5\n",
        "the three messages not taken were not acknowledged, so they came again"
    );
}

#[test]
fn an_empty_client_id_gets_one_from_the_broker() {
    let Some(broker) = Mosquitto::start("cli-empty-id", "") else {
        return;
    };
    let out = run(
        &with(&cmd("pub", broker.addr), &["-t", "t", "-m", "x", "-i", ""]),
        b"",
    );
    assert_success(&out, "pub -i ''");
}

#[test]
fn whole_stdin_and_a_file_are_one_message_each() {
    let broker = InProcessBroker::start();
    let addr = broker.addr;
    let file = scratch_dir("cli-file").join("payload.bin");
    std::fs::write(&file, b"from\na file").expect("write the payload file");
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/whole", "-C", "2"]));
    let out = run(
        &with(&cmd("pub", addr), &["-t", "cli/whole", "-s"]),
        b"all\nof stdin\n",
    );
    assert_success(&out, "pub -s");
    let path = file.to_str().expect("a UTF-8 path");
    let out = run(
        &with(&cmd("pub", addr), &["-t", "cli/whole", "-f", path]),
        b"",
    );
    assert_success(&out, "pub -f");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 2");
    assert_eq!(outcome.stdout, "all\nof stdin\n\nfrom\na file\n");

    let out = run(
        &with(
            &cmd("pub", addr),
            &["-t", "cli/whole", "-f", "/nonexistent/x"],
        ),
        b"",
    );
    assert_failure(&out, 1, "reading /nonexistent/x");
}

// ------------------------------------------------------------ -l, -C and -W

/// `pub -l` with 10 000 lines at `qos`: every line arrives, in order, at a
/// `sub -C 10000`.
fn ten_thousand_lines(tag: &str, qos: &str) {
    // mosquitto drops messages once more than max_queued_messages (default
    // 1000) wait for one subscriber. Not seen on loopback, but a loaded
    // machine could stall the sub that long, and that would test mosquitto's
    // policy, not umqtt: lift the limit.
    let Some(broker) = Mosquitto::start(tag, "max_queued_messages 0") else {
        return;
    };
    let addr = broker.addr;
    let lines: Vec<String> = (0..10_000)
        .map(|i| format!("line {i:05} of the -l test"))
        .collect();
    let mut input = lines.join("\n");
    input.push('\n');
    let topic = format!("cli/lines/{qos}");
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", &topic, "-q", qos, "-C", "10000"],
    ));
    let out = run(
        &with(&cmd("pub", addr), &["-t", &topic, "-q", qos, "-l"]),
        input.as_bytes(),
    );
    assert_success(&out, "pub -l");
    eprintln!("pub -l of 10 000 lines at QoS {qos} took {:?}", out.took);
    assert!(
        out.took < Duration::from_secs(15),
        "pub -l took {:?}",
        out.took
    );
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 10000");
    assert_eq!(outcome.stdout.lines().count(), 10_000);
    assert!(
        outcome.stdout == input,
        "the lines arrived changed or out of order"
    );
}

#[test]
fn stdin_lines_10000_qos0_all_arrive() {
    ten_thousand_lines("cli-lines-0", "0");
}

#[test]
fn stdin_lines_10000_qos1_all_arrive() {
    ten_thousand_lines("cli-lines-1", "1");
}

#[test]
fn stdin_lines_skip_empty_ones_and_strip_crlf() {
    let broker = InProcessBroker::start();
    let addr = broker.addr;
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/crlf", "-C", "2"]));
    let out = run(
        &with(&cmd("pub", addr), &["-t", "cli/crlf", "-l"]),
        b"first\r\n\n\r\nsecond",
    );
    assert_success(&out, "pub -l");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 2");
    assert_eq!(outcome.stdout, "first\nsecond\n");
}

#[test]
fn count_exits_after_that_many_messages() {
    let Some(broker) = Mosquitto::start("cli-count", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/count", "-C", "3"]));
    let out = run(
        &with(&cmd("pub", addr), &["-t", "cli/count", "-l"]),
        b"1\n2\n3\n4\n5\n",
    );
    assert_success(&out, "pub -l");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 3");
    assert_eq!(outcome.stdout, "1\n2\n3\n");
}

#[test]
fn timeout_exits_zero_after_about_that_long() {
    let Some(broker) = Mosquitto::start("cli-timeout", "") else {
        return;
    };
    let out = run(
        &with(&cmd("sub", broker.addr), &["-t", "cli/quiet", "-W", "2"]),
        b"",
    );
    assert_success(&out, "sub -W 2");
    assert_eq!(out.stdout, "");
    assert!(
        out.took >= Duration::from_millis(1900),
        "exited after {:?}",
        out.took
    );
    assert!(
        out.took < Duration::from_secs(10),
        "exited after {:?}",
        out.took
    );
}

#[test]
fn count_and_timeout_whichever_comes_first() {
    let Some(broker) = Mosquitto::start("cli-count-timeout", "") else {
        return;
    };
    let addr = broker.addr;
    // One message of the five wanted: -W ends it, with status 0.
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/ct", "-C", "5", "-W", "3"],
    ));
    publish(addr, &["-t", "cli/ct", "-m", "only"]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 5 -W 3");
    assert_eq!(outcome.stdout, "only\n");
    assert!(
        outcome.took < Duration::from_secs(10),
        "exited after {:?}",
        outcome.took
    );
}

// ------------------------------------------------------------------- failures

/// A password file for `alice` / `secret`, made with `mosquitto_passwd`.
fn password_file() -> Option<PathBuf> {
    let tool = [
        "/usr/bin/mosquitto_passwd",
        "/usr/local/bin/mosquitto_passwd",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.exists());
    let Some(tool) = tool else {
        assert!(
            !mosquitto_required(),
            "UMQTT_REQUIRE_MOSQUITTO=1 but mosquitto_passwd is missing"
        );
        eprintln!("SKIPPED: mosquitto_passwd is not installed");
        return None;
    };
    let file = scratch_dir("cli-passwd").join("passwd");
    let status = Command::new(tool)
        .args(["-b", "-c"])
        .arg(&file)
        .args(["alice", "secret"])
        .status()
        .expect("run mosquitto_passwd");
    assert!(status.success(), "mosquitto_passwd failed: {status:?}");
    Some(file)
}

#[test]
fn refused_credentials_exit_1_with_one_line() {
    let Some(passwd) = password_file() else {
        return;
    };
    let config = format!("allow_anonymous false\npassword_file {}", passwd.display());
    let Some(broker) = Mosquitto::start("cli-auth", &config) else {
        return;
    };
    let addr = broker.addr;
    for credentials in [&[][..], &["-u", "alice", "-P", "wrong"], &["-u", "mallory"]] {
        let args = [&["-t", "cli/auth", "-m", "x"][..], credentials].concat();
        let out = run(&with(&cmd("pub", addr), &args), b"");
        assert_failure(&out, 1, "not authorised");
        let args = [&["-t", "cli/auth"][..], credentials].concat();
        let out = run(&with(&cmd("sub", addr), &args), b"");
        assert_failure(&out, 1, "not authorised");
    }
    let out = run(
        &with(
            &cmd("pub", addr),
            &["-t", "cli/auth", "-m", "x", "-u", "alice", "-P", "secret"],
        ),
        b"",
    );
    assert_success(&out, "pub with the right password");
}

#[test]
fn connection_refused_exits_1_with_one_line() {
    let addr = SocketAddr::from(([127, 0, 0, 1], free_port()));
    let out = run(&with(&cmd("pub", addr), &["-t", "t", "-m", "x"]), b"");
    assert_failure(&out, 1, "connection refused");
    let out = run(&with(&cmd("sub", addr), &["-t", "t"]), b"");
    assert_failure(&out, 1, "connection refused");
}

#[test]
fn silent_broker_times_out_with_one_line() {
    // Accepts TCP, reads CONNECT, never answers (the connect deadline is 10 s).
    let fake = FakeBroker::start(1, |_, mut stream| {
        read_connect(&mut stream);
        thread::sleep(Duration::from_secs(15));
    });
    let out = run(&with(&cmd("sub", fake.addr), &["-t", "t"]), b"");
    assert_failure(&out, 1, "timed out waiting for CONNACK");
    assert!(
        out.took >= Duration::from_secs(9),
        "gave up after {:?}",
        out.took
    );
}

#[test]
fn tls_options_fail_clearly() {
    // Incomplete TLS options: a usage error (TLS itself is tested in
    // cli_tls.rs).
    for (extra, reason) in [
        (
            &[
                "--cert",
                "x.pem",
                "--key",
                "k.pem",
                "--tls-engine",
                "embedded",
            ][..],
            "--tls-engine embedded needs --cafile or --capath",
        ),
        (
            &["--cafile", "ca.pem", "--cert", "x.pem"][..],
            "--cert needs --key",
        ),
        (
            &["--capath", "/etc/ssl/certs", "--insecure"][..],
            "--insecure turns verification off, so it cannot be used with --cafile or --capath",
        ),
    ] {
        let mut args: Vec<String> = vec!["sub".into(), "-t".into(), "t".into()];
        args.extend(extra.iter().map(|s| s.to_string()));
        assert_failure(&run(&args, b""), 2, reason);
    }
    // A CA file that cannot be read: exit 1, before any connection.
    let missing = scratch_dir("cli-tls-missing").join("missing.pem");
    let out = run(
        &[
            "pub".into(),
            "--cafile".into(),
            missing.display().to_string(),
            "-t".into(),
            "t".into(),
            "-m".into(),
            "x".into(),
        ],
        b"",
    );
    assert_failure(&out, 1, "--cafile");
}

#[test]
fn usage_errors_exit_2_and_help_exits_0() {
    let out = run(&["pub".into(), "-t".into(), "t".into()], b"");
    assert_failure(&out, 2, "give a message");
    let out = run(
        &[
            "pub".into(),
            "-t".into(),
            "t".into(),
            "-m".into(),
            "x".into(),
            "-q".into(),
            "2".into(),
        ],
        b"",
    );
    assert_failure(&out, 2, "publishing with QoS 2 is not supported");
    for args in [&["--help"][..], &["pub", "--help"], &["sub", "--help"]] {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let out = run(&args, b"");
        assert_success(&out, "--help");
        assert!(out.stdout.contains("Usage:"), "{}", out.stdout);
        assert_eq!(out.stderr, "");
    }
}

// ------------------------------------------------------------ broker restart

#[test]
fn sub_keeps_receiving_across_a_broker_restart_and_says_so() {
    let Some(mut broker) = Mosquitto::start("cli-restart", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/restart", "-v", "-C", "2"],
    ));
    publish(addr, &["-t", "cli/restart", "-m", "before"]);
    sub.wait_stdout("cli/restart before\n");

    // A restart without persistence: the broker forgets the subscription.
    broker.restart();
    sub.wait_stderr("connection lost, reconnecting…");
    sub.wait_stderr("reconnected");
    sub.wait_stderr("resubscribed to 1 topic filter");
    publish(addr, &["-t", "cli/restart", "-m", "after"]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub across the restart");
    assert_eq!(outcome.stdout, "cli/restart before\ncli/restart after\n");
    let notes: Vec<&str> = outcome
        .stderr
        .lines()
        // The -d log: timed lines and one per packet.
        .filter(|l| !l.starts_with('[') && !l.starts_with("Client "))
        .collect();
    assert_eq!(
        notes,
        [
            "connection lost, reconnecting…",
            "reconnected",
            "resubscribed to 1 topic filter"
        ],
        "{}",
        outcome.stderr
    );
}

#[test]
fn pub_lines_at_qos1_ride_out_a_broker_restart() {
    let Some(mut broker) = Mosquitto::start("cli-pub-restart", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/pubrestart", "-v", "-C", "2"],
    ));
    let mut publisher = Running::spawn(&with(
        &cmd("pub", addr),
        &["-t", "cli/pubrestart", "-q", "1", "-l"],
    ));
    publisher.feed_stdin(b"first\n");
    sub.wait_stdout("cli/pubrestart first\n");
    broker.restart();
    sub.wait_stderr("resubscribed to 1 topic filter");
    publisher.wait_stderr("reconnected");
    publisher.write_stdin(b"second\n");
    let published = publisher.finish();
    assert_success(&published, "pub -l across the restart");
    let received = sub.finish();
    assert_success(&received, "sub across the restart");
    assert_eq!(
        received.stdout,
        "cli/pubrestart first\ncli/pubrestart second\n"
    );
}

// ------------------------------------------------ half-broken brokers (-W)

/// A broker that accepts every connection with a CONNACK, sends `after`,
/// then reads whatever comes and never answers; returns it and a count of
/// the connections it accepted.
fn half_broken_broker(after: &'static [u8]) -> (FakeBroker, Arc<Mutex<usize>>) {
    let accepted = Arc::new(Mutex::new(0));
    let count = Arc::clone(&accepted);
    let fake = FakeBroker::start(50, move |_, mut stream| {
        *count.lock().unwrap() += 1;
        read_connect(&mut stream);
        if stream.write_all(&[0x20, 0x02, 0x00, 0x00]).is_err() || stream.write_all(after).is_err()
        {
            return;
        }
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    });
    (fake, accepted)
}

/// The last line on stderr: the reason umqtt gave (connection events come
/// before it).
fn last_line(outcome: &Outcome) -> &str {
    outcome.stderr.lines().last().unwrap_or_default()
}

#[test]
fn pub_qos1_to_a_broker_that_never_acknowledges_gives_up_at_w_with_status_1() {
    let (fake, _) = half_broken_broker(b"");
    let out = run(
        &with(
            &cmd("pub", fake.addr),
            &["-t", "t", "-m", "x", "-q", "1", "-W", "3"],
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        last_line(&out).starts_with("error: publish: gave up after 3 s: no PUBACK from the broker"),
        "{out:?}"
    );
    assert!(
        out.took >= Duration::from_millis(2_900) && out.took < Duration::from_secs(8),
        "gave up after {:?}",
        out.took
    );
}

#[test]
fn sub_w_counts_from_the_start_when_the_suback_never_comes_behind_a_huge_message() {
    // CONNACK, then a PUBLISH announcing 268 MB of which only 4 KiB come.
    static HUGE: [u8; 4_107] = {
        let mut bytes = [b'x'; 4_107];
        let head = [
            0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x04, b'f', b'b', b'/', b'x',
        ];
        let mut i = 0;
        while i < head.len() {
            bytes[i] = head[i];
            i += 1;
        }
        bytes
    };
    let (fake, accepted) = half_broken_broker(&HUGE);
    let out = run(
        &with(
            &cmd("sub", fake.addr),
            &["-t", "fb/#", "-q", "1", "-C", "1", "-W", "3"],
        ),
        b"",
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        last_line(&out).contains("subscribe to `fb/#`: no SUBACK from the broker"),
        "{out:?}"
    );
    assert!(
        out.took >= Duration::from_millis(2_900) && out.took < Duration::from_secs(8),
        "-W 3 ended it after {:?}",
        out.took
    );
    assert!(*accepted.lock().unwrap() <= 2, "not hammered");
}

// The options added for mosquitto users (-N, -R, -T, -E, -U,
// --remove-retained, --repeat, batched -l), in their own file to keep this
// one readable.
#[path = "cli/options.rs"]
mod options;

// `pub -l -q 1` and its window (--max-inflight), through the workspace
// tests' fault proxy as a slow link.
#[path = "../../tests/tests/support/fault_proxy.rs"]
mod fault_proxy;
#[path = "cli/window.rs"]
mod window;

// `pub --outbox FILE`: what a killed publisher accepted is sent by the next run.
#[path = "cli/outbox.rs"]
mod outbox;
