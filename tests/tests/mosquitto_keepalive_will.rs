//! Last will and keepalive against a real mosquitto (started by each test on
//! its own loopback port; skipped when it is not installed).
//!
//! The will observer is always a second client subscribed to the will topic.

use std::time::{Duration, Instant};

use umqtt_simple::QoS;
use umqtt_tests::{ClientParts, Mosquitto, QUIET, WAIT, pump_for, pump_until};

#[test]
fn last_will_is_published_when_client_is_dropped_without_disconnect() {
    let Some(broker) = Mosquitto::start("will_on_drop", "") else {
        return;
    };
    let will_topic = b"will/drop/status";

    let mut observer_parts = ClientParts::new("will-observer", 256, 256);
    let (mut observer, inbox) = observer_parts.observer(broker.addr, will_topic, QoS::AtLeastOnce);

    {
        let mut parts = ClientParts::new("will-dropped", 256, 256);
        let mut client =
            parts.client(|o| o.last_will(will_topic, b"vanished", false, QoS::AtLeastOnce));
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

    let mut observer_parts = ClientParts::new("will-observer", 256, 256);
    let (mut observer, inbox) = observer_parts.observer(broker.addr, will_topic, QoS::AtLeastOnce);

    {
        let mut parts = ClientParts::new("will-polite", 256, 256);
        let mut client = parts.client(|o| o);
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
    let mut control_parts = ClientParts::new("will-control", 256, 256);
    let mut control = control_parts.connected(broker.addr);
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

    let mut observer_parts = ClientParts::new("ka-observer", 256, 256);
    let (mut observer, inbox) = observer_parts.observer(broker.addr, status, QoS::AtLeastOnce);

    let mut idle_parts = ClientParts::new("ka-idle", 256, 256);
    let mut idle = idle_parts.client(|o| {
        o.keepalive(2)
            .last_will(status, b"offline", false, QoS::AtLeastOnce)
    });
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
