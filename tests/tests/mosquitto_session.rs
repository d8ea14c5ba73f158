//! Sessions, credentials and subscriptions against a real mosquitto (started
//! by each test on its own loopback port; skipped when it is not installed).
//!
//! - session present with a clean and with a persistent session, and QoS 1
//!   messages queued by the broker while a persistent subscriber was away;
//! - CONNACK refusals from a broker with a password file, a user name without
//!   a password (anchor 3), a password without a user name;
//! - `subscribe_many` and the QoS granted for each filter.

use std::net::{Ipv4Addr, TcpListener};

use umqtt_simple::packet::EncodeError;
use umqtt_simple::{Error, Options, QoS};
use umqtt_tests::{
    ClientParts, Mosquitto, QUIET, WAIT, broker_with_password, client_id, pump_for, pump_until,
    std_client,
};

#[test]
fn clean_session_connect_reports_no_session_present() {
    let Some(broker) = Mosquitto::start("clean_session_present", "") else {
        return;
    };
    let mut parts = ClientParts::new("clean", 1024, 1024);
    let mut client = parts.client(|o| o);
    assert!(
        !client.connect(broker.addr).unwrap(),
        "first connect: no session present"
    );
    client.disconnect().unwrap();
    assert!(
        !client.connect(broker.addr).unwrap(),
        "a clean session never finds a session, not even on reconnect"
    );
    client.disconnect().unwrap();
}

#[test]
fn persistent_session_is_absent_on_first_connect_and_present_after_reconnect() {
    let Some(broker) = Mosquitto::start("persistent_session_present", "") else {
        return;
    };
    let mut parts = ClientParts::new("persistent", 1024, 1024);
    let mut client = parts.client(|o| o.clean_session(false));
    assert!(
        !client.connect(broker.addr).unwrap(),
        "the broker has never seen this client id"
    );
    client.disconnect().unwrap();
    assert!(!client.is_connected());
    assert!(
        client.connect(broker.addr).unwrap(),
        "the broker kept the session across disconnect"
    );
    client.disconnect().unwrap();
}

#[test]
fn qos1_message_published_while_persistent_subscriber_is_offline_arrives_after_reconnect() {
    let Some(broker) = Mosquitto::start("offline_queue", "") else {
        return;
    };
    let topic = b"session/offline/q";

    let mut sub_parts = ClientParts::new("offline-sub", 1024, 1024);
    let (mut sub, inbox) = sub_parts.client_with_inbox(|o| o.clean_session(false));
    assert!(!sub.connect(broker.addr).unwrap());
    assert_eq!(
        sub.subscribe(topic, QoS::AtLeastOnce).unwrap(),
        QoS::AtLeastOnce
    );
    sub.disconnect().unwrap();

    let mut publisher_parts = ClientParts::new("offline-pub", 1024, 1024);
    let mut publisher = publisher_parts.connected(broker.addr);
    // The PUBACK means the broker has the message and queued it for the
    // offline session.
    publisher
        .publish(topic, b"queued while offline", false, QoS::AtLeastOnce)
        .unwrap();

    assert!(
        sub.connect(broker.addr).unwrap(),
        "the session with its subscription was kept"
    );
    assert!(
        pump_until(&mut sub, WAIT, || !inbox.is_empty()),
        "the queued message did not arrive after reconnect"
    );
    let got = inbox.all();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].topic, topic);
    assert_eq!(got[0].payload, b"queued while offline");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert!(!got[0].retain);

    // It was acknowledged: a further reconnect does not bring it again. A
    // message the broker still held in flight would be resent right after
    // CONNACK, so before the control message published afterwards.
    sub.disconnect().unwrap();
    assert!(sub.connect(broker.addr).unwrap());
    publisher
        .publish(topic, b"control", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(
        pump_until(&mut sub, WAIT, || inbox.len() >= 2),
        "the control message did not arrive"
    );
    pump_for(&mut sub, QUIET);
    assert_eq!(
        inbox.payloads(),
        vec![b"queued while offline".to_vec(), b"control".to_vec()]
    );
    sub.disconnect().unwrap();
    publisher.disconnect().unwrap();
}

#[test]
fn wrong_password_is_refused_with_not_authorized() {
    let Some(broker) = broker_with_password("auth_wrong", "alice", "s3cret") else {
        return;
    };
    let mut parts = ClientParts::new("auth-wrong", 256, 256);
    let mut client = parts.client(|o| o.user("alice").password(b"wrong"));
    // mosquitto 2.0 answers a wrong password of an MQTT 3.1.1 client with
    // CONNACK 5 "not authorised", not 4 "bad user name or password".
    assert_eq!(
        client.connect(broker.addr),
        Err(Error::RefusedNotAuthorized)
    );
    assert!(!client.is_connected());
    assert!(matches!(client.check_msg(), Err(Error::NotConnected)));
}

#[test]
fn right_user_and_password_connect_and_work() {
    let Some(broker) = broker_with_password("auth_right", "alice", "s3cret") else {
        return;
    };
    let mut parts = ClientParts::new("auth-right", 256, 256);
    let (mut client, inbox) = parts.client_with_inbox(|o| o.user("alice").password(b"s3cret"));
    assert!(!client.connect(broker.addr).unwrap());
    assert!(client.is_connected());
    client.subscribe(b"auth/t", QoS::AtMostOnce).unwrap();
    client
        .publish(b"auth/t", b"authenticated", false, QoS::AtMostOnce)
        .unwrap();
    assert!(pump_until(&mut client, WAIT, || !inbox.is_empty()));
    assert_eq!(inbox.payloads(), vec![b"authenticated".to_vec()]);
    client.disconnect().unwrap();
}

#[test]
fn anonymous_client_is_refused_when_anonymous_is_not_allowed() {
    let Some(broker) = broker_with_password("auth_anon", "alice", "s3cret") else {
        return;
    };
    let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
    let id = client_id("auth-anon");
    let mut client = std_client(&mut tx, &mut rx, Options::new(&id));
    // Same code as for a wrong password: CONNACK 5 "not authorised".
    assert_eq!(
        client.connect(broker.addr),
        Err(Error::RefusedNotAuthorized)
    );
    assert!(!client.is_connected());

    // The same client connects once it has credentials.
    client.set_options(Options::new(&id).user("alice").password(b"s3cret"));
    assert!(!client.connect(broker.addr).unwrap());
    client.disconnect().unwrap();
}

#[test]
fn user_name_without_password_is_accepted_when_anonymous_is_allowed() {
    // Anchor 3: the original raised TypeError for a user without a password.
    let Some(broker) = Mosquitto::start("user_without_password", "") else {
        return;
    };
    let mut parts = ClientParts::new("user-only", 256, 256);
    let mut client = parts.client(|o| o.user("bob"));
    assert!(!client.connect(broker.addr).unwrap());
    assert!(client.is_connected());
    client
        .publish(b"auth/user-only", b"hello", false, QoS::AtLeastOnce)
        .unwrap();
    client.disconnect().unwrap();
}

#[test]
fn password_without_user_name_is_refused_before_anything_is_sent() {
    let Some(broker) = Mosquitto::start("password_without_user", "") else {
        return;
    };
    let mut parts = ClientParts::new("password-only", 256, 256);
    let mut client = parts.client(|o| o.password(b"secret"));
    assert_eq!(
        client.connect(broker.addr),
        Err(Error::Invalid(EncodeError::PasswordWithoutUsername))
    );
    assert!(!client.is_connected());

    // Not even a TCP connection is opened: a listener of our own sees none.
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    assert_eq!(
        client.connect(addr),
        Err(Error::Invalid(EncodeError::PasswordWithoutUsername))
    );
    match listener.accept() {
        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
        Ok((_, peer)) => panic!("the client opened a connection from {peer}"),
        Err(e) => panic!("accept failed: {e}"),
    }
}

#[test]
fn subscribe_many_returns_the_qos_granted_for_each_filter() {
    let Some(broker) = Mosquitto::start("subscribe_many", "") else {
        return;
    };
    let mut parts = ClientParts::new("sub-many", 1024, 1024);
    let (mut client, inbox) = parts.connected_with_inbox(broker.addr);
    let filters: [(&[u8], QoS); 2] = [
        (b"many/one/+", QoS::AtLeastOnce),
        (b"many/zero/#", QoS::AtMostOnce),
    ];
    let mut granted = [None, None];
    client.subscribe_many(&filters, &mut granted).unwrap();
    assert_eq!(granted, [Some(QoS::AtLeastOnce), Some(QoS::AtMostOnce)]);

    // Both subscriptions are in force, each at its own QoS.
    let mut publisher_parts = ClientParts::new("sub-many-pub", 256, 256);
    let mut publisher = publisher_parts.connected(broker.addr);
    publisher
        .publish(b"many/one/a", b"to one", false, QoS::AtLeastOnce)
        .unwrap();
    publisher
        .publish(b"many/zero/b/c", b"to zero", false, QoS::AtLeastOnce)
        .unwrap();
    assert!(pump_until(&mut client, WAIT, || inbox.len() >= 2));
    let mut got = inbox.all();
    got.sort_by(|a, b| a.topic.cmp(&b.topic));
    assert_eq!(got[0].topic, b"many/one/a");
    assert_eq!(got[0].qos, QoS::AtLeastOnce);
    assert_eq!(got[1].topic, b"many/zero/b/c");
    assert_eq!(got[1].qos, QoS::AtMostOnce);
    client.disconnect().unwrap();
    publisher.disconnect().unwrap();
}
