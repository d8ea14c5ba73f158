//! The async reconnecting client (umqtt-robust's `asynch`, feature `async`)
//! against mosquitto restarted under it and a broker that is not there:
//! resubscription, QoS 1 across an outage, deadlines, and `check_msg`
//! never waiting. Executor: tokio's current-thread runtime.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use umqtt_robust::{Event, RobustError};
use umqtt_simple::{Message, Options, QoS};
use umqtt_tests::tokio_net::{TokioNet, async_robust, run_async};
use umqtt_tests::{ClientParts, HANG_LIMIT, Mosquitto, WAIT, client_id, free_port};

#[test]
fn async_robust_client_resubscribes_and_keeps_receiving_after_a_broker_restart() {
    let Some(mut broker) = Mosquitto::start("async_robust_restart", "") else {
        return;
    };
    let addr = broker.addr;
    let id = client_id("async-robust-sub");
    let events = RefCell::new(Vec::new());
    let received = RefCell::new(Vec::new());
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let mut on_event = |e: Event| events.borrow_mut().push(e);
        let mut on_message = |m: Message<'_>| received.borrow_mut().push(m.payload.to_vec());
        let mut sub = async_robust(
            &net,
            (&mut tx, &mut rx),
            Options::new(&id),
            (50, 500),
            10_000,
        );
        sub.set_event_callback(&mut on_event);
        sub.set_callback(&mut on_message);
        assert!(!sub.connect(addr).await.unwrap());
        sub.subscribe(b"ar/restart", QoS::AtLeastOnce)
            .await
            .unwrap();

        broker.restart(); // SIGKILL, then a new mosquitto that knows nothing
        let start = Instant::now();
        while !events
            .borrow()
            .contains(&Event::Resubscribed { filters: 1 })
        {
            assert!(
                start.elapsed() < WAIT,
                "no resubscription: {:?}",
                events.borrow()
            );
            sub.wait_msg_for(100).await.unwrap();
        }

        let mut pub_parts = ClientParts::new("async-robust-pub", 256, 256);
        let mut publisher = pub_parts.connected(addr);
        publisher
            .publish(b"ar/restart", b"after restart", false, QoS::AtLeastOnce)
            .unwrap();
        let start = Instant::now();
        while received.borrow().is_empty() {
            assert!(start.elapsed() < WAIT, "deaf after the restart");
            sub.wait_msg_for(100).await.unwrap();
        }
        sub.disconnect().await.unwrap();
    });
    assert_eq!(*received.borrow(), vec![b"after restart".to_vec()]);
    let events = events.into_inner();
    assert_eq!(events.first(), Some(&Event::Lost), "{events:?}");
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
}

#[test]
fn async_robust_qos1_publish_made_during_an_outage_completes_once_the_broker_is_back() {
    let Some(mut broker) = Mosquitto::start("async_robust_outage", "") else {
        return;
    };
    let addr = broker.addr;
    let mut observer_parts = ClientParts::new("async-outage-observer", 256, 256);
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let id = client_id("async-outage-pub");
        let mut client = async_robust(
            &net,
            (&mut tx, &mut rx),
            Options::new(&id),
            (50, 400),
            15_000,
        );
        client.connect(addr).await.unwrap();
        broker.kill();
        // Back in a second, while the publish below is reconnecting.
        let restarter = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_secs(1));
            broker.restart();
            broker
        });
        let start = Instant::now();
        client
            .publish(b"ao/t", b"through the outage", false, QoS::AtLeastOnce)
            .await
            .expect("PUBACK after the broker came back");
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(900),
            "the broker was down: {took:?}"
        );
        assert!(client.is_connected());
        let broker = restarter.join().unwrap();
        // The broker works for others again, and for this client.
        let (mut observer, inbox) = observer_parts.observer(broker.addr, b"ao/#", QoS::AtLeastOnce);
        client
            .publish(b"ao/t", b"after", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        assert!(umqtt_tests::pump_until(&mut observer, WAIT, || !inbox.is_empty()));
        assert_eq!(inbox.payloads(), vec![b"after".to_vec()]);
        client.disconnect().await.unwrap();
        observer.disconnect().unwrap();
    });
}

#[test]
fn async_robust_calls_without_a_broker_end_by_their_deadline_and_check_msg_never_waits() {
    // A free loopback port with nobody listening: every attempt is refused.
    let addr = std::net::SocketAddr::from(([127, 0, 0, 1], free_port()));
    let events = RefCell::new(Vec::new());
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let mut on_event = |e: Event| events.borrow_mut().push(e);
        let mut client = async_robust(
            &net,
            (&mut tx, &mut rx),
            Options::new("async-nobody"),
            (100, 400),
            1_000,
        );
        client.set_event_callback(&mut on_event);
        assert!(client.connect(addr).await.is_err(), "nobody listens");

        let start = Instant::now();
        let offline = client.publish(b"t", b"x", false, QoS::AtLeastOnce).await;
        let took = start.elapsed();
        assert!(
            matches!(offline, Err(RobustError::Offline { .. })),
            "{offline:?}"
        );
        assert!(
            took >= Duration::from_millis(900) && took < Duration::from_millis(2_500),
            "{took:?}"
        );
        let failures = events
            .borrow()
            .iter()
            .filter(|e| matches!(e, Event::ReconnectFailed { .. }))
            .count();
        // Waits of 100-200, 200-400, 400 ms: a handful of attempts, not hundreds.
        assert!((1..=6).contains(&failures), "{failures} attempts in 1 s");

        for _ in 0..20 {
            let start = Instant::now();
            assert!(matches!(client.check_msg().await, Ok(false)));
            assert!(
                start.elapsed() < Duration::from_millis(500),
                "check_msg waited"
            );
        }
    });
}

#[test]
fn async_outbox_sends_what_was_queued_before_connect_in_order_through_a_window() {
    use umqtt_robust::outbox::{OutboxOptions, RamOutbox};
    let Some(broker) = Mosquitto::start("async_outbox", "") else {
        return;
    };
    let mut observer_parts = ClientParts::new("async-outbox-observer", 256, 256);
    let (mut observer, inbox) = observer_parts.observer(broker.addr, b"aq/#", QoS::AtLeastOnce);
    let delivered = RefCell::new(Vec::new());
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let mut storage = vec![0u8; 16 * 1024];
        let mut outbox = RamOutbox::new(&mut storage);
        let mut window = [0u16; 8];
        let mut on_event = |e: Event| {
            if let Event::Delivered { seq } = e {
                delivered.borrow_mut().push(seq);
            }
        };
        let id = client_id("async-outbox");
        let mut client = async_robust(
            &net,
            (&mut tx, &mut rx),
            Options::new(&id),
            (50, 400),
            10_000,
        );
        client.set_outbox(&mut outbox, OutboxOptions::default());
        client.set_window(&mut window);
        client.set_event_callback(&mut on_event);
        for i in 0..100u32 {
            let seq = client
                .queue(b"aq/t", i.to_string().as_bytes(), false, QoS::AtLeastOnce)
                .await
                .expect("queued before connect");
            assert_eq!(seq, i + 1);
        }
        client.connect(broker.addr).await.unwrap();
        client.flush().await.expect("all delivered");
        assert_eq!(client.outbox().map(|o| o.len()), Some(0));
        client.disconnect().await.unwrap();
    });
    assert!(umqtt_tests::pump_until(&mut observer, WAIT, || inbox.len() >= 100));
    let expected: Vec<Vec<u8>> = (0..100).map(|i: u32| i.to_string().into_bytes()).collect();
    assert_eq!(inbox.payloads(), expected, "in order, once each");
    let mut seqs = delivered.into_inner();
    seqs.sort_unstable();
    assert_eq!(
        seqs,
        (1..=100).collect::<Vec<u32>>(),
        "every delivery reported once"
    );
    observer.disconnect().unwrap();
}
