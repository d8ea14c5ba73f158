//! umqtt's async clients over TLS (`umqtt_transports::tls::TlsConnect`)
//! over embassy-net on a TAP device, against a TLS mosquitto: each test in
//! a network namespace of its own with mosquitto inside (see
//! `umqtt_tests::netns`); certificates made by `openssl`. The embassy
//! executor runs on a thread of the test process, inside the namespace too;
//! the client task reports to the test thread through a channel, and the
//! test thread restarts mosquitto when the task asks.
//!
//! Only addresses inside the namespace are used (192.168.69.0/24 on the
//! TAP); nothing can leave it. Every wait is bounded: the client's own
//! deadlines, the task's loops, and the test thread's `recv_timeout`.

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use embassy_net::Stack;
use embassy_net::tcp::client::TcpClient;
use rand_core::OsRng;
use umqtt_embassy_example::{TapTcpClient, TapTcpState};
use umqtt_robust::asynch::RobustClient;
use umqtt_robust::{Backoff, Event, RobustOptions};
use umqtt_simple::asynch::Client;
use umqtt_simple::{Message, Options, QoS};
use umqtt_tests::netns::{self as support, Mosquitto, broker};
use umqtt_tests::pki::{Pki, Spec};
use umqtt_transports::embassy::EmbassyTimer;
use umqtt_transports::tls::{MaxFragmentLength, SystemTime, TlsBuffers, TlsConnect, TlsOptions};

mod tap_task;
use tap_task::{Inbox, Note, WAIT, has, run_task};

/// TLS over embassy-net's `TcpConnect`.
type TapTls<'a> = TlsConnect<'a, TapTcpClient<'a>, OsRng, SystemTime>;

/// The server name on the broker's certificate.
const NAME: &str = "broker.local";

/// A TLS mosquitto on the broker's address with a certificate for
/// [`NAME`]; returns it, the CA's DER, and the PKI (whose files a restart
/// reads again: keep it).
fn tls_mosquitto(ns: &support::Netns, test: &str) -> (Mosquitto, Vec<u8>, Pki) {
    let pki = Pki::new(test);
    pki.ca("ca", Spec::ca("ca"))
        .issue("server", "ca", Spec::leaf(NAME));
    let mosquitto = Mosquitto::start_with(&ns.dir, broker(), &pki.listener("server.crt", "server"));
    let ca = pki.der("ca");
    (mosquitto, ca, pki)
}

/// TLS options as a device would have them: records of at most 4 096
/// bytes (mosquitto agrees), so a 4 352-byte read buffer.
fn tls_options(ca: &[u8]) -> TlsOptions<'_> {
    TlsOptions::new(NAME)
        .ca(ca)
        .max_fragment_length(MaxFragmentLength::Bits12)
}

const SIMPLE_ID: &str = "embassy-tls-simple";

#[embassy_executor::task]
async fn simple_task(stack: Stack<'static>, ca: Vec<u8>, notes: mpsc::Sender<Note>) {
    let result = simple_scenario(stack, &ca).await;
    let _ = notes.send(Note::Done(result));
}

async fn simple_scenario(stack: Stack<'static>, ca: &[u8]) -> Result<(), String> {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
    let (mut read, mut write) = (vec![0u8; 4352], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let tls: TapTls<'_> =
        TlsConnect::new(&tcp, OsRng, &buffers, tls_options(ca)).with_time(SystemTime);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| {
        inbox
            .borrow_mut()
            .push((m.topic.to_vec(), m.payload.to_vec(), m.qos));
    };
    let (mut tx, mut rx) = (vec![0u8; 8192], vec![0u8; 8192]);
    let options = Options::new(SIMPLE_ID).keepalive(2);
    let mut client = Client::new(&tls, EmbassyTimer, &mut tx, &mut rx, options);
    client.set_callback(&mut on_message);
    let failed = |what: &'static str| move |e| format!("{what}: {e}");

    client
        .connect(broker())
        .await
        .map_err(failed("connect over TLS"))?;
    client
        .subscribe(b"umqtt/tls/#", QoS::AtLeastOnce)
        .await
        .map_err(failed("subscribe"))?;
    // QoS 1 out (PUBACK back) and back in (the client's PUBACK); one of
    // them larger than a 4 096-byte record.
    let big: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    client
        .publish(b"umqtt/tls/a", b"one", false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish QoS 1"))?;
    client
        .publish(b"umqtt/tls/b", &big, false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish 6 kB"))?;
    let start = Instant::now();
    while !(has(&inbox, b"umqtt/tls/a", b"one") && has(&inbox, b"umqtt/tls/b", &big)) {
        if start.elapsed() > WAIT {
            return Err(format!(
                "the messages did not come back: {} so far",
                inbox.borrow().len()
            ));
        }
        client
            .wait_msg_for(500)
            .await
            .map_err(failed("wait_msg_for"))?;
    }
    if inbox
        .borrow()
        .iter()
        .any(|(_, _, q)| *q != QoS::AtLeastOnce)
    {
        return Err("a message came back below QoS 1".into());
    }
    // Idle across keepalive periods, in short waits: PINGREQ/PINGRESP over
    // TLS over embassy-net.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(5000) {
        client.wait_msg_for(300).await.map_err(failed("idle"))?;
    }
    if !client.is_connected() {
        return Err("not connected after idling".into());
    }
    client.disconnect().await.map_err(failed("disconnect"))?;
    drop(client);
    if buffers.is_lent() {
        return Err("the TLS buffers were not returned".into());
    }
    Ok(())
}

/// The simple async client over TLS over embassy-net: connect, subscribe,
/// QoS 1 both ways (one message larger than a record), keepalive while
/// idle, disconnect.
#[test]
fn tls_simple_client_over_embassy_net() {
    let test = "tls_simple_client_over_embassy_net";
    let Some(ns) = support::enter(test) else {
        return;
    };
    let (mut mosquitto, ca, _pki) = tls_mosquitto(&ns, test);
    run_task(&mut mosquitto, move |spawner, stack, notes| {
        spawner.spawn(simple_task(stack, ca, notes))
    });
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {SIMPLE_ID}"));
    for line in [
        format!("Received PUBACK from {SIMPLE_ID}"),
        format!("Received PINGREQ from {SIMPLE_ID}"),
        format!("Received DISCONNECT from {SIMPLE_ID}"),
    ] {
        assert!(
            log.contains(&line),
            "no {line:?} in the broker's log:\n{log}"
        );
    }
    assert_eq!(
        log.matches(&format!("Received PUBLISH from {SIMPLE_ID}"))
            .count(),
        2,
        "log:\n{log}"
    );
}

const ROBUST_ID: &str = "embassy-tls-robust";

#[embassy_executor::task]
async fn robust_task(stack: Stack<'static>, ca: Vec<u8>, notes: mpsc::Sender<Note>) {
    let result = robust_scenario(stack, &ca, &notes).await;
    let _ = notes.send(Note::Done(result));
}

async fn robust_scenario(
    stack: Stack<'static>,
    ca: &[u8],
    notes: &mpsc::Sender<Note>,
) -> Result<(), String> {
    let state = TapTcpState::new();
    let tcp = TcpClient::new(stack, &state);
    let (mut read, mut write) = (vec![0u8; 4352], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let tls: TapTls<'_> =
        TlsConnect::new(&tcp, OsRng, &buffers, tls_options(ca)).with_time(SystemTime);
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
    let mut robust: RobustClient<'_, TapTls<'_>, EmbassyTimer> =
        RobustClient::new(&tls, EmbassyTimer, &mut tx, &mut rx, options);
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
    let failed = |what: &'static str| move |e| format!("{what}: {e}");

    robust.connect(broker()).await.map_err(failed("connect"))?;
    robust
        .subscribe(b"umqtt/robust/#", QoS::AtLeastOnce)
        .await
        .map_err(failed("subscribe"))?;
    robust
        .publish(b"umqtt/robust/a", b"before", false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish before the restart"))?;
    let start = Instant::now();
    while !has(&inbox, b"umqtt/robust/a", b"before") {
        if start.elapsed() > WAIT {
            return Err("'before' did not come back".into());
        }
        robust
            .wait_msg_for(200)
            .await
            .map_err(failed("wait_msg_for"))?;
    }

    // The broker goes away for a second while the client waits: it
    // notices, retries with backoff (new TLS handshakes through the same
    // buffers), reconnects and resubscribes.
    let _ = notes.send(Note::RestartBroker);
    let start = Instant::now();
    while !events
        .borrow()
        .iter()
        .any(|e| matches!(e, Event::Resubscribed { .. }))
    {
        if start.elapsed() > WAIT * 3 {
            return Err(format!(
                "no reconnect and resubscribe: {:?}",
                events.borrow()
            ));
        }
        robust
            .wait_msg_for(200)
            .await
            .map_err(failed("wait_msg_for across the restart"))?;
    }
    {
        let events = events.borrow();
        let lost = events.contains(&Event::Lost);
        let failed_once = events
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
        if !(lost && failed_once && fresh) {
            return Err(format!(
                "expected Lost, ReconnectFailed (while the broker was down), Reconnected: {events:?}"
            ));
        }
    }
    robust
        .publish(b"umqtt/robust/a", b"after", false, QoS::AtLeastOnce)
        .await
        .map_err(failed("publish after the restart"))?;
    let start = Instant::now();
    while !has(&inbox, b"umqtt/robust/a", b"after") {
        if start.elapsed() > WAIT {
            return Err("'after' did not come back".into());
        }
        robust
            .wait_msg_for(200)
            .await
            .map_err(failed("wait_msg_for"))?;
    }
    robust.disconnect().await.map_err(failed("disconnect"))?;
    drop(robust);
    if buffers.is_lent() {
        return Err("the TLS buffers were not returned".into());
    }
    Ok(())
}

/// The async robust client over TLS over embassy-net rides out a broker
/// restart: reconnects (a new handshake through the same lent buffers),
/// resubscribes, and QoS 1 works both ways afterwards.
#[test]
fn tls_robust_client_over_embassy_net_survives_a_broker_restart() {
    let test = "tls_robust_client_over_embassy_net_survives_a_broker_restart";
    let Some(ns) = support::enter(test) else {
        return;
    };
    let (mut mosquitto, ca, _pki) = tls_mosquitto(&ns, test);
    run_task(&mut mosquitto, move |spawner, stack, notes| {
        spawner.spawn(robust_task(stack, ca, notes))
    });
    let log = mosquitto.log_once(&format!("Received DISCONNECT from {ROBUST_ID}"));
    let restarted = log.rfind("starting").map_or(log.as_str(), |at| &log[at..]);
    assert_eq!(
        log.matches("starting").count(),
        2,
        "two brokers; log:\n{log}"
    );
    for line in [
        format!("as {ROBUST_ID}"),
        format!("Received SUBSCRIBE from {ROBUST_ID}"),
        format!("Received PUBACK from {ROBUST_ID}"),
        format!("Received DISCONNECT from {ROBUST_ID}"),
    ] {
        assert!(
            restarted.contains(&line),
            "the restarted broker's log has no {line:?}; log:\n{log}"
        );
    }
}
