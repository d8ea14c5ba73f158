//! The async clients over TLS (`tls::TlsConnect` over tokio sockets)
//! against a TLS mosquitto started by the test (certificates made with
//! `openssl`): a whole session (connect, subscribe, QoS 1 out and back, a
//! 10 kB message, keepalive over TLS, disconnect), mutual TLS, a refusal
//! with the same error as the blocking stack, and the async robust client
//! riding out a broker restart.
//!
//! Skipped (with a printed `SKIPPED` line) when mosquitto or openssl is
//! missing, unless `UMQTT_REQUIRE_MOSQUITTO=1`.

use std::cell::RefCell;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use umqtt_robust::Event;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Error, Message, Options, QoS};
use umqtt_tests::pki::{Pki, Spec, openssl_available};
use umqtt_tests::tokio_net::{TokioNet, run_async};
use umqtt_tests::{HANG_LIMIT, Mosquitto, client_id, run_in_thread_within};
use umqtt_transports::std_tcp::StdTimer;
use umqtt_transports::tls::{
    CertError, SystemTime, TlsBuffers, TlsConnect, TlsOptions, TlsStackError,
};

/// Full-size TLS records: mosquitto does not limit its fragments.
const RECORD: usize = 16_640;

type Inbox = Rc<RefCell<Vec<(Vec<u8>, Vec<u8>, QoS)>>>;

#[test]
fn async_tls_session_with_mosquitto() {
    let test = "async_tls_session_with_mosquitto";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost(test, "") else {
        return;
    };
    let addr = broker.addr;
    let ca = pki.der("ca");
    run_in_thread_within(HANG_LIMIT, move || {
        run_async(HANG_LIMIT, async {
            let (mut read, mut write) = (vec![0u8; RECORD], vec![0u8; 4096]);
            let buffers = TlsBuffers::new(&mut read, &mut write);
            let net = TokioNet;
            let tls = TlsConnect::new(&net, OsRng, &buffers, TlsOptions::new("localhost").ca(&ca))
                .with_time(SystemTime);
            let (mut tx, mut rx) = (vec![0u8; 16 * 1024], vec![0u8; 16 * 1024]);
            let id = client_id(test);
            let inbox: Inbox = Rc::default();
            let mut callback = |m: Message<'_>| {
                inbox
                    .borrow_mut()
                    .push((m.topic.to_vec(), m.payload.to_vec(), m.qos))
            };
            let mut client = Client::new(
                &tls,
                StdTimer::new(),
                &mut tx,
                &mut rx,
                Options::new(&id).keepalive(1),
            );
            client.set_callback(&mut callback);
            assert!(!client.connect(addr).await.expect("connect over TLS"));
            assert!(buffers.is_lent());
            let topic = format!("tls/{id}");
            let granted = client
                .subscribe(topic.as_bytes(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            assert_eq!(granted, QoS::AtLeastOnce);
            client
                .publish(topic.as_bytes(), b"qos1", false, QoS::AtLeastOnce)
                .await
                .expect("publish QoS 1 (PUBACK over TLS)");
            let big: Vec<u8> = (0..10_000u32).map(|i| (i % 251) as u8).collect();
            client
                .publish(topic.as_bytes(), &big, false, QoS::AtLeastOnce)
                .await
                .expect("publish 10 kB");
            let start = Instant::now();
            while inbox.borrow().len() < 2 && start.elapsed() < Duration::from_secs(10) {
                client.wait_msg_for(100).await.expect("wait_msg_for");
            }
            {
                let got = inbox.borrow();
                let back: Vec<(&[u8], QoS)> =
                    got.iter().map(|(_, p, q)| (p.as_slice(), *q)).collect();
                assert_eq!(
                    back,
                    [
                        (&b"qos1"[..], QoS::AtLeastOnce),
                        (&big[..], QoS::AtLeastOnce)
                    ],
                    "the messages came back at QoS 1 (the client sent their PUBACKs)"
                );
            }
            // Keepalive: idle for 3.5 keepalive periods in short waits, each
            // of which may cut a read; the client pings by itself.
            let idle = Instant::now();
            while idle.elapsed() < Duration::from_millis(3500) {
                client.wait_msg_for(300).await.expect("idle over TLS");
            }
            assert!(client.is_connected());
            client
                .publish(topic.as_bytes(), b"after idle", false, QoS::AtLeastOnce)
                .await
                .expect("publish after idle");
            client.disconnect().await.expect("disconnect");
            drop(client);
            assert!(
                !buffers.is_lent(),
                "the dropped connection returned the buffers"
            );
        });
    });
    let log = broker.log();
    assert!(
        !log.contains("exceeded timeout"),
        "keepalive failed:\n{log}"
    );
}

#[test]
fn async_tls_refuses_a_certificate_for_another_name_like_the_blocking_stack() {
    let test = "async_tls_refuses_a_certificate_for_another_name";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost(test, "") else {
        return;
    };
    let addr = broker.addr;
    let ca = pki.der("ca");
    run_in_thread_within(HANG_LIMIT, move || {
        run_async(HANG_LIMIT, async {
            let (mut read, mut write) = (vec![0u8; RECORD], vec![0u8; 2048]);
            let buffers = TlsBuffers::new(&mut read, &mut write);
            let net = TokioNet;
            let tls = TlsConnect::new(
                &net,
                OsRng,
                &buffers,
                TlsOptions::new("broker.example.com").ca(&ca),
            );
            let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
            let id = client_id(test);
            let mut client =
                Client::new(&tls, StdTimer::new(), &mut tx, &mut rx, Options::new(&id));
            match client.connect(addr).await {
                Err(Error::Network(TlsStackError::Certificate(CertError::NameMismatch))) => {}
                other => panic!("expected NameMismatch, got {other:?}"),
            }
            assert!(!buffers.is_lent());
        });
    });
}

#[test]
fn async_mutual_tls_connects_with_a_client_certificate() {
    let test = "async_mutual_tls_connects_with_a_client_certificate";
    if !openssl_available(test) {
        return;
    }
    let pki = Pki::new(test);
    pki.ca("ca", Spec::ca("ca"))
        .issue("server", "ca", Spec::leaf("localhost"))
        .ca("clients", Spec::ca("clients"))
        .issue("client", "clients", Spec::leaf("device-1"));
    let extra = format!(
        "cafile {}\nrequire_certificate true\n",
        pki.path("clients.crt")
    );
    let Some(broker) = Mosquitto::start(
        test,
        &format!("{}{extra}", pki.listener("server.crt", "server")),
    ) else {
        return;
    };
    let addr = broker.addr;
    let (ca, cert, key) = (pki.der("ca"), pki.der("client"), pki.key_der("client"));
    run_in_thread_within(HANG_LIMIT, move || {
        run_async(HANG_LIMIT, async {
            let (mut read, mut write) = (vec![0u8; RECORD], vec![0u8; 4096]);
            let buffers = TlsBuffers::new(&mut read, &mut write);
            let net = TokioNet;
            let options = TlsOptions::new("localhost")
                .ca(&ca)
                .client_certificate(&cert, &key);
            let tls = TlsConnect::new(&net, OsRng, &buffers, options);
            let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
            let id = client_id(test);
            let mut client =
                Client::new(&tls, StdTimer::new(), &mut tx, &mut rx, Options::new(&id));
            client
                .connect(addr)
                .await
                .expect("connect with a client certificate");
            client
                .publish(b"tls/mtls", b"hi", false, QoS::AtLeastOnce)
                .await
                .expect("publish QoS 1");
            client.disconnect().await.expect("disconnect");
        });
    });
}

#[test]
fn async_robust_client_over_tls_rides_out_a_broker_restart() {
    let test = "async_robust_client_over_tls_rides_out_a_broker_restart";
    let Some((mut broker, pki)) = Mosquitto::tls_for_localhost(test, "") else {
        return;
    };
    let addr = broker.addr;
    let ca = pki.der("ca");
    let (restart_tx, restart_rx) = std::sync::mpsc::channel::<()>();
    let (done_tx, done_rx) = std::sync::mpsc::channel::<()>();
    let client_thread = std::thread::spawn(move || {
        run_async(HANG_LIMIT * 2, async move {
            let (mut read, mut write) = (vec![0u8; RECORD], vec![0u8; 4096]);
            let buffers = TlsBuffers::new(&mut read, &mut write);
            let net = TokioNet;
            let tls = TlsConnect::new(&net, OsRng, &buffers, TlsOptions::new("localhost").ca(&ca));
            let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
            let id = client_id(test);
            let inbox: Inbox = Rc::default();
            let mut on_message = |m: Message<'_>| {
                inbox
                    .borrow_mut()
                    .push((m.topic.to_vec(), m.payload.to_vec(), m.qos))
            };
            let events = RefCell::new(Vec::new());
            let mut on_event = |e: Event| events.borrow_mut().push(e);
            let options = Options::new(&id)
                .keepalive(5)
                .connect_timeout_ms(3_000)
                .ack_timeout_ms(3_000);
            let mut robust: umqtt_robust::asynch::RobustClient<
                '_,
                TlsConnect<'_, TokioNet, OsRng>,
                StdTimer,
            > = umqtt_robust::asynch::RobustClient::new(
                &tls,
                StdTimer::new(),
                &mut tx,
                &mut rx,
                options,
            );
            robust.set_robust_options(umqtt_robust::RobustOptions {
                backoff: umqtt_robust::Backoff {
                    min_ms: 100,
                    max_ms: 500,
                    max_attempts: None,
                },
                call_timeout_ms: 15_000,
            });
            robust.set_callback(&mut on_message);
            robust.set_event_callback(&mut on_event);
            robust.connect(addr).await.expect("connect");
            let topic = format!("tls/{id}");
            robust
                .subscribe(topic.as_bytes(), QoS::AtLeastOnce)
                .await
                .expect("subscribe");
            robust
                .publish(topic.as_bytes(), b"before", false, QoS::AtLeastOnce)
                .await
                .expect("publish before");
            let has = |p: &[u8]| inbox.borrow().iter().any(|(_, q, _)| q == p);
            let start = Instant::now();
            while !has(b"before") {
                assert!(start.elapsed() < Duration::from_secs(10), "no 'before'");
                robust.wait_msg_for(200).await.expect("wait");
            }
            restart_tx.send(()).expect("ask for a restart");
            let start = Instant::now();
            while !events
                .borrow()
                .iter()
                .any(|e| matches!(e, Event::Resubscribed { .. }))
            {
                assert!(
                    start.elapsed() < Duration::from_secs(30),
                    "no reconnect: {:?}",
                    events.borrow()
                );
                robust
                    .wait_msg_for(200)
                    .await
                    .expect("wait across the restart");
            }
            robust
                .publish(topic.as_bytes(), b"after", false, QoS::AtLeastOnce)
                .await
                .expect("publish QoS 1 after the restart");
            let start = Instant::now();
            while !has(b"after") {
                assert!(start.elapsed() < Duration::from_secs(10), "no 'after'");
                robust.wait_msg_for(200).await.expect("wait");
            }
            {
                let events = events.borrow();
                assert!(events.contains(&Event::Lost), "{events:?}");
                assert!(
                    events
                        .iter()
                        .any(|e| matches!(e, Event::Reconnected { .. })),
                    "{events:?}"
                );
            }
            robust.disconnect().await.expect("disconnect");
            drop(robust);
            assert!(!buffers.is_lent());
            let _ = done_tx.send(());
        });
    });
    restart_rx
        .recv_timeout(HANG_LIMIT)
        .expect("the client asks for the restart");
    broker.kill();
    std::thread::sleep(Duration::from_millis(1000));
    broker.restart();
    let finished = done_rx.recv_timeout(HANG_LIMIT * 2);
    let joined = client_thread.join();
    if let Err(panic) = joined {
        std::panic::resume_unwind(panic);
    }
    finished.expect("the client finished");
    let log = broker.log();
    // A connection to the first broker and at least one to the restarted
    // one (the log is appended across the restart; the probes of the
    // listener are not clients; under load a reconnect may be retried).
    assert!(
        log.matches("New client connected").count() >= 2,
        "connected to the first broker and to the restarted one:\n{log}"
    );
}
