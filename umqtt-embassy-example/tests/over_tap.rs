//! umqtt's async clients over embassy-net on a TAP device, end to end: each
//! test in a network namespace of its own with mosquitto inside (see
//! `umqtt_tests::netns`). The embassy executor (the stack's task and the
//! client's) runs on a thread of the test process, inside the namespace too;
//! the client task reports to the test thread through a channel, and the
//! test thread acts on the broker (publishes from the kernel's TCP, restarts
//! mosquitto) when the task asks.
//!
//! Only addresses inside the namespace are used (192.168.69.0/24 on the TAP,
//! and loopback); nothing can leave it. Every wait is bounded: the client's
//! own deadlines, the task's loops, and the test thread's `recv_timeout`.

use std::cell::RefCell;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use embassy_net::Stack;
use embassy_net::tcp::client::TcpClient;
use umqtt_embassy_example::{
    TapClient, TapClientError, TapRobustClient, TapRobustError, TapTcpState,
};
use umqtt_robust::asynch::RobustClient;
use umqtt_robust::{Backoff, Event, RobustOptions};
use umqtt_simple::asynch::Client;
use umqtt_simple::{Message, Options, QoS};
use umqtt_tests::netns::{self as support, STACK_IP, TAP, broker};
use umqtt_transports::embassy::EmbassyTimer;

mod tap_task;
use tap_task::{Inbox, Note, WAIT, has, run_task};

/// Counts the lines of mosquitto's log that contain `needle`.
fn count(log: &str, needle: &str) -> usize {
    log.lines().filter(|l| l.contains(needle)).count()
}

/// A failed client call, as the task reports it.
fn failed(what: &'static str) -> impl Fn(TapClientError) -> String {
    move |e| format!("{what}: {e}")
}

/// Calls `wait_msg_for` until `done` holds, for at most [`WAIT`].
async fn pump_until(
    client: &mut TapClient<'_>,
    what: &str,
    done: impl Fn() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > WAIT {
            return Err(format!("{what} did not happen within {WAIT:?}"));
        }
        client
            .wait_msg_for(500)
            .await
            .map_err(failed("wait_msg_for"))?;
    }
    Ok(())
}

const SIMPLE_ID: &str = "embassy-simple";
/// The simple client's keepalive, in seconds.
const KEEPALIVE_S: u16 = 2;
/// How long the simple client stays idle: three keepalive periods.
const IDLE: Duration = Duration::from_secs(3 * KEEPALIVE_S as u64);

#[embassy_executor::task]
async fn simple_task(stack: Stack<'static>, notes: mpsc::Sender<Note>) {
    let result = simple_scenario(stack, &notes).await;
    let _ = notes.send(Note::Done(result));
}

async fn simple_scenario(stack: Stack<'static>, notes: &mpsc::Sender<Note>) -> Result<(), String> {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| {
        inbox
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 4096]);
    let options = Options::new(SIMPLE_ID).keepalive(KEEPALIVE_S);
    let mut client = Client::new(&tcp, EmbassyTimer, &mut tx, &mut rx, options);
    client.set_callback(&mut on_message);

    // 1. Connect and subscribe.
    let session_present = client.connect(broker()).await.map_err(failed("connect"))?;
    if session_present {
        return Err("a clean session was present".into());
    }
    let granted = client
        .subscribe(b"umqtt/embassy/#", QoS::AtLeastOnce)
        .await
        .map_err(failed("subscribe"))?;
    if granted != QoS::AtLeastOnce {
        return Err(format!("granted {granted:?}, not AtLeastOnce"));
    }

    // 2. QoS 0 and QoS 1 out, and back (at the QoS they were sent with).
    client
        .publish(b"umqtt/embassy/a", b"zero", false, QoS::AtMostOnce)
        .await
        .map_err(failed("publish QoS 0"))?;
    client
        .publish(b"umqtt/embassy/a", b"one", false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish QoS 1"))?;
    pump_until(&mut client, "the return of both messages", || {
        has(&inbox, b"umqtt/embassy/a", b"zero") && has(&inbox, b"umqtt/embassy/a", b"one")
    })
    .await?;
    let qos_of = |payload: &[u8]| {
        inbox
            .borrow()
            .iter()
            .find(|(_, p, _)| p == payload)
            .map(|(_, _, q)| *q)
    };
    if qos_of(b"zero") != Some(QoS::AtMostOnce) || qos_of(b"one") != Some(QoS::AtLeastOnce) {
        return Err(format!("QoS of the returns: {:?}", inbox.borrow()));
    }

    // 3. Idle for three keepalive periods in wait_msg_for: the client pings
    //    by itself; nothing but PINGRESPs arrives, and it stays connected.
    let before = inbox.borrow().len();
    let idle_start = Instant::now();
    let mut handled = 0;
    while idle_start.elapsed() < IDLE {
        let left = IDLE.saturating_sub(idle_start.elapsed());
        let left_ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
        if client
            .wait_msg_for(left_ms)
            .await
            .map_err(failed("idle wait_msg_for"))?
        {
            handled += 1;
        }
    }
    if handled < 2 || inbox.borrow().len() != before || !client.is_connected() {
        return Err(format!(
            "after {IDLE:?} idle at keepalive {KEEPALIVE_S} s: {handled} packets handled \
             (PINGRESPs expected, at least 2), {} new messages, connected: {}",
            inbox.borrow().len() - before,
            client.is_connected()
        ));
    }

    // 4. wait_msg (no timeout of its own) wakes for a message published by
    //    another client while it waits.
    let _ = notes.send(Note::PublishFromKernel(
        "umqtt/embassy/k",
        "from the kernel",
    ));
    embassy_time::with_timeout(embassy_time::Duration::from_secs(10), async {
        while !has(&inbox, b"umqtt/embassy/k", b"from the kernel") {
            client.wait_msg().await.map_err(failed("wait_msg"))?;
        }
        Ok::<(), String>(())
    })
    .await
    .map_err(|_| "wait_msg did not return the kernel's message within 10 s".to_string())??;

    // 5. The session still works after the idle period; then goodbye.
    client
        .publish(b"umqtt/embassy/a", b"after idle", false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish after idle"))?;
    pump_until(&mut client, "the return of 'after idle'", || {
        has(&inbox, b"umqtt/embassy/a", b"after idle")
    })
    .await?;
    client.disconnect().await.map_err(failed("disconnect"))?;
    Ok(())
}

/// The simple async client over embassy-net: connect, subscribe, QoS 0 and
/// 1 out and back, keepalive while idle, wait_msg woken by a message,
/// disconnect.
#[test]
fn simple_client_over_embassy_net() {
    let Some(ns) = support::enter("simple_client_over_embassy_net") else {
        return;
    };
    let mut mosquitto = ns.mosquitto();
    run_task(&mut mosquitto, |spawner, stack, notes| {
        spawner.spawn(simple_task(stack, notes))
    });
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {SIMPLE_ID}"));
    let pings = count(&log, &format!("Received PINGREQ from {SIMPLE_ID}"));
    let pongs = count(&log, &format!("Sending PINGRESP to {SIMPLE_ID}"));
    println!("{pings} PINGREQ and {pongs} PINGRESP at keepalive {KEEPALIVE_S} s");
    assert!(pings >= 2 && pongs >= 2, "log:\n{log}");
    assert!(!log.contains("exceeded timeout"), "log:\n{log}");
    assert_eq!(
        count(&log, &format!("Received PUBLISH from {SIMPLE_ID}")),
        3,
        "log:\n{log}"
    );
    assert!(
        log.contains(&format!("Received DISCONNECT from {SIMPLE_ID}")),
        "the DISCONNECT reached the broker before the socket was dropped; log:\n{log}"
    );
}

/// A failed robust client call, as the task reports it.
fn robust_failed(what: &'static str) -> impl Fn(TapRobustError) -> String {
    move |e| format!("{what}: {e}")
}

/// [`pump_until`] for the robust client, for at most `within`.
async fn pump_robust_until(
    client: &mut TapRobustClient<'_>,
    what: &str,
    within: Duration,
    done: impl Fn() -> bool,
) -> Result<(), String> {
    let start = Instant::now();
    while !done() {
        if start.elapsed() > within {
            return Err(format!("{what} did not happen within {within:?}"));
        }
        client
            .wait_msg_for(200)
            .await
            .map_err(robust_failed("wait_msg_for"))?;
    }
    Ok(())
}

const ROBUST_ID: &str = "embassy-robust";

#[embassy_executor::task]
async fn robust_task(stack: Stack<'static>, notes: mpsc::Sender<Note>) {
    let result = robust_scenario(stack, &notes).await;
    let _ = notes.send(Note::Done(result));
}

async fn robust_scenario(stack: Stack<'static>, notes: &mpsc::Sender<Note>) -> Result<(), String> {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
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
    let options = Options::new(ROBUST_ID)
        .keepalive(5)
        .connect_timeout_ms(3_000)
        .ack_timeout_ms(3_000);
    let mut robust: TapRobustClient<'_> =
        RobustClient::new(&tcp, EmbassyTimer, &mut tx, &mut rx, options);
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

    // 1. Connected, subscribed, and a QoS 1 message out and back.
    robust
        .connect(broker())
        .await
        .map_err(robust_failed("connect"))?;
    robust
        .subscribe(b"umqtt/robust/#", QoS::AtLeastOnce)
        .await
        .map_err(robust_failed("subscribe"))?;
    robust
        .publish(b"umqtt/robust/a", b"before", false, QoS::AtLeastOnce)
        .await
        .map_err(robust_failed("publish before the restart"))?;
    pump_robust_until(&mut robust, "the return of 'before'", WAIT, || {
        has(&inbox, b"umqtt/robust/a", b"before")
    })
    .await?;

    // 2. The broker goes away for a second while the client waits in
    //    wait_msg_for: it notices, retries with backoff, reconnects once the
    //    broker is back (a new one: the session is gone) and resubscribes.
    let _ = notes.send(Note::RestartBroker);
    pump_robust_until(&mut robust, "reconnect and resubscribe", WAIT * 2, || {
        events
            .borrow()
            .iter()
            .any(|e| matches!(e, Event::Resubscribed { .. }))
    })
    .await?;
    {
        let events = events.borrow();
        let lost = events.contains(&Event::Lost);
        let failed = events
            .iter()
            .any(|e| matches!(e, Event::ReconnectFailed { .. }));
        let fresh = events.iter().any(|e| {
            matches!(
                e,
                Event::Reconnected {
                    session_present: false,
                    ..
                }
            )
        });
        let resubscribed = events.contains(&Event::Resubscribed { filters: 1 });
        if !(lost && failed && fresh && resubscribed) {
            return Err(format!(
                "expected Lost, ReconnectFailed (while the broker was down), \
                 Reconnected without a session and Resubscribed {{ filters: 1 }}: {events:?}"
            ));
        }
    }

    // 3. Messages published after the restart arrive: the client's own,
    //    and another client's (so the broker has the subscription again).
    robust
        .publish(b"umqtt/robust/a", b"after", false, QoS::AtLeastOnce)
        .await
        .map_err(robust_failed("publish after the restart"))?;
    let _ = notes.send(Note::PublishFromKernel(
        "umqtt/robust/k",
        "from the kernel, after",
    ));
    pump_robust_until(&mut robust, "the messages after the restart", WAIT, || {
        has(&inbox, b"umqtt/robust/a", b"after")
            && has(&inbox, b"umqtt/robust/k", b"from the kernel, after")
    })
    .await?;
    robust
        .disconnect()
        .await
        .map_err(robust_failed("disconnect"))?;
    Ok(())
}

/// The async robust client over embassy-net rides out a broker restart:
/// reconnects, resubscribes, and receives what is published afterwards.
#[test]
fn robust_client_over_embassy_net_survives_a_broker_restart() {
    let Some(ns) = support::enter("robust_client_over_embassy_net_survives_a_broker_restart")
    else {
        return;
    };
    let mut mosquitto = ns.mosquitto();
    run_task(&mut mosquitto, |spawner, stack, notes| {
        spawner.spawn(robust_task(stack, notes))
    });
    // mosquitto appends to its log: what follows its last start is the
    // restarted broker's. The client connected to it, subscribed again and
    // said goodbye.
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {ROBUST_ID}"));
    let restarted = log.rfind("starting").map_or(log.as_str(), |at| &log[at..]);
    assert_eq!(count(&log, "starting"), 2, "two brokers; log:\n{log}");
    for line in [
        format!("as {ROBUST_ID}"),
        format!("Received SUBSCRIBE from {ROBUST_ID}"),
        format!("Received DISCONNECT from {ROBUST_ID}"),
    ] {
        assert!(
            restarted.contains(&line),
            "the restarted broker's log has no {line:?}; log:\n{log}"
        );
    }
}

/// Runs `command` to its end, killing it if it takes longer than `limit`.
/// Returns its exit status and what it printed.
fn run_within(command: &mut Command, limit: Duration) -> (std::process::ExitStatus, String) {
    let out_path = std::env::temp_dir().join(format!("umqtt-embassy-{}.out", std::process::id()));
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
            "--count",
            "4",
        ]),
        Duration::from_secs(60),
    );
    println!("{output}");
    assert!(status.success(), "umqtt-embassy-demo failed ({status})");
    assert!(output.contains("received 4 messages"), "{output}");
}
