//! Last will and keepalive against a real mosquitto (started by each test on
//! its own loopback port; skipped when it is not installed).
//!
//! The will observer is always a second client subscribed to the will topic.

use std::time::{Duration, Instant};

use umqtt_simple::{Message, Options, QoS};
use umqtt_tests::{Inbox, Mosquitto, StdClient, client_id, pump_until, std_client};

/// How long a test waits for something that must happen.
const WAIT: Duration = Duration::from_secs(10);
/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_secs(1);

/// Runs `wait_msg_for` for `period`, panicking on any error.
fn pump_for(client: &mut StdClient<'_>, period: Duration) {
    let start = Instant::now();
    while start.elapsed() < period {
        client
            .wait_msg_for(50)
            .unwrap_or_else(|e| panic!("wait_msg_for failed: {e}"));
    }
}

#[test]
fn last_will_is_published_when_client_is_dropped_without_disconnect() {
    let Some(broker) = Mosquitto::start("will_on_drop", "") else {
        return;
    };
    let will_topic = b"will/drop/status";

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let (mut otx, mut orx) = (vec![0u8; 256], vec![0u8; 256]);
    let observer_id = client_id("will-observer");
    let mut observer = std_client(&mut otx, &mut orx, Options::new(&observer_id));
    observer.set_callback(&mut on_message);
    observer.connect(broker.addr).unwrap();
    observer.subscribe(will_topic, QoS::AtLeastOnce).unwrap();

    {
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let id = client_id("will-dropped");
        let options = Options::new(&id).last_will(will_topic, b"vanished", false, QoS::AtLeastOnce);
        let mut client = std_client(&mut tx, &mut rx, options);
        client.connect(broker.addr).unwrap();
        client
            .publish(b"will/drop/data", b"alive", false, QoS::AtLeastOnce)
            .unwrap();
        // Dropped here without DISCONNECT: the socket is closed and mosquitto
        // sees a connection that ended abruptly.
    }

    assert!(
        pump_until(&mut observer, WAIT, || !inbox.is_empty()),
        "the will was not published"
    );
    let got = inbox.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, will_topic);
    assert_eq!(got[0].payload, b"vanished");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert!(!got[0].retain);
    observer.disconnect().unwrap();
}

#[test]
fn last_will_is_not_published_after_disconnect() {
    let Some(broker) = Mosquitto::start("will_after_disconnect", "") else {
        return;
    };
    let will_topic = b"will/polite/status";

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let (mut otx, mut orx) = (vec![0u8; 256], vec![0u8; 256]);
    let observer_id = client_id("will-observer");
    let mut observer = std_client(&mut otx, &mut orx, Options::new(&observer_id));
    observer.set_callback(&mut on_message);
    observer.connect(broker.addr).unwrap();
    observer.subscribe(will_topic, QoS::AtLeastOnce).unwrap();

    {
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let id = client_id("will-polite");
        let mut client = std_client(&mut tx, &mut rx, Options::new(&id));
        // The will set through the client rather than the options.
        client
            .set_last_will(will_topic, b"vanished", false, QoS::AtLeastOnce)
            .unwrap();
        client.connect(broker.addr).unwrap();
        client
            .publish(b"will/polite/data", b"alive", false, QoS::AtLeastOnce)
            .unwrap();
        client.disconnect().unwrap();
        assert!(!client.is_connected());
    }

    // Something positive on the will topic, published after the disconnect:
    // it arrives, and the will does not (neither before nor after it).
    let (mut ptx, mut prx) = (vec![0u8; 256], vec![0u8; 256]);
    let pub_id = client_id("will-control");
    let mut control = std_client(&mut ptx, &mut prx, Options::new(&pub_id));
    control.connect(broker.addr).unwrap();
    control
        .publish(will_topic, b"control", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut observer, WAIT, || !inbox.is_empty()),
        "control message missing"
    );
    pump_for(&mut observer, QUIET);
    assert_eq!(
        inbox.payloads(),
        vec![b"control".to_vec()],
        "the will must not be published"
    );
    control.disconnect().unwrap();
    observer.disconnect().unwrap();
}

#[test]
fn idle_client_with_keepalive_2s_blocked_in_wait_msg_for_stays_connected_and_its_will_never_fires()
{
    // Anchor 4: without automatic PINGREQ, mosquitto drops a client idle for
    // 1.5 × keepalive (3 s here) and publishes its will ("flapping").
    let Some(broker) = Mosquitto::start("keepalive_idle", "") else {
        return;
    };
    let status = b"keepalive/idle/status";

    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let (mut otx, mut orx) = (vec![0u8; 256], vec![0u8; 256]);
    let observer_id = client_id("ka-observer");
    let mut observer = std_client(&mut otx, &mut orx, Options::new(&observer_id));
    observer.set_callback(&mut on_message);
    observer.connect(broker.addr).unwrap();
    observer.subscribe(status, QoS::AtLeastOnce).unwrap();

    let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
    let id = client_id("ka-idle");
    let options =
        Options::new(&id)
            .keepalive(2)
            .last_will(status, b"offline", false, QoS::AtLeastOnce);
    let mut idle = std_client(&mut tx, &mut rx, options);
    idle.connect(broker.addr).unwrap();
    idle.publish(status, b"online", false, QoS::AtLeastOnce)
        .unwrap();

    // 10 s without sending anything of its own: the client has no
    // subscription, so every packet wait_msg_for handles is a PINGRESP to a
    // PINGREQ it sent by itself.
    let start = Instant::now();
    let mut handled = 0;
    while start.elapsed() < Duration::from_secs(10) {
        match idle.wait_msg_for(1_000) {
            Ok(true) => handled += 1,
            Ok(false) => {}
            Err(e) => panic!(
                "the idle client lost its connection after {:?}: {e}",
                start.elapsed()
            ),
        }
    }
    assert!(idle.is_connected());
    // MQTT requires a packet at least every 2 s; 10 s need at least 4 pings.
    // (Checked loosely: this counts answers, it does not time them.)
    assert!(
        handled >= 3,
        "only {handled} PINGRESPs in 10 s of keepalive 2 s"
    );

    idle.publish(status, b"still here", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut observer, WAIT, || inbox.len() >= 2),
        "observer saw {:?}",
        inbox.payloads()
    );
    assert_eq!(
        inbox.payloads(),
        vec![b"online".to_vec(), b"still here".to_vec()],
        "no \"offline\": the will never fired"
    );
    idle.disconnect().unwrap();
    observer.disconnect().unwrap();
}
