//! The bytes the client puts on the wire, against a scripted broker that
//! records them: the golden vectors of `wire-vectors.md` (CONNECT with every
//! option, PUBLISH, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT), the packet id
//! after 65 535, and a password without a user refused before any connection.
//!
//! Every client runs in its own thread under a time limit
//! ([`run_in_thread_within`](umqtt_tests::run_in_thread_within) and
//! [`HANG_LIMIT`](umqtt_tests::HANG_LIMIT)), so a hang fails the test
//! instead of blocking the suite. The scripted brokers are in the support
//! crate (`tests/src/scripted.rs`).

use std::io::{ErrorKind, Write};
use std::net::{Ipv4Addr, TcpListener};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::packet::EncodeError;
use umqtt_simple::{Error, Message, Options, QoS};
use umqtt_tests::*;

// ---------------------------------------------------------------------------
// 1. CONNECT golden vectors
// ---------------------------------------------------------------------------

#[test]
fn connect_with_default_keepalive_60_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID),
        "101800044d5154540402003c000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_keepalive_0_matches_minimal_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0),
        "101800044d51545404020000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_user_password_keepalive_30_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID)
            .keepalive(30)
            .user("alice")
            .password(b"secret"),
        "102700044d51545404c2001e000c756d7174745f636c69656e740005616c6963650006736563726574",
    );
}

#[test]
fn connect_with_will_qos0_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0).last_will(
            b"dev/status",
            b"offline",
            false,
            QoS::AtMostOnce,
        ),
        "102d00044d51545404060000000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_with_will_qos1_retained_keepalive_120_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(120).last_will(
            b"dev/status",
            b"offline",
            true,
            QoS::AtLeastOnce,
        ),
        "102d00044d515454042e0078000c756d7174745f636c69656e74000a6465762f73746174757300076f66666c696e65",
    );
}

#[test]
fn connect_with_will_and_credentials_orders_fields_id_will_user_password() {
    // The golden vector uses will QoS 2 (flags 0xd6), which the port cannot
    // request; with will QoS 1 the flags are 0xce and every byte else is equal.
    assert_connect_bytes(
        Options::new(CLIENT_ID)
            .keepalive(65535)
            .user("u")
            .password(b"p")
            .last_will(b"w", b"x", false, QoS::AtLeastOnce),
        "102400044d51545404ceffff000c756d7174745f636c69656e74000177000178000175000170",
    );
}

#[test]
fn connect_with_clean_session_false_matches_golden_vector() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).keepalive(0).clean_session(false),
        "101800044d51545404000000000c756d7174745f636c69656e74",
    );
}

#[test]
fn connect_with_empty_client_id_matches_golden_vector() {
    assert_connect_bytes(
        Options::new("").keepalive(0),
        "100c00044d515454040200000000",
    );
}

#[test]
fn connect_with_200_byte_client_id_uses_two_byte_remaining_length() {
    let id: &'static str = Box::leak("c".repeat(200).into_boxed_str());
    let got = connect_bytes(Options::new(id).keepalive(0));
    let expected = format!("10d40100044d5154540402000000c8{}", "63".repeat(200));
    assert_eq!(got.len(), 215);
    assert_eq!(to_hex(&got), expected);
}

#[test]
fn connect_with_user_without_password_sends_flags_0x82() {
    assert_connect_bytes(
        Options::new(CLIENT_ID).user("alice"),
        "101f00044d5154540482003c000c756d7174745f636c69656e740005616c696365",
    );
}

#[test]
fn publish_subscribe_unsubscribe_ping_and_disconnect_bytes_match_golden_vectors() {
    let (broker, packets) = recording_broker();
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        // A transmit buffer smaller than the 20 000-byte payload: that PUBLISH
        // goes out in two sends and must still be byte-exact.
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = std_client(&mut tx, &mut rx, Options::new(CLIENT_ID));
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        client
            .publish(b"foo_topic", b"hello", false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"foo_topic", b"hello", true, QoS::AtMostOnce)
            .unwrap();
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce).unwrap(),
            QoS::AtMostOnce
        );
        assert_eq!(
            client.subscribe(b"foo/+/bar", QoS::AtLeastOnce).unwrap(),
            QoS::AtLeastOnce
        );
        client.unsubscribe(b"foo_topic").unwrap();
        client
            .publish(b"foo_topic", b"hello", true, QoS::AtLeastOnce)
            .unwrap();
        client
            .publish(b"foo_topic", b"", false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"t", &[b'x'; 200], false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(b"t", &[b'y'; 20_000], false, QoS::AtMostOnce)
            .unwrap();
        client
            .publish(
                "t/\u{fc}".as_bytes(),
                "\u{e9}".as_bytes(),
                false,
                QoS::AtMostOnce,
            )
            .unwrap();
        client.ping().unwrap();
        client.disconnect().unwrap();
    });
    broker.join();
    let got: Vec<String> = packets.try_iter().map(|p| to_hex(&p)).collect();
    let expected = [
        "101800044d5154540402003c000c756d7174745f636c69656e74".to_string(),
        "30100009666f6f5f746f70696368656c6c6f".into(),
        "31100009666f6f5f746f70696368656c6c6f".into(),
        "820e00010009666f6f5f746f70696300".into(),
        "820e00020009666f6f2f2b2f62617201".into(),
        "a20d00030009666f6f5f746f706963".into(),
        // Shared counter: the QoS 1 publish after SUBSCRIBE 1, 2 and UNSUBSCRIBE 3 is 4.
        "33120009666f6f5f746f706963000468656c6c6f".into(),
        "300b0009666f6f5f746f706963".into(),
        format!("30cb01000174{}", "78".repeat(200)),
        format!("30a39c01000174{}", "79".repeat(20_000)),
        // Lengths count bytes: topic "t/ü" is 4 bytes, "é" 2.
        "30080004742fc3bcc3a9".into(),
        "c000".into(),
        "e000".into(),
    ];
    assert_eq!(got.len(), expected.len(), "packets received: {got:?}");
    for (i, (g, e)) in got.iter().zip(expected.iter()).enumerate() {
        assert_eq!(g, e, "packet {i}");
    }
}

// ---------------------------------------------------------------------------
// 2. Packet id wrap
// ---------------------------------------------------------------------------

#[test]
fn packet_id_after_65535_is_1_on_the_wire() {
    const PUBLISHES: u32 = 65_536;
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // Buffered: read_packet's byte-wise reads of the socket itself would
        // be slow for 65 536 publishes.
        let mut reader = std::io::BufReader::new(s.try_clone().unwrap());
        let mut expected: u16 = 1;
        let mut seen = Vec::new();
        for n in 0..PUBLISHES {
            let p = read_packet(&mut reader).unwrap();
            assert_eq!(p[..5], hex("3206000174")[..], "publish {n}");
            let pid = u16::from_be_bytes([p[5], p[6]]);
            assert_eq!(pid, expected, "packet id of publish {n}");
            assert_ne!(pid, 0, "packet id 0 is forbidden");
            if n >= PUBLISHES - 3 {
                seen.push(to_hex(&p));
            }
            s.write_all(&[0x40, 0x02, p[5], p[6]]).unwrap();
            expected = if expected == u16::MAX {
                1
            } else {
                expected + 1
            };
        }
        // The last three on the wire: 65534, 65535, then 1.
        assert_eq!(
            seen,
            vec!["3206000174fffe61", "3206000174ffff61", "3206000174000161"]
        );
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| read_packet(&mut reader).ok()).collect();
        assert_eq!(rest, vec![hex("e000")]);
    });
    let addr = broker.addr;
    let elapsed = run_in_thread_within(Duration::from_secs(120), move || {
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let mut client = std_client(&mut tx, &mut rx, hostile_options(Options::new(CLIENT_ID)));
        client.connect(addr).unwrap();
        let start = Instant::now();
        for n in 0..PUBLISHES {
            client
                .publish(b"t", b"a", false, QoS::AtLeastOnce)
                .unwrap_or_else(|e| {
                    panic!("publish {n} (packet id {}): {e:?}", client.next_packet_id())
                });
        }
        let elapsed = start.elapsed();
        assert_eq!(client.next_packet_id(), 2);
        client.disconnect().unwrap();
        elapsed
    });
    broker.join();
    eprintln!("65 536 QoS 1 publishes took {elapsed:?}");
}

// ---------------------------------------------------------------------------
// 3. Password without user
// ---------------------------------------------------------------------------

#[test]
fn password_without_user_is_invalid_before_any_connection_is_made() {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut client = std_client(
            &mut tx,
            &mut rx,
            Options::new(CLIENT_ID).password(b"secret"),
        );
        assert_eq!(
            client.connect(addr),
            Err(Error::Invalid(EncodeError::PasswordWithoutUsername))
        );
        assert!(!client.is_connected());
    });
    // Give a stray connection time to land in the backlog, then check none did.
    thread::sleep(Duration::from_millis(100));
    match listener.accept() {
        Err(e) if e.kind() == ErrorKind::WouldBlock => {}
        Err(e) => panic!("accept failed: {e}"),
        Ok((_, peer)) => panic!("the client connected ({peer}) although its options were invalid"),
    }
}
