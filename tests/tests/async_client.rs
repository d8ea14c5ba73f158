//! The async client (umqtt-simple's `asynch`, feature `async`) against real
//! brokers and scripted ones: the behaviours the blocking client's tests
//! prove, through the async front-end. Executor: tokio's current-thread
//! runtime; the client's timer: `StdTimer` (executor-agnostic); sockets:
//! tokio's, behind embedded-nal-async ([`umqtt_tests::tokio_net`]).

use std::cell::Cell;
use std::io::Write as _;
use std::time::{Duration, Instant};

use umqtt_simple::{Error, Message, QoS, Waiting};
use umqtt_tests::tokio_net::{AsyncClient, TokioNet, pump_async_until, run_async};
use umqtt_tests::{
    ClientParts, FakeBroker, HANG_LIMIT, InProcessBroker, Mosquitto, QUIET, WAIT, accept_connect,
    broker_with_password, hex, pump_until, read_connect, read_packet,
};

async fn connected<'a>(
    parts: &'a mut ClientParts,
    net: &'a TokioNet,
    addr: std::net::SocketAddr,
) -> (AsyncClient<'a>, std::rc::Rc<umqtt_tests::Inbox>) {
    let (mut client, inbox) = parts.async_client_with_inbox(net, |o| o);
    client
        .connect(addr)
        .await
        .unwrap_or_else(|e| panic!("connect to {addr}: {e}"));
    (client, inbox)
}

#[test]
fn qos0_and_qos1_messages_arrive_through_async_wait_msg_on_the_in_process_broker() {
    let broker = InProcessBroker::start();
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-wait", 1024, 1024);
        let (mut client, inbox) = parts.async_client_with_inbox(&net, |o| o);
        assert!(!client.connect(broker.addr).await.unwrap());
        assert_eq!(
            client
                .subscribe(b"async/wait/#", QoS::AtLeastOnce)
                .await
                .unwrap(),
            QoS::AtLeastOnce
        );
        client
            .publish(b"async/wait/a", b"zero", false, QoS::AtMostOnce)
            .await
            .unwrap();
        client
            .publish(b"async/wait/b", b"one", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        assert!(pump_async_until(&mut client, WAIT, || inbox.len() >= 2).await);
        let all = inbox.all();
        assert_eq!(
            (&all[0].topic[..], &all[0].payload[..]),
            (&b"async/wait/a"[..], &b"zero"[..])
        );
        assert_eq!(all[1].payload, b"one");
        assert_eq!(all[1].qos, QoS::AtLeastOnce);
        client.disconnect().await.unwrap();
        assert!(matches!(client.check_msg().await, Err(Error::NotConnected)));
    });
}

#[test]
fn async_check_msg_returns_at_once_with_nothing_and_then_delivers() {
    let broker = InProcessBroker::start();
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-check", 1024, 1024);
        let (mut client, inbox) = connected(&mut parts, &net, broker.addr).await;
        client
            .subscribe(b"async/check", QoS::AtMostOnce)
            .await
            .unwrap();
        let start = Instant::now();
        assert!(!client.check_msg().await.unwrap());
        assert!(start.elapsed() < Duration::from_secs(1), "check_msg waited");
        client
            .publish(b"async/check", b"x", false, QoS::AtMostOnce)
            .await
            .unwrap();
        let start = Instant::now();
        while inbox.is_empty() && start.elapsed() < WAIT {
            if !client.check_msg().await.unwrap() {
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        }
        assert_eq!(inbox.payloads(), vec![b"x".to_vec()]);
        client.disconnect().await.unwrap();
    });
}

#[test]
fn async_qos0_and_qos1_arrive_at_the_lower_of_publish_and_subscription_qos_on_mosquitto() {
    let Some(broker) = Mosquitto::start("async_qos", "") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-qos", 1024, 1024);
        let (mut client, inbox) = connected(&mut parts, &net, broker.addr).await;
        let mut granted = [None, None];
        client
            .subscribe_many(
                &[(b"aq/zero", QoS::AtMostOnce), (b"aq/one", QoS::AtLeastOnce)],
                &mut granted,
            )
            .await
            .unwrap();
        assert_eq!(granted, [Some(QoS::AtMostOnce), Some(QoS::AtLeastOnce)]);
        for (topic, qos) in [
            (&b"aq/zero"[..], QoS::AtMostOnce),
            (b"aq/zero", QoS::AtLeastOnce),
            (b"aq/one", QoS::AtMostOnce),
            (b"aq/one", QoS::AtLeastOnce),
        ] {
            client
                .publish(topic, &[qos as u8], false, qos)
                .await
                .unwrap();
        }
        assert!(pump_async_until(&mut client, WAIT, || inbox.len() >= 4).await);
        let got: Vec<_> = inbox
            .all()
            .iter()
            .map(|m| (m.topic.clone(), m.payload[0], m.qos))
            .collect();
        assert_eq!(
            got,
            vec![
                (b"aq/zero".to_vec(), 0, QoS::AtMostOnce),
                (b"aq/zero".to_vec(), 1, QoS::AtMostOnce),
                (b"aq/one".to_vec(), 0, QoS::AtMostOnce),
                (b"aq/one".to_vec(), 1, QoS::AtLeastOnce),
            ]
        );
        client.disconnect().await.unwrap();
    });
}

#[test]
fn async_retained_message_reaches_a_later_subscriber_and_unsubscribe_stops_delivery() {
    let Some(broker) = Mosquitto::start("async_retained", "") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut pub_parts = ClientParts::new("async-ret-pub", 256, 256);
        let (mut publisher, _) = connected(&mut pub_parts, &net, broker.addr).await;
        publisher
            .publish(b"ar/state", b"on", true, QoS::AtLeastOnce)
            .await
            .unwrap();

        let mut parts = ClientParts::new("async-ret-sub", 256, 256);
        let (mut sub, inbox) = connected(&mut parts, &net, broker.addr).await;
        sub.subscribe(b"ar/#", QoS::AtLeastOnce).await.unwrap();
        assert!(pump_async_until(&mut sub, WAIT, || !inbox.is_empty()).await);
        assert!(inbox.all()[0].retain, "a retained message carries the flag");

        sub.unsubscribe(b"ar/#").await.unwrap();
        publisher
            .publish(b"ar/state", b"off", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        let start = Instant::now();
        while start.elapsed() < QUIET {
            sub.wait_msg_for(100).await.unwrap();
        }
        assert_eq!(inbox.len(), 1, "nothing arrives after unsubscribe");
        // Clear the retained message.
        publisher
            .publish(b"ar/state", b"", true, QoS::AtLeastOnce)
            .await
            .unwrap();
        sub.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
    });
}

#[test]
fn async_one_megabyte_message_round_trips_through_a_256_byte_tx_buffer() {
    let Some(broker) = Mosquitto::start("async_large", "") else {
        return;
    };
    let big: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-large-sub", 256, 2 * 1024 * 1024);
        let (mut sub, inbox) = connected(&mut parts, &net, broker.addr).await;
        sub.subscribe(b"al/#", QoS::AtLeastOnce).await.unwrap();
        let mut pub_parts = ClientParts::new("async-large-pub", 256, 256);
        let (mut publisher, _) = connected(&mut pub_parts, &net, broker.addr).await;
        publisher
            .publish(b"al/big", &big, false, QoS::AtLeastOnce)
            .await
            .unwrap();
        publisher
            .publish(b"al/after", b"small", false, QoS::AtMostOnce)
            .await
            .unwrap();
        assert!(pump_async_until(&mut sub, WAIT, || inbox.len() >= 2).await);
        let got = inbox.all();
        assert!(got[0].payload == big, "the 1 MB payload differs");
        assert_eq!(got[1].payload, b"small");
        sub.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
    });
}

#[test]
fn async_message_larger_than_rx_buffer_is_reported_and_the_next_arrives_intact() {
    let Some(broker) = Mosquitto::start("async_oversized", "") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-over-sub", 256, 1024);
        let (mut sub, inbox) = connected(&mut parts, &net, broker.addr).await;
        sub.subscribe(b"ao/#", QoS::AtLeastOnce).await.unwrap();
        let mut pub_parts = ClientParts::new("async-over-pub", 256, 256);
        let (mut publisher, _) = connected(&mut pub_parts, &net, broker.addr).await;
        publisher
            .publish(b"ao/big", &[7u8; 10_000], false, QoS::AtLeastOnce)
            .await
            .unwrap();
        publisher
            .publish(b"ao/next", b"intact", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        let outcome = loop {
            match sub.wait_msg_for(5_000).await {
                Ok(true) => continue,
                other => break other,
            }
        };
        // 2 bytes of header size + 2 + 6 topic + 2 id + 10 000 payload.
        assert!(
            matches!(
                outcome,
                Err(Error::MessageTooLarge {
                    size: 10_013,
                    capacity: 1024
                })
            ),
            "{outcome:?}"
        );
        assert!(sub.is_connected(), "a skipped message keeps the connection");
        assert!(pump_async_until(&mut sub, WAIT, || !inbox.is_empty()).await);
        assert_eq!(inbox.payloads(), vec![b"intact".to_vec()]);
        assert_eq!(sub.skipped_messages(), 1);
        sub.disconnect().await.unwrap();
        publisher.disconnect().await.unwrap();
    });
}

#[test]
fn idle_async_client_with_keepalive_2s_stays_connected_through_its_own_pings() {
    let Some(broker) = Mosquitto::start("async_keepalive", "") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-idle", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o.keepalive(2));
        client.connect(broker.addr).await.unwrap();
        // 5 s idle: two keepalive periods and more. Nothing but PINGRESPs
        // (answers to the client's own PINGREQs) may arrive.
        let start = Instant::now();
        let mut handled = 0;
        while start.elapsed() < Duration::from_secs(5) {
            if client.wait_msg_for(500).await.unwrap() {
                handled += 1;
            }
        }
        assert!(handled >= 2, "{handled} PINGRESPs in 5 s at keepalive 2 s");
        assert!(client.is_connected());
        // The broker answered: the session still works.
        client
            .publish(b"idle/t", b"x", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        client.disconnect().await.unwrap();
    });
    assert!(
        !broker.log().contains("exceeded timeout"),
        "mosquitto dropped the idle client:\n{}",
        broker.log()
    );
}

#[test]
fn async_last_will_fires_when_the_client_is_dropped_and_not_after_disconnect() {
    let Some(broker) = Mosquitto::start("async_will", "") else {
        return;
    };
    let mut observer_parts = ClientParts::new("async-will-observer", 256, 256);
    let (mut observer, inbox) = observer_parts.observer(broker.addr, b"aw/#", QoS::AtLeastOnce);
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-will-polite", 256, 256);
        let (mut polite, _) = parts.async_client_with_inbox(&net, |o| o);
        polite
            .set_last_will(b"aw/polite", b"gone", false, QoS::AtLeastOnce)
            .unwrap();
        polite.connect(broker.addr).await.unwrap();
        polite.disconnect().await.unwrap();

        let mut parts = ClientParts::new("async-will-dropped", 256, 256);
        let (mut dropped, _) = parts.async_client_with_inbox(&net, |o| {
            o.last_will(b"aw/dropped", b"vanished", false, QoS::AtLeastOnce)
        });
        dropped.connect(broker.addr).await.unwrap();
        // Dropped without DISCONNECT: the connection just ends.
    });
    assert!(pump_until(&mut observer, WAIT, || !inbox.is_empty()));
    let start = Instant::now();
    while start.elapsed() < QUIET {
        observer.wait_msg_for(100).unwrap();
    }
    let got = inbox.all();
    assert_eq!(got.len(), 1, "only the dropped client's will: {got:?}");
    assert_eq!(
        (&got[0].topic[..], &got[0].payload[..]),
        (&b"aw/dropped"[..], &b"vanished"[..])
    );
    observer.disconnect().unwrap();
}

#[test]
fn async_persistent_session_is_present_on_reconnect_and_delivers_what_was_missed() {
    let Some(broker) = Mosquitto::start("async_session", "") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-persistent", 256, 256);
        let (mut client, inbox) = parts.async_client_with_inbox(&net, |o| o.clean_session(false));
        assert!(
            !client.connect(broker.addr).await.unwrap(),
            "first connect: no session"
        );
        client.subscribe(b"ap/t", QoS::AtLeastOnce).await.unwrap();
        client.disconnect().await.unwrap();

        let mut pub_parts = ClientParts::new("async-persistent-pub", 256, 256);
        let (mut publisher, _) = connected(&mut pub_parts, &net, broker.addr).await;
        publisher
            .publish(b"ap/t", b"missed", false, QoS::AtLeastOnce)
            .await
            .unwrap();
        publisher.disconnect().await.unwrap();

        assert!(
            client.connect(broker.addr).await.unwrap(),
            "reconnect: session present"
        );
        assert!(pump_async_until(&mut client, WAIT, || !inbox.is_empty()).await);
        assert_eq!(inbox.payloads(), vec![b"missed".to_vec()]);
        client.disconnect().await.unwrap();
    });
}

#[test]
fn async_wrong_password_is_refused_with_not_authorized() {
    let Some(broker) = broker_with_password("async_password", "alice", "s3cret") else {
        return;
    };
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-wrong-password", 256, 256);
        let (mut client, _) =
            parts.async_client_with_inbox(&net, |o| o.user("alice").password(b"wrong"));
        let refused = client.connect(broker.addr).await;
        assert!(
            matches!(refused, Err(Error::RefusedNotAuthorized)),
            "{refused:?}"
        );
        assert!(!client.is_connected());
    });
}

#[test]
fn async_connect_sends_the_same_connect_bytes_as_the_blocking_client() {
    let broker = FakeBroker::start(1, |_, mut stream| {
        let connect = read_connect(&mut stream);
        // client id "async-vector", clean session, keepalive 60.
        assert_eq!(
            connect,
            hex("10 18 00 04 4d 51 54 54 04 02 00 3c 00 0c 61 73 79 6e 63 2d 76 65 63 74 6f 72")
        );
        stream.write_all(&umqtt_tests::CONNACK_ACCEPTED).unwrap();
        assert_eq!(
            read_packet(&mut stream).unwrap(),
            hex("e0 00"),
            "DISCONNECT"
        );
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::with_id("async-vector", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o);
        client.connect(broker.addr).await.unwrap();
        client.disconnect().await.unwrap();
    });
    broker.join();
}

#[test]
fn async_connect_to_a_broker_that_never_answers_times_out_within_the_connect_timeout() {
    let broker = FakeBroker::start(1, |_, mut stream| {
        read_connect(&mut stream);
        std::thread::sleep(Duration::from_millis(1_500));
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-silent", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o.connect_timeout_ms(500));
        let start = Instant::now();
        let outcome = client.connect(broker.addr).await;
        assert!(
            matches!(outcome, Err(Error::Timeout(Waiting::ConnAck))),
            "{outcome:?}"
        );
        let took = start.elapsed();
        assert!(
            took >= Duration::from_millis(450) && took < Duration::from_millis(1_400),
            "{took:?}"
        );
        assert!(!client.is_connected());
    });
    broker.join();
}

#[test]
fn async_publish_without_puback_times_out_and_closes_the_connection() {
    let broker = FakeBroker::start(1, |_, mut stream| {
        accept_connect(&mut stream);
        let publish = read_packet(&mut stream).unwrap();
        assert_eq!(publish[0], 0x32, "a QoS 1 PUBLISH");
        // Never acknowledged; the client closes the connection.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-no-puback", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o.ack_timeout_ms(300));
        client.connect(broker.addr).await.unwrap();
        let unacked = client.publish(b"t", b"x", false, QoS::AtLeastOnce).await;
        assert!(
            matches!(unacked, Err(Error::Timeout(Waiting::PubAck))),
            "{unacked:?}"
        );
        assert!(
            !client.is_connected(),
            "a missing PUBACK ends the connection"
        );
    });
    broker.join();
}

#[test]
fn async_keepalive_fails_with_pingresp_timeout_when_the_broker_goes_silent() {
    let broker = FakeBroker::start(1, |_, mut stream| {
        accept_connect(&mut stream);
        assert_eq!(read_packet(&mut stream).unwrap(), hex("c0 00"), "PINGREQ");
        // No PINGRESP; the client gives up and closes.
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-no-pingresp", 256, 256);
        let (mut client, _) =
            parts.async_client_with_inbox(&net, |o| o.keepalive(1).ping_timeout_ms(300));
        client.connect(broker.addr).await.unwrap();
        let start = Instant::now();
        let outcome = client.wait_msg_for(10_000).await;
        assert!(
            matches!(outcome, Err(Error::Timeout(Waiting::PingResp))),
            "{outcome:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(5));
        assert!(!client.is_connected());
    });
    broker.join();
}

#[test]
fn async_qos1_message_is_acknowledged_only_after_the_callback_had_it() {
    let broker = FakeBroker::start(1, |_, mut stream| {
        accept_connect(&mut stream);
        // QoS 1 PUBLISH, topic "m", id 7, payload "hi".
        stream
            .write_all(&hex("32 07 00 01 6d 00 07 68 69"))
            .unwrap();
        assert_eq!(
            read_packet(&mut stream).unwrap(),
            hex("40 02 00 07"),
            "PUBACK 7"
        );
        assert_eq!(
            read_packet(&mut stream).unwrap(),
            hex("e0 00"),
            "DISCONNECT"
        );
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let seen = Cell::new(false);
        let mut on_message = |m: Message<'_>| {
            assert_eq!(
                (m.topic, m.payload, m.qos),
                (&b"m"[..], &b"hi"[..], QoS::AtLeastOnce)
            );
            seen.set(true);
        };
        let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
        let mut client = AsyncClient::new(
            &net,
            umqtt_transports::std_async::StdTimer::new(),
            &mut tx,
            &mut rx,
            umqtt_simple::Options::new("async-ack"),
        );
        client.set_callback(&mut on_message);
        client.connect(broker.addr).await.unwrap();
        assert!(client.wait_msg_for(5_000).await.unwrap());
        client.disconnect().await.unwrap();
        drop(client);
        assert!(seen.get());
    });
    broker.join();
}

#[test]
fn async_call_dropped_in_the_middle_of_a_send_makes_the_next_call_fail_instead_of_writing_into_the_broken_stream()
 {
    // The broker reads CONNECT, then nothing for a while: a 16 MiB payload
    // fills the socket buffers, and the publish is cancelled half-way.
    let broker = FakeBroker::start(1, |_, mut stream| {
        accept_connect(&mut stream);
        std::thread::sleep(Duration::from_millis(1_500));
        let mut rest = Vec::new();
        let _ = std::io::Read::read_to_end(&mut stream, &mut rest);
    });
    run_async(HANG_LIMIT, async {
        let net = TokioNet;
        let mut parts = ClientParts::new("async-cancelled-send", 256, 256);
        let (mut client, _) = parts.async_client_with_inbox(&net, |o| o);
        client.connect(broker.addr).await.unwrap();
        let big = vec![7u8; 16 << 20];
        let cut = tokio::time::timeout(
            Duration::from_millis(200),
            client.publish(b"big", &big, false, QoS::AtMostOnce),
        )
        .await;
        assert!(cut.is_err(), "the send had to be cut: {cut:?}");
        let next = client.publish(b"t", b"x", false, QoS::AtMostOnce).await;
        assert!(
            matches!(next, Err(Error::Timeout(Waiting::Send))),
            "{next:?}"
        );
        assert!(!client.is_connected(), "half a packet ends the connection");
    });
    broker.join();
}
