//! Publish and subscribe against the in-process broker (rumqttd): the paths
//! every user takes first.

use std::time::Duration;

use umqtt_simple::{Error, QoS};
use umqtt_tests::{ClientParts, InProcessBroker, WAIT, pump_until};

#[test]
fn qos0_and_qos1_messages_arrive_through_wait_msg() {
    let broker = InProcessBroker::start();
    let mut parts = ClientParts::new("wait", 1024, 1024);
    let (mut client, inbox) = parts.client_with_inbox(|o| o);
    assert!(
        !client.connect(broker.addr).unwrap(),
        "clean session has no session present"
    );
    assert_eq!(
        client
            .subscribe(b"pubsub/wait/#", QoS::AtLeastOnce)
            .unwrap(),
        QoS::AtLeastOnce
    );
    client
        .publish(b"pubsub/wait/a", b"zero", false, QoS::AtMostOnce)
        .unwrap();
    client
        .publish(b"pubsub/wait/b", b"one", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(pump_until(&mut client, WAIT, || inbox.len() >= 2));
    let all = inbox.all();
    assert_eq!(all[0].topic, b"pubsub/wait/a");
    assert_eq!(all[0].payload, b"zero");
    // rumqttd forwards at the subscription's QoS rather than the lower of the
    // two, so only the QoS 1 message's QoS is checked here (mosquitto tests
    // check the downgrade).
    assert_eq!(all[1].payload, b"one");
    assert_eq!(all[1].qos, QoS::AtLeastOnce);
    client.disconnect().unwrap();
    assert!(matches!(client.check_msg(), Err(Error::NotConnected)));
}

#[test]
fn check_msg_returns_at_once_and_then_delivers() {
    let broker = InProcessBroker::start();
    let mut parts = ClientParts::new("check", 1024, 1024);
    let (mut client, inbox) = parts.observer(broker.addr, b"pubsub/check", QoS::AtMostOnce);
    let start = std::time::Instant::now();
    assert!(
        !client.check_msg().unwrap(),
        "nothing has been published yet"
    );
    assert!(
        start.elapsed() < Duration::from_secs(1),
        "check_msg must not wait"
    );
    client
        .publish(b"pubsub/check", b"polled", false, QoS::AtMostOnce)
        .unwrap();
    let deadline = std::time::Instant::now() + WAIT;
    while inbox.is_empty() && std::time::Instant::now() < deadline {
        client.check_msg().unwrap();
        std::thread::sleep(Duration::from_millis(5));
    }
    assert_eq!(inbox.payloads(), vec![b"polled".to_vec()]);
}
