//! The reconnecting client's QoS 1 window (blocking and async) against
//! mosquitto killed with SIGKILL and restarted three times under it: every
//! message `publish` accepted arrives at a persistent subscriber, in order
//! on each of its connections; the only message that may be missing is one
//! the broker acknowledged and then lost in the kill (see
//! `umqtt_tests::watcher::lost_only_by_the_broker`). Issue 23: a window
//! without storage for its messages lost the ones in flight at each kill.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::thread;
use std::time::{Duration, Instant};

use umqtt_robust::Event;
use umqtt_simple::{Options, QoS};
use umqtt_tests::tokio_net::{TokioNet, async_robust, run_async};
use umqtt_tests::watcher::{Watcher, lost_only_by_the_broker, wait_until};
use umqtt_tests::{Mosquitto, client_id, std_robust};

/// Messages per run; the kills come after a quarter, a half and three
/// quarters of them arrived.
const TOTAL: usize = 600;
/// Between two publishes (a producer of lines, as in the issue).
const PACE: Duration = Duration::from_millis(2);
/// The RAM the window's messages are kept in until acknowledged.
const STORAGE: usize = 64 * 1024;
/// The longest a run may take.
const LIMIT: Duration = Duration::from_secs(60);

/// When each message's PUBACK came, from the client's `Event::Delivered`
/// (numbered 1, 2, … in publish order).
fn on_delivered(acked_at: &RefCell<Vec<Option<Instant>>>) -> impl FnMut(Event) + '_ {
    move |e| {
        if let Event::Delivered { seq } = e
            && let Some(slot) = acked_at.borrow_mut().get_mut(seq as usize - 1)
        {
            slot.get_or_insert_with(Instant::now);
        }
    }
}

/// `TOTAL` numbered messages from a blocking robust client with a window
/// of `window`, then `flush` until all are acknowledged.
fn publish_blocking(addr: SocketAddr, topic: &str, window: usize) -> Vec<Option<Instant>> {
    let acked_at = RefCell::new(vec![None; TOTAL]);
    let mut on_event = on_delivered(&acked_at);
    let mut slots = vec![0u16; window];
    let mut storage = vec![0u8; STORAGE];
    let id = client_id("wk-pub");
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut client = std_robust(&mut tx, &mut rx, Options::new(&id), (50, 500), 30_000);
    client.set_window_in_ram(&mut slots, &mut storage);
    client.set_event_callback(&mut on_event);
    client.connect(addr).expect("the publisher connects");
    for i in 0..TOTAL {
        client
            .publish(
                topic.as_bytes(),
                i.to_string().as_bytes(),
                false,
                QoS::AtLeastOnce,
            )
            .unwrap_or_else(|e| panic!("publish {i}: {e}"));
        thread::sleep(PACE);
    }
    client.flush().expect("every message acknowledged");
    let _ = client.disconnect();
    drop(client);
    drop(on_event);
    acked_at.into_inner()
}

/// The same with the async client.
fn publish_async(addr: SocketAddr, topic: &str, window: usize) -> Vec<Option<Instant>> {
    let acked_at = RefCell::new(vec![None; TOTAL]);
    run_async(LIMIT, async {
        let net = TokioNet;
        let mut on_event = on_delivered(&acked_at);
        let mut slots = vec![0u16; window];
        let mut storage = vec![0u8; STORAGE];
        let id = client_id("wk-apub");
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let mut client = async_robust(
            &net,
            (&mut tx, &mut rx),
            Options::new(&id),
            (50, 500),
            30_000,
        );
        client.set_window_in_ram(&mut slots, &mut storage);
        client.set_event_callback(&mut on_event);
        client.connect(addr).await.expect("the publisher connects");
        for i in 0..TOTAL {
            client
                .publish(
                    topic.as_bytes(),
                    i.to_string().as_bytes(),
                    false,
                    QoS::AtLeastOnce,
                )
                .await
                .unwrap_or_else(|e| panic!("publish {i}: {e}"));
            tokio::time::sleep(PACE).await;
        }
        client.flush().await.expect("every message acknowledged");
        let _ = client.disconnect().await;
    });
    acked_at.into_inner()
}

/// Runs `publish` against a persistent mosquitto killed with SIGKILL three
/// times and checks that nothing but what the broker itself lost is missing.
fn through_three_sigkills(
    name: &str,
    window: usize,
    publish: fn(SocketAddr, &str, usize) -> Vec<Option<Instant>>,
) {
    let Some(mut broker) = Mosquitto::start(name, "") else {
        return;
    };
    broker
        .enable_persistence("autosave_interval 1\nautosave_on_changes true\nmax_queued_messages 0");
    let addr = broker.addr;
    let topic = format!("window-kill/{}", client_id(name));
    let watcher = Watcher::start(addr, &topic, TOTAL);
    // mosquitto must have saved the subscription before the first kill.
    wait_until(Duration::from_secs(10), "mosquitto.db", || {
        broker.dir.join("mosquitto.db").exists()
    });
    let publisher = {
        let topic = topic.clone();
        thread::spawn(move || publish(addr, &topic, window))
    };
    let mut kills = Vec::new();
    for at in [TOTAL / 4, TOTAL / 2, 3 * TOTAL / 4] {
        wait_until(LIMIT, "the stream to go on", || watcher.distinct() >= at);
        broker.kill(); // SIGKILL
        kills.push(Instant::now());
        broker.restart(); // the same broker from its database
    }
    let acked_at = publisher.join().expect("the publisher");
    let report = lost_only_by_the_broker(&watcher.finish(), TOTAL, &acked_at, &kills);
    println!(
        "{name}: window {window}, {TOTAL} messages through 3 SIGKILLs: {} duplicates, \
         {} acknowledged by mosquitto right before a kill and lost by it {:?}",
        report.duplicates,
        report.lost_by_broker.len(),
        report.lost_by_broker
    );
}

#[test]
fn blocking_window_of_32_loses_no_message_across_three_broker_sigkills() {
    through_three_sigkills("wk_blocking_32", 32, publish_blocking);
}

#[test]
fn blocking_window_of_1_loses_no_message_across_three_broker_sigkills() {
    through_three_sigkills("wk_blocking_1", 1, publish_blocking);
}

#[test]
fn async_window_of_32_loses_no_message_across_three_broker_sigkills() {
    through_three_sigkills("wk_async_32", 32, publish_async);
}

#[test]
fn async_window_of_1_loses_no_message_across_three_broker_sigkills() {
    through_three_sigkills("wk_async_1", 1, publish_async);
}
