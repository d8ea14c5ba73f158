//! `umqtt pub -l -q 1` keeps `--max-inflight` messages in flight (default
//! 20, as mosquitto_pub): through a slow link (the fault proxy holding every
//! packet 25 ms each way) the proxy's record shows that many PUBLISH packets
//! leave before the first PUBACK comes back, and never more; every line
//! reaches a `sub` connected to mosquitto directly, in order. A connection
//! lost with messages in flight is reported, not hidden.

use std::io::{Read, Write};
use std::time::Duration;

use super::fault_proxy::{FaultProxy, Record, window_on_the_wire};
use super::{
    FakeBroker, Mosquitto, Running, assert_success, cmd, last_line, read_connect, run, with,
};

/// How many PUBLISH packets were forwarded before the first PUBACK (all of
/// them if none came), and the most forwarded and not yet answered at any
/// point.
fn in_flight_on_the_wire(records: &[Record]) -> (usize, usize) {
    let w = window_on_the_wire(records);
    (w.before_first_ack.unwrap_or(w.sent), w.most)
}

/// `pub -l -q 1` of `n` lines through a slow link with `extra` options;
/// returns the window seen on the wire (see [`in_flight_on_the_wire`]).
fn lines_through_a_slow_link(tag: &str, n: usize, extra: &[&str]) -> (usize, usize) {
    let Some(broker) = Mosquitto::start(tag, "max_queued_messages 0") else {
        return (0, 0);
    };
    let proxy = FaultProxy::slow_link(broker.addr, Duration::from_millis(25));
    let topic = format!("cli/window/{tag}");
    let count = n.to_string();
    let sub = Running::subscribed(&with(
        &cmd("sub", broker.addr),
        &["-t", &topic, "-q", "1", "-C", &count],
    ));
    let mut input: String = (0..n).map(|i| format!("line {i:04}\n")).collect();
    let mut args = with(&cmd("pub", proxy.addr), &["-t", &topic, "-q", "1", "-l"]);
    args.extend(extra.iter().map(|s| s.to_string()));
    let out = run(&args, input.as_bytes());
    assert_success(&out, "pub -l -q 1 through the slow link");
    let received = sub.finish();
    assert_success(&received, "sub -C");
    assert!(
        received.stdout == input,
        "{} of {n} lines arrived, or out of order",
        received.stdout.lines().count()
    );
    input.clear();
    let (before_first_ack, most) = in_flight_on_the_wire(&proxy.records());
    eprintln!(
        "pub -l -q 1 {extra:?}: {n} lines in {:?} over a 50 ms round trip; {before_first_ack} \
         PUBLISH before the first PUBACK, at most {most} in flight",
        out.took
    );
    (before_first_ack, most)
}

#[test]
fn pub_lines_at_qos1_keep_20_messages_in_flight_by_default() {
    let seen = lines_through_a_slow_link("default", 400, &[]);
    if seen != (0, 0) {
        assert_eq!(seen, (20, 20), "(before the first PUBACK, at most)");
    }
}

#[test]
fn pub_lines_at_qos1_keep_max_inflight_messages_in_flight() {
    let seen = lines_through_a_slow_link("five", 100, &["--max-inflight", "5"]);
    if seen != (0, 0) {
        assert_eq!(seen, (5, 5), "(before the first PUBACK, at most)");
    }
    let seen = lines_through_a_slow_link("one", 20, &["--max-inflight", "1"]);
    if seen != (0, 0) {
        assert_eq!(seen, (1, 1), "(before the first PUBACK, at most)");
    }
}

/// A broker whose first connection takes three PUBLISH packets and closes
/// without acknowledging any, and whose later ones acknowledge everything.
fn broker_dropping_the_first_window() -> FakeBroker {
    FakeBroker::start(5, |index, mut stream| {
        read_connect(&mut stream);
        if stream.write_all(&[0x20, 0x02, 0x00, 0x00]).is_err() {
            return;
        }
        let mut reader = std::io::BufReader::new(stream.try_clone().expect("clone"));
        let mut publishes = 0;
        while let Ok(packet) = umqtt_tests::read_packet(&mut reader) {
            if packet[0] & 0xf0 != 0x30 {
                continue;
            }
            publishes += 1;
            if index == 0 && publishes == 3 {
                return; // closed with the window in flight
            }
            // PUBACK: the packet id follows the topic.
            let topic_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
            let id = &packet[4 + topic_len..6 + topic_len];
            if stream.write_all(&[0x40, 0x02, id[0], id[1]]).is_err() {
                return;
            }
        }
        let mut sink = [0u8; 256];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    })
}

#[test]
fn pub_lines_at_qos1_say_how_many_messages_a_lost_connection_took() {
    let fake = broker_dropping_the_first_window();
    let input: String = (0..10).map(|i| format!("m{i}\n")).collect();
    let out = run(
        &with(
            &cmd("pub", fake.addr),
            &[
                "-t",
                "t",
                "-q",
                "1",
                "-l",
                "--max-inflight",
                "5",
                "-W",
                "10",
            ],
        ),
        input.as_bytes(),
    );
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let reason = last_line(&out);
    assert!(
        reason.starts_with("error: publish: ")
            && reason.contains(" of 10 messages were in flight when the connection was lost"),
        "{out:?}"
    );
    eprintln!("{reason}");
}
