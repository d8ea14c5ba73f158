//! The reconnect state machine on virtual time: an in-memory stack whose far
//! end is scripted, refused connects and dead connections injected by the
//! test, and a clock that moves only through the client's own waits.

use core::cell::RefCell;
use core::net::SocketAddr;
use std::vec::Vec;

use umqtt_simple::{Client, Error, Message, Options, QoS, Waiting};
use umqtt_transports::Clock;
use umqtt_transports::memory::{MemoryStack, VirtualClock, VirtualWait};

use crate::{Backoff, Event, RobustClient, RobustError, RobustOptions};

const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
const CONNACK_SESSION: &[u8] = &[0x20, 0x02, 0x01, 0x00];

const PINGRESP: &[u8] = &[0xd0, 0x00];

fn broker() -> SocketAddr {
    "127.0.0.1:1883".parse().unwrap()
}

struct Rig {
    net: MemoryStack,
    clock: VirtualClock,
    waiter: VirtualWait,
}

type Robust<'a> = RobustClient<'a, MemoryStack, VirtualClock, VirtualWait>;

impl Rig {
    fn new() -> Self {
        let clock = VirtualClock::starting_at(10_000);
        Rig {
            net: MemoryStack::new(),
            waiter: VirtualWait::new(&clock),
            clock,
        }
    }

    fn client<'a>(&self, tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>) -> Robust<'a> {
        let inner = Client::new(self.net.clone(), self.clock.clone(), tx, rx, options)
            .with_waiter(self.waiter.clone());
        let mut client = RobustClient::from_client(inner);
        client.set_robust_options(RobustOptions {
            backoff: Backoff {
                min_ms: 100,
                max_ms: 1_600,
                max_attempts: None,
            },
            call_timeout_ms: 60_000,
        });
        client
    }

    /// A client connected to the broker (the CONNACK answered) whose
    /// connection has shown it works (a PINGRESP came), so that losing it
    /// is an ordinary loss, not a failed attempt.
    fn connected<'a>(
        &self,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Robust<'a> {
        self.net.answer(0x10, CONNACK);
        let mut client = self.client(tx, rx, options);
        client.connect(broker()).unwrap();
        self.establish(&mut client);
        client
    }

    /// Lets the broker answer something on the client's connection.
    fn establish(&self, client: &mut Robust<'_>) {
        self.net.feed(PINGRESP);
        assert_eq!(client.check_msg(), Ok(true));
    }
}

/// Packets the client sent, split by the fixed header.
fn packets(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((_, n))) = umqtt_simple::packet::Packet::decode(rest) {
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

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

/// A broker that accepts every connection and then fails it: the events of
/// a call against it, and what the stack saw.
struct HalfBroken {
    events: Vec<Event>,
    /// How long the call took, in virtual ms.
    took: u64,
}

impl HalfBroken {
    /// The waits between attempts, from the `ReconnectFailed` events.
    fn waits(&self) -> Vec<u32> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::ReconnectFailed { retry_in_ms, .. } => Some(*retry_in_ms),
                _ => None,
            })
            .collect()
    }

    /// Asserts that every failed connection counted as a failed attempt:
    /// the attempt numbers keep growing, and the waits with them.
    fn assert_backed_off(&self) {
        let attempts: Vec<u32> = self
            .events
            .iter()
            .filter_map(|e| match e {
                Event::ReconnectFailed { attempt, .. } => Some(*attempt),
                _ => None,
            })
            .collect();
        assert!(attempts.len() >= 3, "several attempts: {:?}", self.events);
        assert_eq!(
            attempts,
            (1..=attempts.len() as u32).collect::<Vec<_>>(),
            "the attempt count never starts again from 1: {:?}",
            self.events
        );
        let waits = self.waits();
        assert!(
            waits[2] > waits[0] && waits.iter().all(|w| *w <= 1_600),
            "waits grow within the backoff: {waits:?}"
        );
    }
}

/// Runs `call` on a connected client (keepalive `keepalive_s`, answers
/// awaited 1 s) against a broker that answers every later CONNECT with
/// `connack` and nothing else; the call deadline is 10 s.
fn against_half_broken_broker<T: core::fmt::Debug>(
    rig: &Rig,
    keepalive_s: u16,
    connack: &[u8],
    call: impl FnOnce(&mut Robust<'_>) -> T,
) -> (T, HalfBroken) {
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let events = RefCell::new(Vec::new());
    let mut on_event = |e: Event| events.borrow_mut().push(e);
    let mut on_message = |_: Message<'_>| {};
    let options = Options::new("r")
        .keepalive(keepalive_s)
        .ack_timeout_ms(1_000);
    let mut client = rig.connected(&mut tx, &mut rx, options);
    client.set_robust_options(RobustOptions {
        call_timeout_ms: 10_000,
        ..*client.robust_options()
    });
    client.set_callback(&mut on_message);
    client.set_event_callback(&mut on_event);
    for _ in 0..100 {
        rig.net.answer(0x10, connack);
    }
    let start = rig.clock.now_ms();
    let result = call(&mut client);
    let took = rig.clock.now_ms() - start;
    drop(client);
    let half_broken = HalfBroken {
        events: events.into_inner(),
        took,
    };
    (result, half_broken)
}

#[test]
fn silent_puback_ends_publish_at_its_deadline_with_the_unacked_id_and_backs_off() {
    let rig = Rig::new();
    let (result, seen) = against_half_broken_broker(&rig, 60, CONNACK, |c| {
        c.publish(b"t", b"m", false, QoS::AtLeastOnce)
    });
    let Err(RobustError::TimedOut {
        waiting: Waiting::PubAck,
        reconnects,
        unacked: Some(1),
    }) = result
    else {
        panic!("{result:?}");
    };
    assert_eq!(seen.took, 10_000, "exactly the call deadline");
    assert_eq!(rig.net.connects(), 1 + reconnects);
    seen.assert_backed_off();
    let sent = packets(&rig.net.sent());
    let dups = sent.iter().filter(|p| p[0] == 0x3a).count();
    assert_eq!(
        dups as u32, reconnects,
        "sent again after every reconnect, as the same message"
    );
    assert!(
        sent.iter()
            .filter(|p| p[0] & 0xf0 == 0x30)
            .all(|p| p[5..7] == [0, 1]),
        "always packet id 1"
    );
}

#[test]
fn silent_suback_and_unsuback_end_their_calls_at_the_deadline_and_back_off() {
    for unsubscribe in [false, true] {
        let rig = Rig::new();
        let (result, seen) = against_half_broken_broker(&rig, 60, CONNACK, |c| {
            if unsubscribe {
                c.unsubscribe(b"a/b").map(drop)
            } else {
                c.subscribe(b"a/b", QoS::AtLeastOnce).map(drop)
            }
        });
        let waiting = if unsubscribe {
            Waiting::UnsubAck
        } else {
            Waiting::SubAck
        };
        assert!(
            matches!(result, Err(RobustError::TimedOut { waiting: w, reconnects: 3.., unacked: None }) if w == waiting),
            "{result:?}"
        );
        assert_eq!(seen.took, 10_000, "exactly the call deadline");
        seen.assert_backed_off();
    }
}

#[test]
fn silent_pingresp_makes_every_reconnect_a_failed_attempt_and_wait_msg_for_keeps_its_deadline() {
    let rig = Rig::new();
    let (result, seen) = against_half_broken_broker(&rig, 1, CONNACK, |c| c.wait_msg_for(20_000));
    assert_eq!(result, Ok(false));
    assert_eq!(seen.took, 20_000, "exactly the wait's deadline");
    seen.assert_backed_off();
    let pings = packets(&rig.net.sent())
        .iter()
        .filter(|p| p[0] == 0xc0)
        .count();
    assert!(pings >= 3, "each connection pinged before it was given up");
}

/// Subscribes against a broker that answers every later CONNECT with
/// `connack_then`: the call must end at its 10 s deadline, waiting for its
/// SUBACK, with the attempts backed off.
fn subscribe_ends_at_its_deadline_and_backs_off(connack_then: &[u8]) {
    let rig = Rig::new();
    let (result, seen) = against_half_broken_broker(&rig, 60, connack_then, |c| {
        c.subscribe(b"fb/#", QoS::AtLeastOnce)
    });
    assert!(
        matches!(
            result,
            Err(RobustError::TimedOut {
                waiting: Waiting::SubAck,
                ..
            })
        ),
        "{result:?}"
    );
    assert_eq!(seen.took, 10_000);
    seen.assert_backed_off();
}

#[test]
fn a_protocol_error_right_after_connack_is_a_failed_attempt() {
    // Packet type 15 is reserved: the connection ends as soon as it is read.
    subscribe_ends_at_its_deadline_and_backs_off(b"\x20\x02\x00\x00\xf0\x00");
}

#[test]
fn a_huge_message_announced_and_never_sent_is_skipped_and_backed_off_and_the_call_ends() {
    // CONNACK, then a PUBLISH announcing 268 MB of which a few bytes come.
    subscribe_ends_at_its_deadline_and_backs_off(
        b"\x20\x02\x00\x00\x30\xff\xff\xff\x7f\x00\x02fbxxxxxxxx",
    );
}

#[test]
fn max_attempts_applies_to_connections_that_are_accepted_and_then_fail() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r").ack_timeout_ms(1_000));
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 100,
            max_ms: 400,
            max_attempts: Some(3),
        },
        call_timeout_ms: 60_000,
    });
    for _ in 0..10 {
        rig.net.answer(0x10, CONNACK);
    }
    assert_eq!(
        client.publish(b"t", b"m", false, QoS::AtLeastOnce),
        Err(RobustError::GaveUp { attempts: 3 })
    );
    assert_eq!(
        rig.net.connects(),
        4,
        "the connection that worked, then 3 that failed after their CONNACK"
    );
}

#[test]
fn after_a_half_broken_spell_a_good_broker_is_reached_and_the_failures_are_forgotten() {
    let rig = Rig::new();
    let (mut tx, mut rx) = ([0u8; 128], [0u8; 128]);
    let mut client = rig.connected(&mut tx, &mut rx, Options::new("r").ack_timeout_ms(1_000));
    client.set_robust_options(RobustOptions {
        call_timeout_ms: 5_000,
        ..*client.robust_options()
    });
    for _ in 0..3 {
        rig.net.answer(0x10, CONNACK);
    }
    let result = client.publish(b"t", b"m", false, QoS::AtLeastOnce);
    let Err(RobustError::TimedOut {
        unacked: Some(id), ..
    }) = result
    else {
        panic!("{result:?}");
    };
    assert!(client.failed_attempts() >= 2);
    // The broker is well again: the same message goes out again (DUP, same
    // id) and is acknowledged.
    rig.net.close_connection();
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x3a, &[0x40, 0x02, 0x00, id as u8]);
    client.republish(b"t", b"m", false, id).unwrap();
    assert!(client.is_connected());
    assert_eq!(
        client.failed_attempts(),
        0,
        "a PUBACK shows the connection works"
    );
}

/// Found by the `outbox` and `async_outbox` fuzz targets after the window
/// learnt to handle arrived PUBACKs while full: a call of the application's
/// that succeeded (here a QoS 0 publish, which the outbox does not take)
/// was followed by the outbox's pump, which read what had arrived (a
/// malformed packet), lost the connection, and the call still returned `Ok`,
/// though `Ok` stands for a connection still up. The pump after such a call
/// only sends now; the next call handles what arrived.
#[test]
fn a_successful_call_is_not_followed_by_a_read_that_loses_the_connection() {
    let rig = Rig::new();
    let (mut tx, mut rx, mut store, mut slots) = ([0u8; 128], [0u8; 128], [0u8; 256], [0u16; 2]);
    let mut outbox = crate::outbox::RamOutbox::new(&mut store);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_outbox(&mut outbox, crate::outbox::OutboxOptions::default());
    client.set_window(&mut slots);
    for payload in [&b"one"[..], b"two", b"three"] {
        assert!(client.queue(b"t", payload, false, QoS::AtLeastOnce).is_ok());
    }
    rig.net.answer(0x10, CONNACK);
    client.connect(broker()).unwrap();
    assert_eq!(
        client.outbox().map(|o| o.len()),
        Some(3),
        "two in flight, one waiting"
    );
    rig.net.feed(&[0x00, 0x00]); // a packet of the reserved type 0: a protocol error

    let published = client.publish(b"q", b"zero", false, QoS::AtMostOnce);

    assert_eq!(published, Ok(()));
    assert!(client.is_connected(), "Ok, so still connected");
}

/// Found by the `async_outbox` and `outbox` fuzz targets on the merged
/// main: with the window full, `queue` took its message, then its pump read
/// what had arrived, a message too large for the receive buffer, and
/// returned that `MessageTooLarge` as the call's error: the caller lost the
/// sequence number of a message the outbox held (and would queue it twice).
/// The oversize message is the undelivered callback's to report.
#[test]
fn a_queue_whose_pump_meets_an_oversize_message_still_returns_its_sequence_number() {
    let rig = Rig::new();
    let (mut tx, mut rx, mut store, mut slots) = ([0u8; 128], [0u8; 16], [0u8; 256], [0u16; 1]);
    let mut outbox = crate::outbox::RamOutbox::new(&mut store);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_outbox(&mut outbox, crate::outbox::OutboxOptions::default());
    client.set_window(&mut slots);
    rig.net.answer(0x10, CONNACK);
    client.connect(broker()).unwrap();
    assert!(client.queue(b"t", b"one", false, QoS::AtLeastOnce).is_ok());
    let mut oversize = std::vec![0x30, 28, 0x00, 0x01, b'x'];
    oversize.extend_from_slice(&[b'.'; 25]);
    rig.net.feed(&oversize);

    let queued = client.queue(b"t", b"two", false, QoS::AtLeastOnce);

    assert_eq!(queued, Ok(2), "taken, so its sequence number");
    assert_eq!(client.outbox().map(|o| o.len()), Some(2));
}

/// Finding O1 of the fuzz run (issue 26): `connect` sends what waits in the
/// outbox, and when the connection was lost on the way (here the PUBACK
/// never comes, so the inner client gives the connection up), it returned
/// `Ok` though the client was no longer connected, against the rule that
/// `Ok` from `connect` means connected (as for a connection lost while
/// resubscribing). Now it fails; the message stays and goes out, with DUP,
/// on the next connection.
#[test]
fn connect_whose_outbox_drain_loses_the_connection_fails_and_keeps_the_message() {
    let rig = Rig::new();
    let (mut tx, mut rx, mut store) = ([0u8; 128], [0u8; 128], [0u8; 256]);
    let mut outbox = crate::outbox::RamOutbox::new(&mut store);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_outbox(&mut outbox, crate::outbox::OutboxOptions::default());
    assert!(
        client
            .queue(b"t", b"waiting", false, QoS::AtLeastOnce)
            .is_ok()
    );
    rig.net.answer(0x10, CONNACK);

    let connected = client.connect(broker());

    assert!(
        matches!(connected, Err(RobustError::Offline { .. })),
        "{connected:?}"
    );
    assert!(!client.is_connected());
    assert_eq!(client.outbox().map(|o| o.len()), Some(1));
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x3a, &[0x40, 0x02, 0x00, 0x01]);
    rig.net.take_sent();
    assert_eq!(client.flush(), Ok(()));
    let sent = packets(&rig.net.take_sent());
    assert!(
        sent.iter()
            .any(|p| p.first() == Some(&0x3a) && p.ends_with(b"waiting")),
        "resent with DUP after the reconnect: {sent:02x?}"
    );
    assert_eq!(client.outbox().map(|o| o.len()), Some(0));
}

/// Found by the `outbox` fuzz target: once the client had given up
/// reconnecting, `queue` (and `publish` into the outbox) took the message
/// into the outbox and then returned `Err(GaveUp)`, so the caller lost its
/// sequence number and could only believe it was not taken (and queue it
/// twice). It now waits in the outbox like one queued while offline, and
/// goes out after the next `connect`.
#[test]
fn a_message_queued_after_giving_up_is_taken_and_sent_after_the_next_connect() {
    let rig = Rig::new();
    rig.net.answer(0x10, CONNACK);
    let (mut tx, mut rx, mut store) = ([0u8; 128], [0u8; 128], [0u8; 256]);
    let mut outbox = crate::outbox::RamOutbox::new(&mut store);
    let mut client = rig.client(&mut tx, &mut rx, Options::new("r"));
    client.set_robust_options(RobustOptions {
        backoff: Backoff {
            min_ms: 10,
            max_ms: 10,
            max_attempts: Some(2),
        },
        call_timeout_ms: 60_000,
    });
    client.set_outbox(&mut outbox, crate::outbox::OutboxOptions::default());
    client.connect(broker()).unwrap();
    rig.net.close_connection();
    rig.net.refuse_connects(u32::MAX);
    assert_eq!(client.wait_msg(), Err(RobustError::GaveUp { attempts: 2 }));

    let seq = client.queue(b"t", b"kept", false, QoS::AtLeastOnce);

    assert!(seq.is_ok(), "taken into the outbox, so Ok: {seq:?}");
    assert_eq!(client.outbox().map(|o| o.len()), Some(1));
    rig.net.refuse_connects(0);
    rig.net.answer(0x10, CONNACK);
    rig.net.answer(0x32, &[0x40, 0x02, 0x00, 0x01]);
    rig.net.take_sent();
    client.connect(broker()).unwrap();
    let sent = packets(&rig.net.take_sent());
    assert!(
        sent.iter()
            .any(|p| p.first() == Some(&0x32) && p.ends_with(b"kept")),
        "the message goes out after connect: {sent:02x?}"
    );
}
