//! The outbox on a connection that comes and goes: fuzz findings about
//! what a call returns when its pump meets a lost connection or a bad
//! packet.

use super::*;

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
