//! umqtt over smoltcp on a TAP device, end to end, each test in a network
//! namespace of its own with mosquitto inside (see `umqtt_tests::netns`); and the stack
//! conformance check against the three stacks.
//!
//! Only addresses inside the namespace are used (192.168.69.0/24 on the TAP,
//! and loopback); nothing can leave it.

use std::cell::RefCell;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::process::Command;
use std::time::{Duration, Instant};

use support::{BLACK_HOLE_IP, BROKER_IP, BROKER_PORT, CLOSED_PORT, STACK_IP, TAP, broker};
use umqtt_conformance::{self as conformance, Behaviour, Config, Report, Verdict, ZeroRead};
use umqtt_robust::{Backoff, Event, RobustOptions};
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_smoltcp_example::{TapConfig, client, open, robust_client};
use umqtt_tests::netns as support;
use umqtt_transports::Spin;
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(10);

fn tap_config() -> TapConfig {
    TapConfig::new(TAP, STACK_IP, 24)
}

/// What a callback received: topic, payload, QoS.
type Inbox = RefCell<Vec<(Vec<u8>, Vec<u8>, QoS)>>;

fn has(inbox: &Inbox, topic: &[u8], payload: &[u8]) -> bool {
    inbox
        .borrow()
        .iter()
        .any(|(t, p, _)| t == topic && p == payload)
}

/// Counts the lines of mosquitto's log that contain `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A std client (the kernel's TCP, inside the namespace) that publishes one
/// QoS 1 message.
fn publish_from_kernel(id: &str, topic: &[u8], payload: &[u8]) {
    let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
    let mut publisher = Client::new(
        StdTcpStack::new(),
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new(id),
    )
    .with_waiter(StdWait::new());
    publisher.connect(broker()).expect("kernel client connects");
    publisher
        .publish(topic, payload, false, QoS::AtLeastOnce)
        .expect("kernel client publishes");
    publisher.disconnect().expect("kernel client disconnects");
}

#[test]
fn simple_client_over_smoltcp() {
    let Some(ns) = support::enter("simple_client_over_smoltcp") else {
        return;
    };
    let mosquitto = ns.mosquitto();
    let tap = open(&tap_config()).expect("open the TAP device");

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| {
        inbox
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 4096]);
    let id = "smoltcp-simple";
    // Keepalive 1 s: the idle period below must be bridged by PINGREQs.
    let options = Options::new(id).keepalive(1);
    let mut client = client(tap, &mut tx, &mut rx, options);
    client.set_callback(&mut on_message);

    let session_present = client.connect(broker()).expect("connect over smoltcp");
    assert!(!session_present);
    assert_eq!(
        client
            .subscribe(b"umqtt/tap/#", QoS::AtLeastOnce)
            .expect("subscribe"),
        QoS::AtLeastOnce
    );

    let wait_until =
        |client: &mut umqtt_smoltcp_example::TapClient<'_>, what: &str, done: &dyn Fn() -> bool| {
            let start = Instant::now();
            while !done() {
                assert!(
                    start.elapsed() < WAIT,
                    "{what} did not happen within {WAIT:?}"
                );
                client.wait_msg_for(500).expect("wait_msg_for");
            }
        };

    // QoS 0 out and back.
    client
        .publish(
            b"umqtt/tap/q0",
            b"qos 0 over smoltcp",
            false,
            QoS::AtMostOnce,
        )
        .expect("publish QoS 0");
    wait_until(&mut client, "the QoS 0 message's return", &|| {
        has(&inbox, b"umqtt/tap/q0", b"qos 0 over smoltcp")
    });

    // QoS 1: publish returns after the PUBACK; the message comes back with QoS 1.
    client
        .publish(
            b"umqtt/tap/q1",
            b"qos 1 over smoltcp",
            false,
            QoS::AtLeastOnce,
        )
        .expect("publish QoS 1");
    wait_until(&mut client, "the QoS 1 message's return", &|| {
        has(&inbox, b"umqtt/tap/q1", b"qos 1 over smoltcp")
    });
    assert!(
        inbox
            .borrow()
            .iter()
            .any(|(t, _, q)| t == b"umqtt/tap/q1" && *q == QoS::AtLeastOnce)
    );

    // A message larger than an Ethernet frame, both ways (the payload goes in
    // a second send, since it does not fit the 1 KiB transmit buffer).
    let big: Vec<u8> = (0..3000u32).map(|i| (i % 251) as u8).collect();
    client
        .publish(b"umqtt/tap/big", &big, false, QoS::AtLeastOnce)
        .expect("publish 3000 bytes");
    wait_until(&mut client, "the 3000-byte message's return", &|| {
        has(&inbox, b"umqtt/tap/big", &big)
    });

    // From the kernel's stack, through the broker, to smoltcp.
    publish_from_kernel("kernel-publisher", b"umqtt/tap/kernel", b"from the kernel");
    wait_until(&mut client, "the kernel client's message", &|| {
        has(&inbox, b"umqtt/tap/kernel", b"from the kernel")
    });

    // Idle for 3.5 keepalive periods: the client pings by itself and takes
    // the PINGRESPs; without them mosquitto would drop it after 1.5 s.
    let pings_before = count(&mosquitto.log(), &format!("Received PINGREQ from {id}"));
    let idle_start = Instant::now();
    let received_before = inbox.borrow().len();
    while idle_start.elapsed() < Duration::from_millis(3500) {
        let left = Duration::from_millis(3500).saturating_sub(idle_start.elapsed());
        client
            .wait_msg_for(u32::try_from(left.as_millis()).unwrap_or(1).max(1))
            .expect("idle wait_msg_for with keepalive 1 s");
    }
    assert_eq!(
        inbox.borrow().len(),
        received_before,
        "no message while idle"
    );
    let log = mosquitto.log();
    let pings = count(&log, &format!("Received PINGREQ from {id}")) - pings_before;
    let pongs = count(&log, &format!("Sending PINGRESP to {id}"));
    assert!(pings >= 2, "{pings} PINGREQs in 3.5 s; log:\n{log}");
    assert!(pongs >= pings, "{pongs} PINGRESPs for {pings} PINGREQs");
    assert!(client.is_connected());
    client
        .publish(b"umqtt/tap/q1", b"still connected", false, QoS::AtLeastOnce)
        .expect("publish after the idle period");
    println!("idle 3.5 s with keepalive 1 s: {pings} PINGREQ/PINGRESP over smoltcp");

    client.disconnect().expect("disconnect");
    // The waiter's poll sent the DISCONNECT; the FIN that `close` queued
    // leaves only when smoltcp is polled again (and mosquitto needs a moment
    // to log it all).
    client.pause(300);
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {id}"));
    assert!(
        log.contains(&format!("Received DISCONNECT from {id}")),
        "log:\n{log}"
    );
    assert_eq!(
        count(&log, &format!("Client {id} closed its connection"))
            + count(&log, &format!("Client {id} disconnected")),
        1,
        "a clean disconnect; log:\n{log}"
    );
}

/// Only non-blocking calls after the handshake (QoS 0 publishes and
/// `check_msg`; no `wait_msg`, no `pause`, no `stack_mut().poll()`): the
/// waiter's `Wait::poll` moves the bytes, and a full socket send buffer
/// (smoltcp-nal's `Ok(0)`) is waited out instead of ending the connection.
#[test]
fn check_msg_loop_and_qos0_publishes_need_no_manual_poll() {
    let Some(ns) = support::enter("check_msg_loop_and_qos0_publishes_need_no_manual_poll") else {
        return;
    };
    let mosquitto = ns.mosquitto();
    let tap = open(&tap_config()).expect("open the TAP device");

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| {
        inbox
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 32 * 1024]);
    let id = "smoltcp-check-msg";
    let mut client = client(tap, &mut tx, &mut rx, Options::new(id));
    client.set_callback(&mut on_message);
    client.connect(broker()).expect("connect over smoltcp");
    client
        .subscribe(b"umqtt/loop/#", QoS::AtMostOnce)
        .expect("subscribe");

    // check_msg until `done`, never waiting; returns how many calls it took.
    let spin_until =
        |client: &mut umqtt_smoltcp_example::TapClient<'_>, what: &str, done: &dyn Fn() -> bool| {
            let start = Instant::now();
            let mut calls = 0u64;
            while !done() {
                assert!(
                    start.elapsed() < WAIT,
                    "{what} did not happen within {WAIT:?} of check_msg calls"
                );
                client.check_msg().expect("check_msg");
                calls += 1;
            }
            calls
        };

    // 1. A QoS 0 publish leaves while the client is not called at all: the
    //    poll after the packet was handed to `send` transmitted it.
    client
        .publish(
            b"umqtt/loop/one",
            b"sent by the poll",
            false,
            QoS::AtMostOnce,
        )
        .expect("publish QoS 0");
    let start = Instant::now();
    while count(&mosquitto.log(), &format!("Received PUBLISH from {id}")) == 0 {
        assert!(
            start.elapsed() < WAIT,
            "the QoS 0 PUBLISH never reached the broker; log:\n{}",
            mosquitto.log()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    println!(
        "QoS 0 PUBLISH at the broker {} ms after publish returned, with no client call since",
        start.elapsed().as_millis()
    );

    // 2. It comes back through check_msg alone: the poll before `receive`
    //    takes the frames in.
    let calls = spin_until(&mut client, "the QoS 0 message's return", &|| {
        has(&inbox, b"umqtt/loop/one", b"sent by the poll")
    });
    println!("returned after {calls} check_msg call(s)");

    // 3. 200 QoS 0 publishes of 100 bytes in a row, about six times the
    //    4 KiB socket send buffer (the client before Wait::poll and the Ok(0)
    //    retry failed at the 36th), then check_msg until all are back, in
    //    order.
    let payload = |i: u32| format!("{i:03} {}", "x".repeat(96)).into_bytes();
    let burst_start = Instant::now();
    for i in 0..200 {
        client
            .publish(b"umqtt/loop/burst", &payload(i), false, QoS::AtMostOnce)
            .unwrap_or_else(|e| panic!("QoS 0 publish {i} of 200: {e:?}"));
    }
    let published = burst_start.elapsed();
    let burst = |inbox: &Inbox| {
        inbox
            .borrow()
            .iter()
            .filter(|(t, _, _)| t == b"umqtt/loop/burst")
            .map(|(_, p, _)| p.clone())
            .collect::<Vec<_>>()
    };
    let calls = spin_until(&mut client, "the return of 200 QoS 0 messages", &|| {
        burst(&inbox).len() >= 200
    });
    assert_eq!(
        burst(&inbox),
        (0..200).map(payload).collect::<Vec<_>>(),
        "all 200, in order, once"
    );
    println!(
        "200 QoS 0 publishes of 100 bytes in {} ms; all back after {calls} check_msg call(s)",
        published.as_millis()
    );

    // 4. One QoS 0 message five times the socket send buffer: smoltcp-nal's
    //    send says Ok(0) when the buffer is full, and the client retries
    //    (its waiter's idle polls the buffer empty) instead of giving up.
    let big: Vec<u8> = (0..20_000u32).map(|i| (i % 251) as u8).collect();
    client
        .publish(b"umqtt/loop/big", &big, false, QoS::AtMostOnce)
        .expect("publish 20 000 bytes at QoS 0 through a 4 KiB send buffer");
    let calls = spin_until(&mut client, "the 20 000-byte message's return", &|| {
        has(&inbox, b"umqtt/loop/big", &big)
    });
    println!("20 000-byte QoS 0 message back after {calls} check_msg call(s)");
    assert!(client.is_connected());

    client.disconnect().expect("disconnect");
    client.pause(300);
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {id}"));
    assert!(
        log.contains(&format!("Received DISCONNECT from {id}")),
        "log:\n{log}"
    );
}

#[test]
fn robust_client_over_smoltcp_survives_broker_restarts() {
    let Some(ns) = support::enter("robust_client_over_smoltcp_survives_broker_restarts") else {
        return;
    };
    let mut mosquitto = ns.mosquitto();
    let tap = open(&tap_config()).expect("open the TAP device");

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| {
        inbox
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| {
        println!("event: {e:?}");
        events.borrow_mut().push(e);
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let options = Options::new("smoltcp-robust")
        .keepalive(5)
        .connect_timeout_ms(3_000)
        .ack_timeout_ms(3_000);
    let mut robust = robust_client(tap, &mut tx, &mut rx, options);
    robust.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 100,
            max_ms: 500,
            max_attempts: None,
        },
        call_timeout_ms: 15_000,
    });
    robust.set_callback(&mut on_message);
    robust.set_event_callback(&mut on_event);

    robust.connect(broker()).expect("connect");
    robust
        .subscribe(b"umqtt/robust/#", QoS::AtLeastOnce)
        .expect("subscribe");
    robust
        .publish(b"umqtt/robust/a", b"before", false, QoS::AtLeastOnce)
        .expect("publish before the restart");
    let start = Instant::now();
    while !has(&inbox, b"umqtt/robust/a", b"before") {
        assert!(start.elapsed() < WAIT, "'before' did not come back");
        robust.wait_msg_for(500).expect("wait_msg_for");
    }

    // 1. The broker restarts while the client is about to publish: the QoS 1
    //    publish reconnects, resubscribes (clean session) and goes through.
    mosquitto.restart();
    robust
        .publish(
            b"umqtt/robust/a",
            b"after restart 1",
            false,
            QoS::AtLeastOnce,
        )
        .expect("publish across the restart");
    let start = Instant::now();
    while !has(&inbox, b"umqtt/robust/a", b"after restart 1") {
        assert!(
            start.elapsed() < WAIT,
            "'after restart 1' did not come back"
        );
        robust.wait_msg_for(500).expect("wait_msg_for");
    }
    {
        let events = events.borrow();
        assert!(events.contains(&Event::Lost), "{events:?}");
        assert!(
            events.iter().any(|e| matches!(
                e,
                Event::Reconnected {
                    session_present: false,
                    ..
                }
            )),
            "{events:?}"
        );
        assert!(
            events.contains(&Event::Resubscribed { filters: 1 }),
            "{events:?}"
        );
    }

    // 2. The broker is down for a second while the client waits in
    //    wait_msg_for: it notices, retries with backoff (sleeping in the TAP
    //    waiter), reconnects once the broker is back, and receives again.
    events.borrow_mut().clear();
    mosquitto.kill();
    let down = Instant::now();
    let mut restarted = false;
    while !events
        .borrow()
        .iter()
        .any(|e| matches!(e, Event::Resubscribed { .. }))
    {
        assert!(
            down.elapsed() < WAIT * 2,
            "no reconnect: {:?}",
            events.borrow()
        );
        if !restarted && down.elapsed() > Duration::from_secs(1) {
            mosquitto.restart();
            restarted = true;
        }
        robust
            .wait_msg_for(200)
            .expect("wait_msg_for during the outage");
    }
    assert!(
        events
            .borrow()
            .iter()
            .any(|e| matches!(e, Event::ReconnectFailed { .. })),
        "attempts while the broker was down: {:?}",
        events.borrow()
    );
    publish_from_kernel("kernel-publisher", b"umqtt/robust/k", b"after restart 2");
    let start = Instant::now();
    while !has(&inbox, b"umqtt/robust/k", b"after restart 2") {
        assert!(start.elapsed() < WAIT, "'after restart 2' did not arrive");
        robust.wait_msg_for(500).expect("wait_msg_for");
    }
    println!("robust over smoltcp: reconnected after two broker restarts");
    robust.disconnect().expect("disconnect");
    robust.client_mut().pause(200);
}

#[test]
fn example_binary_runs_over_tap() {
    let Some(ns) = support::enter("example_binary_runs_over_tap") else {
        return;
    };
    let _mosquitto = ns.mosquitto();
    let out = Command::new(env!("CARGO_BIN_EXE_umqtt-smoltcp"))
        .args([
            "--tap",
            TAP,
            "--ip",
            &format!("{STACK_IP}/24"),
            "--broker",
            &broker().to_string(),
            "--count",
            "4",
        ])
        .output()
        .expect("run umqtt-smoltcp");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}{stderr}");
    assert!(out.status.success(), "umqtt-smoltcp failed");
    assert!(stdout.contains("received 4 messages"), "{stdout}");
}

fn addr(ip: Ipv4Addr, port: u16) -> SocketAddr {
    SocketAddr::V4(SocketAddrV4::new(ip, port))
}

fn netns_config(name: &'static str) -> Config<'static> {
    Config::new(name, broker(), addr(BROKER_IP, CLOSED_PORT))
        .black_hole(addr(BLACK_HOLE_IP, BROKER_PORT))
}

/// What every stack must do for the client to work at all.
fn assert_basics(report: &Report<'_>) {
    for behaviour in [
        Behaviour::Connect,
        Behaviour::IdleReceive,
        Behaviour::WaiterWakes,
        Behaviour::PeerReset,
        Behaviour::CloseReopen,
    ] {
        assert_eq!(
            report.verdict(behaviour),
            Verdict::Pass,
            "{behaviour:?}:\n{report}"
        );
    }
    assert!(
        matches!(
            report.verdict(Behaviour::PeerClose),
            Verdict::Pass | Verdict::Warn
        ),
        "{report}"
    );
}

#[test]
fn conformance_of_three_stacks() {
    let Some(ns) = support::enter("conformance_of_three_stacks") else {
        return;
    };
    let _mosquitto = ns.mosquitto();
    let mut scratch = vec![0u8; 4096];

    let config = netns_config("umqtt-transports StdTcpStack (connect timeout 1.5 s), StdWait");
    let std = conformance::run(
        &mut StdTcpStack::new().with_connect_timeout(Duration::from_millis(1500)),
        &StdClock::new(),
        &mut StdWait::new(),
        &config,
        &mut scratch,
    );
    println!("{std}\n");

    let config = netns_config("std-embedded-nal 0.4, Spin");
    let sen = conformance::run(
        &mut std_embedded_nal::Stack,
        &StdClock::new(),
        &mut Spin,
        &config,
        &mut scratch,
    );
    println!("{sen}\n");

    let mut tap = open(&tap_config()).expect("open the TAP device");
    let config =
        netns_config("smoltcp-nal 0.7 on smoltcp 0.12 (TAP, 4 KiB socket buffers), TapWait");
    let smol = conformance::run(
        &mut tap.stack,
        &tap.clock,
        &mut tap.waiter,
        &config,
        &mut scratch,
    );
    println!("{smol}\n");

    // Our std stack does everything the client relies on; blocking connect
    // for its own timeout is its documented design.
    assert_basics(&std);
    assert_eq!(std.failures(), 0, "{std}");
    assert_eq!(std.zero_read(), ZeroRead::Unseen);
    assert_eq!(std.verdict(Behaviour::WaiterSleeps), Verdict::Pass, "{std}");

    // std-embedded-nal: Ok(0) is end of file; connect has no timeout; only
    // a spinning waiter is possible without unsafe code.
    assert_basics(&sen);
    assert_eq!(sen.zero_read(), ZeroRead::EndOfFile, "{sen}");
    assert_eq!(sen.verdict(Behaviour::PeerClose), Verdict::Warn, "{sen}");
    assert_eq!(sen.verdict(Behaviour::WaiterSleeps), Verdict::Warn, "{sen}");
    assert_eq!(
        sen.verdict(Behaviour::ConnectTimeout),
        Verdict::Fail,
        "{sen}"
    );

    // smoltcp-nal: Ok(0) is "no data", end of file and reset are errors, a
    // refused connect is retried until the caller's deadline, and a full
    // send buffer is Ok(0).
    assert_basics(&smol);
    assert_eq!(smol.zero_read(), ZeroRead::NoData, "{smol}");
    assert_eq!(smol.verdict(Behaviour::PeerClose), Verdict::Pass, "{smol}");
    assert_eq!(
        smol.verdict(Behaviour::WaiterSleeps),
        Verdict::Pass,
        "{smol}"
    );
    assert_eq!(smol.verdict(Behaviour::ClosedPort), Verdict::Warn, "{smol}");
    assert_eq!(
        smol.verdict(Behaviour::ConnectTimeout),
        Verdict::Pass,
        "{smol}"
    );
    assert_eq!(
        smol.verdict(Behaviour::PartialSend),
        Verdict::Pass,
        "smoltcp-nal returns Ok(0) when its send buffer is full, which the client retries:\n{smol}"
    );
}

/// The same check on loopback, without a namespace: runs wherever mosquitto
/// is installed (no root needed), for the two std stacks.
#[test]
fn conformance_of_std_stacks_on_loopback() {
    let test = "conformance_of_std_stacks_on_loopback";
    let dir = support::scratch_dir(test);
    let Some(mosquitto) = support::Mosquitto::on_loopback(test, &dir) else {
        return;
    };
    let closed = {
        let listener = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind");
        listener.local_addr().expect("address")
    };
    let mut scratch = vec![0u8; 4096];
    let config = Config::new("StdTcpStack on loopback", mosquitto.addr, closed);
    let std = conformance::run(
        &mut StdTcpStack::new(),
        &StdClock::new(),
        &mut StdWait::new(),
        &config,
        &mut scratch,
    );
    println!("{std}\n");
    let config = Config::new("std-embedded-nal on loopback", mosquitto.addr, closed);
    let sen = conformance::run(
        &mut std_embedded_nal::Stack,
        &StdClock::new(),
        &mut Spin,
        &config,
        &mut scratch,
    );
    println!("{sen}");
    drop(mosquitto);
    let _ = std::fs::remove_dir_all(&dir);

    assert_basics(&std);
    assert_eq!(std.failures(), 0, "{std}");
    assert_eq!(std.verdict(Behaviour::ClosedPort), Verdict::Pass, "{std}");
    assert_eq!(std.verdict(Behaviour::ConnectTimeout), Verdict::Skipped);
    assert_basics(&sen);
    assert_eq!(sen.zero_read(), ZeroRead::EndOfFile, "{sen}");
}
