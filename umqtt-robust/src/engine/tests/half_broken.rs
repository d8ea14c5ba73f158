//! Brokers that accept a connection and then fail it (no answer, a
//! protocol error, an announced message that never comes): every call ends
//! at its deadline, and the attempts are backed off as failures.

use super::*;

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
