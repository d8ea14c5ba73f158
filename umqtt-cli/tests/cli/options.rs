//! `umqtt` options with mosquitto_sub's and mosquitto_pub's spelling and
//! meaning, each against a mosquitto started by the test (the helpers are
//! cli.rs's).

use std::io::Write;
use std::time::Duration;

use super::{Mosquitto, Running, assert_success, cmd, publish, run, with};

#[test]
fn sub_no_newline_joins_the_payloads() {
    let Some(broker) = Mosquitto::start("cli-no-newline", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/n", "-N", "-C", "2"]));
    publish(addr, &["-t", "cli/n", "-m", "one"]);
    sub.wait_stdout("one");
    publish(addr, &["-t", "cli/n", "-m", "two"]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -N");
    assert_eq!(outcome.stdout, "onetwo");
}

#[test]
fn sub_skip_retained_prints_only_fresh_messages() {
    let Some(broker) = Mosquitto::start("cli-skip-retained", "") else {
        return;
    };
    let addr = broker.addr;
    publish(addr, &["-t", "cli/r/old", "-r", "-m", "stale"]);
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/r/#", "-v", "-R", "-C", "1"],
    ));
    // The retained message came (or comes) with the subscription; a fresh
    // one, even published with -r, reaches a live subscriber unflagged.
    publish(addr, &["-t", "cli/r/new", "-r", "-m", "fresh"]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -R");
    assert_eq!(outcome.stdout, "cli/r/new fresh\n");
}

#[test]
fn sub_filter_out_hides_matching_topics() {
    let Some(broker) = Mosquitto::start("cli-filter-out", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &[
            "-t",
            "cli/t/#",
            "-v",
            "-T",
            "cli/t/+/noise",
            "-T",
            "cli/t/debug/#",
            "-C",
            "2",
        ],
    ));
    for (topic, message) in [
        ("cli/t/a/noise", "hidden"),
        ("cli/t/debug/x/y", "hidden"),
        ("cli/t/a/signal", "shown"),
        ("cli/t/debug", "hidden"),
        ("cli/t/b/noise/deeper", "shown too"),
    ] {
        publish(addr, &["-t", topic, "-m", message]);
    }
    let outcome = sub.finish();
    assert_success(&outcome, "sub -T");
    assert_eq!(
        outcome.stdout,
        "cli/t/a/signal shown\ncli/t/b/noise/deeper shown too\n"
    );
}

#[test]
fn sub_exit_on_subscribed_sets_up_a_session_and_exits() {
    let Some(broker) = Mosquitto::start("cli-exit-subscribed", "") else {
        return;
    };
    let addr = broker.addr;
    let id = format!("cli-exit-subscribed-{}", std::process::id());
    let session = ["-t", "cli/e/1", "-t", "cli/e/2", "-q", "1", "-c", "-i", &id];
    // No -W: only -E ends it, with status 0.
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-E", "-d"]].concat()),
        b"",
    );
    assert_success(&out, "sub -E");
    assert_eq!(
        out.stderr.matches("subscribed to `").count(),
        2,
        "{}",
        out.stderr
    );
    assert!(out.took < Duration::from_secs(5), "took {:?}", out.took);
    // Both subscriptions were made: the session queued a message for each.
    publish(addr, &["-t", "cli/e/1", "-q", "1", "-m", "one"]);
    publish(addr, &["-t", "cli/e/2", "-q", "1", "-m", "two"]);
    let out = run(
        &with(&cmd("sub", addr), &[&session[..], &["-C", "2"]].concat()),
        b"",
    );
    assert_success(&out, "sub after -E");
    assert_eq!(out.stdout, "one\ntwo\n");
}

#[test]
fn sub_unsubscribe_ends_a_persistent_subscription_and_exits() {
    let Some(broker) = Mosquitto::start("cli-unsubscribe", "") else {
        return;
    };
    let addr = broker.addr;
    let id = format!("cli-unsubscribe-{}", std::process::id());
    let persistent = ["-q", "1", "-c", "-i", &id];
    let out = run(
        &with(
            &cmd("sub", addr),
            &[
                &persistent[..],
                &["-t", "cli/u/keep", "-t", "cli/u/drop", "-E"],
            ]
            .concat(),
        ),
        b"",
    );
    assert_success(&out, "sub -E");
    // -U alone: unsubscribes and exits by itself (no -W), status 0.
    let out = run(
        &with(
            &cmd("sub", addr),
            &[&persistent[..], &["-U", "cli/u/drop", "-d"]].concat(),
        ),
        b"",
    );
    assert_success(&out, "sub -U");
    assert!(
        out.stderr.contains("unsubscribed from `cli/u/drop`"),
        "{}",
        out.stderr
    );
    assert!(out.took < Duration::from_secs(5), "took {:?}", out.took);
    publish(addr, &["-t", "cli/u/drop", "-q", "1", "-m", "dropped"]);
    publish(addr, &["-t", "cli/u/keep", "-q", "1", "-m", "kept"]);
    // Only the subscription left queued a message.
    let out = run(
        &with(
            &cmd("sub", addr),
            &[&persistent[..], &["-t", "cli/u/other", "-W", "2"]].concat(),
        ),
        b"",
    );
    assert_success(&out, "sub after -U");
    assert_eq!(out.stdout, "kept\n");
}

#[test]
fn sub_remove_retained_clears_what_it_prints() {
    let Some(broker) = Mosquitto::start("cli-remove-retained", "") else {
        return;
    };
    let addr = broker.addr;
    publish(addr, &["-t", "cli/rr/a", "-r", "-m", "old a"]);
    publish(addr, &["-t", "cli/rr/b", "-r", "-q", "1", "-m", "old b"]);
    publish(addr, &["-t", "cli/rr/keep", "-r", "-m", "kept"]);
    // As mosquitto_sub 2.0: what -T (or -R) hides is not cleared. The
    // broker sends each clearing back as an empty message.
    let out = run(
        &with(
            &cmd("sub", addr),
            &[
                "-t",
                "cli/rr/#",
                "--remove-retained",
                "-T",
                "cli/rr/keep",
                "-v",
                "-C",
                "4",
                "-d",
            ],
        ),
        b"",
    );
    assert_success(&out, "sub --remove-retained");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        [
            "cli/rr/a (null)",
            "cli/rr/a old a",
            "cli/rr/b (null)",
            "cli/rr/b old b"
        ],
        "{out:?}"
    );
    assert_eq!(
        out.stderr.matches("cleared the retained message").count(),
        2
    );
    // Only the hidden one is left.
    let out = run(
        &with(
            &cmd("sub", addr),
            &["-t", "cli/rr/#", "-v", "-C", "2", "-W", "2"],
        ),
        b"",
    );
    assert_success(&out, "sub after clearing");
    assert_eq!(out.stdout, "cli/rr/keep kept\n");
}

#[test]
fn pub_repeat_publishes_n_times_with_the_delay_between() {
    let Some(broker) = Mosquitto::start("cli-repeat", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/rep", "-C", "3"]));
    let out = run(
        &with(
            &cmd("pub", addr),
            &[
                "-t",
                "cli/rep",
                "-q",
                "1",
                "-m",
                "again",
                "--repeat",
                "3",
                "--repeat-delay",
                "0.4",
            ],
        ),
        b"",
    );
    assert_success(&out, "pub --repeat 3");
    // Two pauses of 0.4 s between three messages.
    assert!(
        out.took >= Duration::from_millis(800) && out.took < Duration::from_secs(5),
        "took {:?}",
        out.took
    );
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 3");
    assert_eq!(outcome.stdout, "again\nagain\nagain\n");
}

#[test]
fn pub_lines_qos0_is_batched_yet_each_typed_line_goes_out_at_once() {
    // `-l -q 0` batches messages, but flushes whenever stdin has no line
    // ready: a line typed at a terminal arrives while stdin stays open.
    let Some(broker) = Mosquitto::start("cli-lines-batch", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(&cmd("sub", addr), &["-t", "cli/typed", "-C", "3"]));
    let mut publisher = Running::spawn(&with(&cmd("pub", addr), &["-t", "cli/typed", "-l"]));
    let mut stdin = publisher.stdin.take().expect("stdin");
    for line in ["first", "second"] {
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .expect("write a line");
        stdin.flush().expect("flush");
        sub.wait_stdout(&format!("{line}\n"));
    }
    // The last one is flushed on the way out (end of stdin).
    stdin.write_all(b"last\n").expect("write a line");
    drop(stdin);
    let out = publisher.finish();
    assert_success(&out, "pub -l");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -C 3");
    assert_eq!(outcome.stdout, "first\nsecond\nlast\n");
}

#[test]
fn a_url_names_broker_and_topic_for_pub_and_sub() {
    let Some(broker) = Mosquitto::start("cli-url", "") else {
        return;
    };
    let url = format!("mqtt://{}/cli/url", broker.addr);
    let sub = Running::subscribed(&[
        "sub".into(),
        "-L".into(),
        url.clone(),
        "-C".into(),
        "1".into(),
    ]);
    // No -t to count: wait for the subscription in the -d log itself.
    sub.wait_stderr("subscribed to `cli/url`");
    let out = run(
        &[
            "pub".into(),
            "-L".into(),
            url,
            "-m".into(),
            "via url".into(),
        ],
        b"",
    );
    assert_success(&out, "pub -L");
    let outcome = sub.finish();
    assert_success(&outcome, "sub -L");
    assert_eq!(outcome.stdout, "via url\n");
}

#[test]
fn sub_format_prints_each_field_and_json_lines() {
    let Some(broker) = Mosquitto::start("cli-format", "") else {
        return;
    };
    let addr = broker.addr;
    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &[
            "-t",
            "cli/f/#",
            "-q",
            "1",
            "-C",
            "2",
            "-F",
            "%t|%q|%r|%l|%x|%p",
        ],
    ));
    publish(addr, &["-t", "cli/f/a", "-q", "1", "-m", "hi"]);
    sub.wait_stdout("cli/f/a");
    publish(addr, &["-t", "cli/f/b", "-m", "there"]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -F");
    assert_eq!(
        outcome.stdout,
        "cli/f/a|1|0|2|6869|hi\ncli/f/b|0|0|5|7468657265|there\n"
    );

    let sub = Running::subscribed(&with(
        &cmd("sub", addr),
        &["-t", "cli/j", "-C", "1", "-F", "%j"],
    ));
    publish(addr, &["-t", "cli/j", "-m", "say \"hi\""]);
    let outcome = sub.finish();
    assert_success(&outcome, "sub -F %j");
    let line = outcome.stdout.trim_end();
    assert!(line.starts_with("{\"tst\":\"20"), "{line}");
    assert!(
        line.ends_with(
            "+0000\",\"topic\":\"cli/j\",\"qos\":0,\"retain\":0,\"payloadlen\":8,\"payload\":\"say \\\"hi\\\"\"}"
        ),
        "{line}"
    );
}

#[test]
fn sub_format_with_an_unknown_sequence_is_a_usage_error_that_names_it() {
    let outcome = run(
        &[
            "sub".into(),
            "-t".into(),
            "x".into(),
            "-F".into(),
            "%z".into(),
        ],
        b"",
    );
    assert_eq!(outcome.status.code(), Some(2), "{}", outcome.stderr);
    assert!(
        outcome.stderr.contains("unknown format `%z`"),
        "{}",
        outcome.stderr
    );
}

#[test]
fn debug_prints_every_packet_as_mosquitto_clients_do() {
    let Some(broker) = Mosquitto::start("cli-debug", "") else {
        return;
    };
    let addr = broker.addr;
    let outcome = run(
        &with(
            &cmd("pub", addr),
            &[
                "-t", "cli/d", "-q", "1", "-m", "hello", "-i", "dbg-pub", "-d",
            ],
        ),
        b"",
    );
    assert_success(&outcome, "pub -d");
    for line in [
        "Client dbg-pub sending CONNECT (c1, k60, u0, p0, w0)",
        "Client dbg-pub received CONNACK (0, session present 0)",
        "Client dbg-pub sending PUBLISH (d0, q1, r0, m1, 'cli/d', ... (5 bytes))",
        "Client dbg-pub received PUBACK (Mid: 1)",
        "Client dbg-pub sending DISCONNECT",
    ] {
        assert!(
            outcome.stderr.contains(line),
            "missing `{line}` in:\n{}",
            outcome.stderr
        );
    }
}
