//! `umqtt pub --outbox FILE`: every message the process accepted reaches
//! the broker, even when the process is killed with SIGKILL mid-stream: the
//! next `umqtt pub --outbox FILE` sends what is left.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::{Mosquitto, Running, assert_success, cmd, run, scratch_dir, with};

/// Lines "0".."TOTAL-1" for `-l`.
fn numbered_lines(total: usize) -> Vec<u8> {
    (0..total)
        .map(|i| format!("{i}\n"))
        .collect::<String>()
        .into_bytes()
}

#[test]
fn pub_outbox_killed_mid_stream_and_run_again_delivers_every_message_it_accepted() {
    const TOTAL: usize = 3_000;
    let Some(broker) = Mosquitto::start("cli-outbox", "") else {
        return;
    };
    let addr = broker.addr;
    let file = scratch_dir("cli-outbox").join("outbox.log");
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/outbox", "-q", "1"]));

    // The first run: lines as fast as the pipe takes them; killed once it
    // has accepted 500 of them.
    let mut first = Running::spawn(&with(
        &cmd("pub", addr),
        &[
            "-t",
            "cli/outbox",
            "-q",
            "1",
            "-l",
            "--outbox",
            file.to_str().unwrap(),
            "-d",
        ],
    ));
    first.feed_stdin(&numbered_lines(TOTAL));
    first.wait_stderr_count("queued message ", 500);
    // Read before the kill: every line counted here was accepted.
    let accepted = first.stderr().matches("queued message ").count();
    first.kill();
    println!("the first run accepted {accepted} of {TOTAL} lines before SIGKILL");

    // The second run, with nothing new: it sends what the first left.
    let second = run(
        &with(
            &cmd("pub", addr),
            &[
                "-t",
                "cli/outbox",
                "-q",
                "1",
                "-l",
                "--outbox",
                file.to_str().unwrap(),
                "-d",
            ],
        ),
        b"",
    );
    assert_success(&second, "the second run drains the outbox");
    // Killed mid-stream, the first run had messages in flight: the second
    // found them in the file.
    assert!(
        second.stderr.contains("left by an earlier run go first"),
        "{}",
        second.stderr
    );

    // Every accepted line arrives (duplicates allowed, counted).
    let deadline = Instant::now() + Duration::from_secs(20);
    let counts = loop {
        let mut counts: HashMap<usize, usize> = HashMap::new();
        for line in sub.stdout().lines() {
            if let Ok(n) = line.parse::<usize>() {
                *counts.entry(n).or_default() += 1;
            }
        }
        if (0..accepted).all(|n| counts.contains_key(&n)) || Instant::now() > deadline {
            break counts;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let missing: Vec<usize> = (0..accepted).filter(|n| !counts.contains_key(n)).collect();
    assert!(
        missing.is_empty(),
        "{} accepted lines never arrived: {:?}",
        missing.len(),
        &missing[..missing.len().min(20)]
    );
    let duplicates: usize = counts.values().map(|c| c - 1).sum();
    println!("all {accepted} accepted lines arrived, {duplicates} duplicates");
    assert_eq!(
        std::fs::metadata(&file).map(|m| m.len()).unwrap_or(0),
        0,
        "the outbox ends empty"
    );
    drop(sub);
}

#[test]
fn pub_outbox_that_cannot_be_opened_is_a_clear_error() {
    let dir = scratch_dir("cli-outbox-bad");
    let not_an_outbox = dir.join("notes.txt");
    std::fs::write(&not_an_outbox, b"shopping list").unwrap();
    let outcome = run(
        &[
            "pub".into(),
            "-p".into(),
            "1".into(),
            "-t".into(),
            "t".into(),
            "-m".into(),
            "x".into(),
            "--outbox".into(),
            not_an_outbox.to_string_lossy().into_owned(),
        ],
        b"",
    );
    assert_eq!(outcome.status.code(), Some(1), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("--outbox"), "{}", outcome.stderr);
    assert!(outcome.stderr.contains("notes.txt"), "{}", outcome.stderr);
    assert_eq!(
        std::fs::read(&not_an_outbox).unwrap(),
        b"shopping list",
        "left untouched"
    );
}
