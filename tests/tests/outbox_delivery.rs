//! The reconnecting client's outbox and QoS 1 window against mosquitto
//! killed under it: nothing accepted is lost, `publish` never waits for an
//! outage, and a full outbox applies its policy and counts what it drops.
//! (A file outbox that survives the publisher's own death: `outbox_file`.)

use std::collections::HashSet;
use std::thread;
use std::time::{Duration, Instant};

use umqtt_robust::outbox::{OutboxError, OutboxOptions, RamOutbox, WhenFull};
use umqtt_robust::{Event, RobustError};
use umqtt_simple::{Options, QoS};
use umqtt_tests::watcher::{Watcher, all_in_order, lost_only_by_the_broker, wait_until};
use umqtt_tests::{Mosquitto, WAIT, client_id, std_robust};

#[test]
fn windowed_outbox_publisher_delivers_10000_messages_across_three_broker_sigkills() {
    const TOTAL: usize = 10_000;
    let Some(mut broker) = Mosquitto::start("outbox_kill9", "") else {
        return;
    };
    broker
        .enable_persistence("autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 0");
    let addr = broker.addr;
    let topic = format!("outbox/{}", client_id("kill9"));
    let watcher = Watcher::start(addr, &topic, TOTAL);
    // mosquitto must have saved the subscription before the first kill.
    wait_until(WAIT, "mosquitto.db", || {
        broker.dir.join("mosquitto.db").exists()
    });

    let publisher = {
        let topic = topic.clone();
        thread::spawn(move || -> (u32, Duration, Vec<Option<Instant>>) {
            // When the broker acknowledged each message (its PUBACK came).
            let acked_at = std::cell::RefCell::new(vec![None; TOTAL]);
            let mut on_event = |e: Event| {
                if let Event::Delivered { seq } = e {
                    // The outbox numbers the messages 1, 2, … in publish order.
                    if let Some(slot) = acked_at.borrow_mut().get_mut(seq as usize - 1) {
                        slot.get_or_insert_with(Instant::now);
                    }
                }
            };
            let mut storage = vec![0u8; 1 << 20];
            let mut outbox = RamOutbox::new(&mut storage);
            let mut window = [0u16; 32];
            let id = client_id("outbox-pub");
            let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
            let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (50, 500), 30_000);
            client.set_outbox(&mut outbox, OutboxOptions::default());
            client.set_window(&mut window);
            client.set_event_callback(&mut on_event);
            client.connect(addr).expect("the publisher connects");
            let mut slowest = Duration::ZERO;
            for i in 0..TOTAL {
                let start = Instant::now();
                client
                    .publish(
                        topic.as_bytes(),
                        i.to_string().as_bytes(),
                        false,
                        QoS::AtLeastOnce,
                    )
                    .unwrap_or_else(|e| panic!("publish {i}: {e}"));
                slowest = slowest.max(start.elapsed());
                if i % 8 == 0 {
                    client
                        .check_msg()
                        .unwrap_or_else(|e| panic!("check_msg: {e}"));
                }
            }
            let start = Instant::now();
            while client.outbox().is_some_and(|o| !o.is_empty()) {
                assert!(
                    start.elapsed() < Duration::from_secs(120),
                    "the outbox never drained"
                );
                if let Err(e) = client.flush() {
                    println!("flush: {e}");
                }
            }
            let dropped = client.outbox_dropped();
            let _ = client.disconnect();
            drop(client);
            (dropped, slowest, acked_at.into_inner())
        })
    };
    let mut kills = Vec::new();
    for at in [2_500, 5_000, 7_500] {
        wait_until(Duration::from_secs(60), "the stream to go on", || {
            watcher.seen.lock().unwrap().distinct() >= at
        });
        broker.kill(); // SIGKILL
        kills.push(Instant::now());
        broker.restart(); // the same broker from its database
    }
    let (dropped, slowest, acked_at) = publisher.join().expect("the publisher");
    assert_eq!(dropped, 0);
    assert!(
        acked_at.iter().all(Option::is_some),
        "every message was acknowledged"
    );
    let report = lost_only_by_the_broker(&watcher.finish(), TOTAL, &acked_at, &kills);
    println!(
        "10 000 through 3 SIGKILLs: {} arrived, {} duplicates; {} acknowledged by mosquitto \
         right before a SIGKILL and lost by it {:?}; slowest publish {slowest:?}",
        TOTAL - report.lost_by_broker.len(),
        report.duplicates,
        report.lost_by_broker.len(),
        report.lost_by_broker
    );
}

#[test]
fn publish_never_waits_for_a_30_s_outage_and_all_1000_messages_arrive_after_it() {
    const TOTAL: usize = 1_000;
    let Some(mut broker) = Mosquitto::start("outbox_outage", "") else {
        return;
    };
    let addr = broker.addr;
    let topic = format!("outbox/{}", client_id("outage"));
    let mut storage = vec![0u8; 256 * 1024];
    let mut outbox = RamOutbox::new(&mut storage);
    let mut window = [0u16; 32];
    let id = client_id("outage-pub");
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (200, 2_000), 30_000);
    client.set_outbox(&mut outbox, OutboxOptions::default());
    client.set_window(&mut window);
    client.connect(addr).expect("connects");

    broker.kill();
    let outage = Instant::now();
    let mut slowest = Duration::ZERO;
    for i in 0..TOTAL {
        let start = Instant::now();
        client
            .publish(
                topic.as_bytes(),
                i.to_string().as_bytes(),
                false,
                QoS::AtLeastOnce,
            )
            .unwrap_or_else(|e| panic!("publish {i} during the outage: {e}"));
        slowest = slowest.max(start.elapsed());
        thread::sleep(Duration::from_millis(30));
    }
    println!(
        "1 000 publishes over {:?} of outage, the slowest took {slowest:?}",
        outage.elapsed()
    );
    // A publish that waited for the broker would take the call timeout (30 s).
    assert!(
        slowest < Duration::from_secs(1),
        "a publish waited {slowest:?}"
    );
    assert_eq!(client.outbox().map(|o| o.len()), Some(TOTAL));

    broker.restart();
    let watcher = Watcher::start(addr, &topic, TOTAL);
    client
        .flush()
        .expect("everything delivered after the outage");
    assert_eq!(client.outbox().map(|o| o.len()), Some(0));
    let duplicates = all_in_order(&watcher.finish(), TOTAL);
    println!("all 1 000 arrived after the outage, {duplicates} duplicates");
}

#[test]
fn a_small_outbox_drops_the_oldest_and_counts_exactly_what_is_missing() {
    const TOTAL: usize = 1_000;
    let Some(mut broker) = Mosquitto::start("outbox_small", "") else {
        return;
    };
    let addr = broker.addr;
    let topic = format!("outbox/{}", client_id("small"));
    // Room for 100 messages of "000".."999" (11 + 3 + topic + 3 bytes each).
    let each = RamOutbox::needed(&umqtt_robust::outbox::Queued::new(
        topic.as_bytes(),
        b"000",
        QoS::AtLeastOnce,
        false,
    ));
    let mut storage = vec![0u8; 100 * each];
    let mut outbox = RamOutbox::new(&mut storage);
    let dropped_events = std::cell::Cell::new(0u32);
    let mut on_event = |e: Event| {
        if let Event::Dropped { messages } = e {
            dropped_events.set(dropped_events.get() + messages);
        }
    };
    let id = client_id("small-pub");
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (200, 2_000), 10_000);
    let options = OutboxOptions {
        when_full: WhenFull::DropOldest,
        ..OutboxOptions::default()
    };
    client.set_outbox(&mut outbox, options);
    client.set_event_callback(&mut on_event);
    client.connect(addr).expect("connects");
    broker.kill();
    for i in 0..TOTAL {
        client
            .publish(
                topic.as_bytes(),
                format!("{i:03}").as_bytes(),
                false,
                QoS::AtLeastOnce,
            )
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
    }
    assert_eq!(client.outbox_dropped(), 900);
    assert_eq!(dropped_events.get(), 900, "every drop reported");

    broker.restart();
    let watcher = Watcher::start(addr, &topic, 100);
    client.flush().expect("the kept messages delivered");
    let got: HashSet<usize> = watcher.finish().arrivals.iter().map(|&(_, n)| n).collect();
    let kept: HashSet<usize> = (900..TOTAL).collect();
    assert_eq!(
        got, kept,
        "exactly the 100 newest arrive; the 900 dropped are the missing ones"
    );
}

#[test]
fn a_full_outbox_that_refuses_says_so_and_keeps_what_it_has() {
    let mut storage = [0u8; 128];
    let mut outbox = RamOutbox::new(&mut storage);
    let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new("refuse"), (50, 100), 1_000);
    client.set_outbox(&mut outbox, OutboxOptions::default());
    // Not connected yet: messages wait in the outbox until it is full.
    let mut accepted = 0;
    let refused = loop {
        match client.queue(b"t", b"0123456789", false, QoS::AtLeastOnce) {
            Ok(_) => accepted += 1,
            Err(e) => break e,
        }
        assert!(accepted < 100);
    };
    assert!(
        matches!(refused, RobustError::Outbox(OutboxError::Full { .. })),
        "{refused:?}"
    );
    assert!(refused.to_string().contains("outbox is full"), "{refused}");
    assert_eq!(client.outbox().map(|o| o.len()), Some(accepted));
    assert_eq!(client.outbox_dropped(), 0);
}

#[test]
fn a_window_without_an_outbox_refuses_qos1_publish_until_an_outbox_is_lent() {
    let Some(broker) = Mosquitto::start("window_no_outbox", "") else {
        return;
    };
    let mut window = [0u16; 8];
    let mut storage = vec![0u8; 4096];
    let mut outbox = RamOutbox::new(&mut storage);
    let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
    let mut client = std_robust(
        &mut tx,
        &mut rx,
        Options::new("no-outbox"),
        (50, 100),
        5_000,
    );
    client.set_window(&mut window);
    client.connect(broker.addr).expect("connects");
    let refused = client
        .publish(
            b"t",
            b"in flight with nowhere to keep it",
            false,
            QoS::AtLeastOnce,
        )
        .expect_err("a QoS 1 message in a window without storage is refused");
    assert!(
        matches!(refused, RobustError::WindowWithoutOutbox),
        "{refused:?}"
    );
    assert!(
        refused.to_string().contains("set_window_in_ram"),
        "{refused}"
    );
    client
        .publish(b"t", b"QoS 0 needs no storage", false, QoS::AtMostOnce)
        .expect("QoS 0 goes as before");
    // Lent afterwards, the outbox brings the window into use.
    client.set_outbox(&mut outbox, OutboxOptions::default());
    assert_eq!(client.client().window_capacity(), 8);
    client
        .publish(b"t", b"kept until acknowledged", false, QoS::AtLeastOnce)
        .expect("queued");
    client.flush().expect("delivered");
    assert_eq!(client.outbox().map(|o| o.len()), Some(0));
}

#[test]
fn a_window_in_ram_with_room_for_4_messages_waits_for_room_and_delivers_all_200() {
    const TOTAL: usize = 200;
    let Some(broker) = Mosquitto::start("window_in_ram_full", "") else {
        return;
    };
    let addr = broker.addr;
    let topic = format!("outbox/{}", client_id("ram-full"));
    let watcher = Watcher::start(addr, &topic, TOTAL);
    let each = RamOutbox::needed(&umqtt_robust::outbox::Queued::new(
        topic.as_bytes(),
        b"000",
        QoS::AtLeastOnce,
        false,
    ));
    let mut storage = vec![0u8; 4 * each];
    let mut window = [0u16; 2];
    let id = client_id("ram-full-pub");
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (50, 500), 10_000);
    client.set_window_in_ram(&mut window, &mut storage);
    client.connect(addr).expect("connects");
    for i in 0..TOTAL {
        client
            .publish(
                topic.as_bytes(),
                format!("{i:03}").as_bytes(),
                false,
                QoS::AtLeastOnce,
            )
            .unwrap_or_else(|e| panic!("publish {i} waits for room, never refused: {e}"));
        assert!(client.outbox().is_some_and(|o| o.len() <= 4));
    }
    client.flush().expect("all acknowledged");
    let duplicates = all_in_order(&watcher.finish(), TOTAL);
    assert_eq!(duplicates, 0, "no reconnect, no duplicate");
}

#[test]
fn a_full_window_moves_on_while_the_application_only_publishes() {
    let Some(broker) = Mosquitto::start("window_moves_on", "") else {
        return;
    };
    let addr = broker.addr;
    let topic = format!("outbox/{}", client_id("moves-on"));
    let watcher = Watcher::start(addr, &topic, 3);
    let mut storage = vec![0u8; 64 * 1024];
    let mut window = [0u16; 2];
    let id = client_id("moves-on-pub");
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (50, 500), 10_000);
    client.set_window_in_ram(&mut window, &mut storage);
    client.connect(addr).expect("connects");
    let mut publish = |n: usize| {
        client
            .publish(
                topic.as_bytes(),
                n.to_string().as_bytes(),
                false,
                QoS::AtLeastOnce,
            )
            .unwrap_or_else(|e| panic!("publish {n}: {e}"));
    };
    // 0 and 1 fill the window, 2 waits in the outbox behind them.
    for n in 0..3 {
        publish(n);
    }
    wait_until(WAIT, "messages 0 and 1", || watcher.distinct() >= 2);
    // No call but publish: each one handles the PUBACKs that came, so 2
    // leaves (a publish may come before the PUBACKs do: a few tries).
    let mut next = 3;
    while watcher.distinct() < 3 {
        assert!(
            next < 40,
            "message 2 never left the outbox: the window stayed full"
        );
        publish(next);
        next += 1;
        thread::sleep(Duration::from_millis(50));
    }
    let seen = watcher.finish();
    assert!(seen.arrivals.iter().any(|&(_, n)| n == 2));
}
