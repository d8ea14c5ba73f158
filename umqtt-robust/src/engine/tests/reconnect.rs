//! Reconnecting: QoS 1 resent with DUP, backoff, outages within call
//! deadlines, resubscription, giving up, and a broker looked up by name.

use super::*;

#[test]
fn qos1_publish_whose_puback_never_came_is_sent_again_with_dup_after_reconnect() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let options = Options::new("r").ack_timeout_ms(2_000);
    let mut client = rig.connected(&mut tx, &mut rx, options);
    rig.net.take_sent();
    // First PUBLISH: no answer, so the PUBACK deadline passes and the
    // connection is given up. The reconnect is answered, and so is the DUP.
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x3a, b"\x40\x02\x00\x01");
    client.publish(b"t", b"m", false, QoS::AtLeastOnce).unwrap();
    let sent = packets(&rig.net.sent());
    assert_eq!(
        sent[0], b"\x32\x06\x00\x01t\x00\x01m",
        "first try, packet id 1"
    );
    assert_eq!(sent[1][0], 0x10, "then CONNECT");
    assert_eq!(
        sent[2], b"\x3a\x06\x00\x01t\x00\x01m",
        "then the same message with DUP"
    );
    assert_eq!(rig.net.connects(), 2);
}

#[test]
fn publish_into_a_dead_connection_reconnects_and_completes() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push(e);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r"));
    client.set_event_callback(&mut on_event);
    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x32, b"\x40\x02\x00\x01");
    rig.net.answer(0x3a, b"\x40\x02\x00\x01");
    client.publish(b"t", b"m", false, QoS::AtLeastOnce).unwrap();
    drop(client);
    assert_eq!(
        events.into_inner(),
        [
            Event::Lost,
            Event::Reconnected {
                session_present: false,
                attempts: 1
            }
        ]
    );
}

#[test]
fn reconnect_waits_grow_with_each_failure_and_stay_under_the_maximum() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push(e);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r"));
    client.set_event_callback(&mut on_event);
    rig.net.close_connection();
    rig.net.refuse_connects(8);
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x30, b"");
    client.publish(b"t", b"m", false, QoS::AtMostOnce).unwrap();
    drop(client);
    let waits: Vec<u32> = events
        .borrow()
        .iter()
        .filter_map(|e| match e {
            Event::ReconnectFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            _ => None,
        })
        .collect();
    assert_eq!(waits.len(), 8);
    for (i, wait) in waits.iter().enumerate() {
        let base = (100u32 << i).min(1_600);
        assert!(
            (base / 2..=base).contains(wait),
            "attempt {}: {wait} ms not in {}..={base}",
            i + 1,
            base / 2
        );
    }
    assert!(waits[3] > waits[0], "waits grow: {waits:?}");
    assert!(events.borrow().contains(&Event::Reconnected {
        session_present: false,
        attempts: 9
    }));
}

#[test]
fn check_msg_during_an_outage_returns_at_once_and_tries_only_when_due() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r"));
    rig.net.close_connection();
    rig.net.refuse_connects(u32::MAX);
    let start = rig.clock.now_ms();
    // Notices the loss, makes the attempt that is due at once, fails.
    assert_eq!(client.check_msg(), Ok(false));
    let attempts_then = rig.net.connects();
    for _ in 0..1_000 {
        assert_eq!(client.check_msg(), Ok(false));
    }
    assert_eq!(rig.clock.now_ms(), start, "check_msg never waits");
    assert!(rig.waiter.waits().is_empty());
    assert_eq!(
        rig.net.connects(),
        attempts_then,
        "no attempt before the backoff allows"
    );
    // Once the backoff has passed, one attempt, and it succeeds.
    rig.clock.advance(200);
    rig.net.refuse_connects(0);
    rig.net.answer(0x10, CONNACK);
    assert_eq!(client.check_msg(), Ok(false));
    assert!(client.is_connected());
}

#[test]
fn subscriptions_are_restored_when_the_broker_kept_no_session() {
    let rig = Rig::new();
    rig.net.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut on_message = |_: Message<'_>| {};
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_callback(&mut on_message);
    client.connect(broker()).unwrap();
    rig.net.answer(0x82, b"\x90\x03\x00\x01\x01");
    client.subscribe(b"a/#", QoS::AtLeastOnce).unwrap();
    rig.net.answer(0x82, b"\x90\x03\x00\x02\x00");
    client.subscribe(b"b", QoS::AtMostOnce).unwrap();
    rig.net.take_sent();

    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x82, b"\x90\x03\x00\x03\x01");
    rig.net.answer(0x82, b"\x90\x03\x00\x04\x00");
    assert_eq!(client.check_msg(), Ok(false));
    assert!(client.is_connected());
    let sent = packets(&rig.net.take_sent());
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0][9], 0x02, "clean session kept");
    assert_eq!(sent[1], b"\x82\x08\x00\x03\x00\x03a/#\x01");
    assert_eq!(sent[2], b"\x82\x06\x00\x04\x00\x01b\x00");
}

#[test]
fn persistent_session_choice_is_kept_and_a_broker_that_kept_the_session_is_not_asked_again() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut on_message = |_: Message<'_>| {};
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r").clean_session(false));
    client.set_callback(&mut on_message);
    rig.net.answer(0x82, b"\x90\x03\x00\x01\x01");
    client.subscribe(b"a/#", QoS::AtLeastOnce).unwrap();
    rig.net.take_sent();
    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK_SESSION);
    client.check_msg().unwrap();
    assert!(client.is_connected());
    let sent = packets(&rig.net.sent());
    assert_eq!(
        sent.len(),
        1,
        "only CONNECT: the subscription is in the session"
    );
    assert_eq!(sent[0][9] & 0x02, 0, "never a clean session");
}

#[test]
fn publish_gives_up_after_the_outage_deadline_and_can_be_retried() {
    let rig = Rig::new();
    rig.net.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 1_000,
            max_ms: 1_000,
            max_attempts: None,
        },
        call_timeout_ms: 5_000,
    });
    client.connect(broker()).unwrap();
    rig.net.close_connection();
    rig.net.refuse_connects(u32::MAX);
    let start = rig.clock.now_ms();
    let result = client.publish(b"t", b"m", false, QoS::AtLeastOnce);
    assert_eq!(
        result,
        Err(RobustError::TimedOut {
            waiting: Waiting::PubAck,
            reconnects: 0,
            unacked: Some(1)
        }),
        "the message went into the dead connection: handed back with its id"
    );
    assert_eq!(
        rig.clock.now_ms() - start,
        5_000,
        "exactly the call deadline"
    );
    rig.net.refuse_connects(0);
    rig.net.answer(0x10, CONNACK);
    // Sent again as the same message: DUP, packet id 1.
    rig.net.answer(0x3a, b"\x40\x02\x00\x01");
    client.republish(b"t", b"m", false, 1).unwrap();
    assert_eq!(
        packets(&rig.net.sent()).last().map(Vec::as_slice),
        Some(&b"\x3a\x06\x00\x01t\x00\x01m"[..])
    );
}

#[test]
fn reconnecting_stops_after_max_attempts_until_connect() {
    let rig = Rig::new();
    rig.net.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 10,
            max_ms: 10,
            max_attempts: Some(3),
        },
        call_timeout_ms: 60_000,
    });
    client.connect(broker()).unwrap();
    rig.net.close_connection();
    rig.net.refuse_connects(u32::MAX);
    assert_eq!(client.wait_msg(), Err(RobustError::GaveUp { attempts: 3 }));
    assert_eq!(client.check_msg(), Err(RobustError::GaveUp { attempts: 3 }));
    rig.net.refuse_connects(0);
    rig.net.answer(0x10, CONNACK);
    client.connect(broker()).unwrap();
    assert!(client.is_connected());
}

#[test]
fn a_half_open_connection_is_noticed_within_one_and_a_half_keepalives() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push((e, 0));
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r").keepalive(10));
    client.set_event_callback(&mut on_event);
    let connected_at = rig.clock.now_ms();
    // The broker vanished: PINGREQ goes out, nothing ever comes back.
    rig.net.refuse_connects(u32::MAX);
    assert_eq!(client.wait_msg_for(15_000), Ok(false));
    assert_eq!(events.borrow().first(), Some(&(Event::Lost, 0)));
    assert!(!client.is_connected());
    assert!(rig.clock.now_ms() - connected_at <= 15_000);
    let sent = packets(&rig.net.sent());
    assert_eq!(
        sent[1], b"\xc0\x00",
        "PINGREQ after 10 s, then the link was given up"
    );
}

#[test]
fn bad_input_is_not_retried() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r"));
    assert_eq!(
        client.publish(b"a/+", b"m", false, QoS::AtMostOnce),
        Err(RobustError::Client(Error::Invalid(
            umqtt_simple::packet::EncodeError::WildcardInTopic
        )))
    );
    assert!(client.is_connected());
    assert_eq!(rig.net.connects(), 1);
    let _ = Waiting::PubAck;
}

#[test]
fn a_connection_lost_while_resubscribing_counts_as_a_failed_attempt() {
    let rig = Rig::new();
    rig.net.answer(0x10, CONNACK);
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push(e);
    let mut on_message = |_: Message<'_>| {};
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_callback(&mut on_message);
    client.set_event_callback(&mut on_event);
    client.connect(broker()).unwrap();
    rig.net.answer(0x82, b"\x90\x03\x00\x01\x00");
    client.subscribe(b"forbidden", QoS::AtMostOnce).unwrap();
    // From now on the broker accepts every CONNECT and answers every
    // SUBSCRIBE with garbage, which ends the connection.
    rig.net.close_connection();
    for _ in 0..100 {
        rig.net.answer(0x10, CONNACK);
        rig.net.answer(0x82, b"\xf0\x00");
    }
    let start = rig.clock.now_ms();
    assert_eq!(client.wait_msg_for(3_000), Ok(false));
    assert!(
        rig.clock.now_ms() - start <= 3_000,
        "the call kept its deadline"
    );
    drop(client);
    let events = events.into_inner();
    let failures: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            Event::ReconnectFailed { retry_in_ms, .. } => Some(*retry_in_ms),
            _ => None,
        })
        .collect();
    assert!(
        failures.len() >= 3 && failures.len() <= 6,
        "paced by the backoff: {events:?}"
    );
    assert!(
        failures.windows(2).all(|w| w[1] >= w[0] / 2),
        "waits grow: {failures:?}"
    );
    let reconnects = events
        .iter()
        .filter(|e| matches!(e, Event::Reconnected { .. }))
        .count();
    let losses = events.iter().filter(|e| **e == Event::Lost).count();
    assert_eq!(
        losses,
        reconnects + 1,
        "every reconnect that was lost again is reported"
    );
}

#[test]
fn clients_with_different_ids_jitter_differently() {
    let waits = |id: &'static str| {
        let rig = Rig::new();
        let (mut tx, mut rx) = ([0u8; 64], [0u8; 64]);
        let events = RefCell::new(Vec::new());
        let mut on_event = |e: Event| events.borrow_mut().push(e);
        let mut client = rig.client(&mut tx, &mut rx, Options::new(id));
        client.set_event_callback(&mut on_event);
        rig.net.refuse_connects(u32::MAX);
        let _ = client.connect(broker());
        let _ = client.wait_msg_for(20_000);
        drop(client);
        events.into_inner()
    };
    assert_ne!(waits("device-1"), waits("device-2"));
}

#[test]
fn batched_messages_lost_with_the_connection_are_reported_and_flush_reconnects() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push(e);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r").batch_qos0(true));
    client.set_event_callback(&mut on_event);
    for payload in [b"a", b"b"] {
        client
            .publish(b"t", payload, false, QoS::AtMostOnce)
            .unwrap();
    }
    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    assert!(
        client.flush().is_ok(),
        "nothing is left to send once reconnected"
    );
    assert!(client.is_connected());
    assert_eq!(client.client().dropped_messages(), 2);
    rig.net.take_sent();
    client.publish(b"t", b"c", false, QoS::AtMostOnce).unwrap();
    client.flush().unwrap();
    assert_eq!(rig.net.take_sent(), b"\x30\x04\x00\x01tc");
    drop(client);
    assert_eq!(
        events.into_inner(),
        [
            Event::Lost,
            Event::Dropped { messages: 2 },
            Event::Reconnected {
                session_present: false,
                attempts: 1
            }
        ]
    );
}

#[test]
fn a_broker_given_by_name_is_looked_up_again_on_every_reconnect() {
    let rig = Rig::new();
    let first: core::net::IpAddr = "10.0.0.1".parse().unwrap();
    let moved: core::net::IpAddr = "10.0.0.2".parse().unwrap();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    // Not known yet: the first connect fails clearly, the name is kept.
    assert!(matches!(
        client.connect_host("broker.example", 1883),
        Err(RobustError::Client(Error::Dns))
    ));
    rig.net.set_host("broker.example", first);
    rig.net.answer(0x10, CONNACK);
    client.publish(b"t", b"a", false, QoS::AtMostOnce).unwrap();
    // The broker moves; the connection dies; the next call finds it.
    rig.net.set_host("broker.example", moved);
    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    client.publish(b"t", b"b", false, QoS::AtMostOnce).unwrap();
    assert_eq!(
        rig.net.remotes(),
        [SocketAddr::new(first, 1883), SocketAddr::new(moved, 1883)]
    );
}
