//! How the client reads what a scripted broker sends: a message while it
//! waits for a PUBACK, a refused subscription, many packets in one segment or
//! one byte per segment, messages larger than the receive buffer, and a
//! burst of 100 000 messages while it publishes at QoS 1.
//!
//! Every client runs in its own thread under a time limit
//! ([`run_in_thread_within`](umqtt_tests::run_in_thread_within) and
//! [`HANG_LIMIT`](umqtt_tests::HANG_LIMIT)), so a hang fails the test
//! instead of blocking the suite. The scripted brokers are in the support
//! crate (`tests/src/scripted.rs`).

use std::cell::Cell;
use std::io::{BufReader, Write};
use std::net::TcpStream;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use umqtt_simple::{Error, Message, Options, QoS};
use umqtt_tests::*;

// ---------------------------------------------------------------------------
// 1. Anchor 7: an unexpected packet while waiting for PUBACK
// ---------------------------------------------------------------------------

#[test]
fn incoming_qos1_publish_while_awaiting_puback_is_delivered_acked_and_stream_stays_in_sync() {
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        let first = read_packet(&mut s).unwrap();
        assert_eq!(
            to_hex(&first),
            "32120009666f6f5f746f706963000168656c6c6f",
            "first QoS 1 PUBLISH"
        );
        // Before answering: a QoS 1 message from the broker.
        s.write_all(&hex("320b0005696e2f71311234 6869")).unwrap();
        let ack = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&ack), "40021234", "PUBACK for the broker's message");
        s.write_all(&hex("40020001")).unwrap();
        let second = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&second), "32120009666f6f5f746f7069630002616761696e");
        s.write_all(&hex("40020002")).unwrap();
        let rest = drain(&mut s);
        assert_eq!(rest, vec![hex("e000")]);
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let mut during_publish = Vec::new();
        let (mut client, inbox) = parts.client_with_inbox(|o| o.ack_timeout_ms(5_000));
        client.connect(addr).unwrap();
        client
            .publish(b"foo_topic", b"hello", false, QoS::AtLeastOnce)
            .expect("first QoS 1 publish");
        during_publish.extend(inbox.all());
        client
            .publish(b"foo_topic", b"again", false, QoS::AtLeastOnce)
            .expect("second QoS 1 publish");
        client.disconnect().unwrap();
        assert_eq!(
            during_publish,
            vec![Received {
                topic: b"in/q1".to_vec(),
                payload: b"hi".to_vec(),
                qos: QoS::AtLeastOnce,
                retain: false
            }],
            "the message arrives in the callback inside publish()"
        );
        assert_eq!(inbox.len(), 1);
    });
    broker.join();
}

// ---------------------------------------------------------------------------
// 2. SUBSCRIBE bytes and a refused subscription
// ---------------------------------------------------------------------------

#[test]
fn suback_0x80_is_subscribe_refused_and_connection_stays_usable() {
    let broker = FakeBroker::start(1, |_, mut s| {
        accept_connect(&mut s);
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820e00010009666f6f5f746f70696300");
        s.write_all(&hex("9003000180")).unwrap();
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820e00020009666f6f5f746f70696300");
        s.write_all(&hex("9003000200")).unwrap();
        // Two filters, the second refused.
        let sub = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&sub), "820a00030001610000016201");
        s.write_all(&hex("900400030180")).unwrap();
        let publish = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&publish), "3206000174000478");
        s.write_all(&hex("40020004")).unwrap();
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let mut on_message = |_: Message<'_>| {};
        let mut client = std_client(&mut tx, &mut rx, hostile_options(Options::new(CLIENT_ID)));
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce),
            Err(Error::SubscribeRefused { index: 0 })
        );
        assert!(
            client.is_connected(),
            "a refused subscription keeps the connection"
        );
        assert_eq!(
            client.subscribe(b"foo_topic", QoS::AtMostOnce),
            Ok(QoS::AtMostOnce)
        );
        let mut granted = [None, None];
        let result = client.subscribe_many(
            &[(&b"a"[..], QoS::AtMostOnce), (&b"b"[..], QoS::AtLeastOnce)],
            &mut granted,
        );
        assert_eq!(result, Err(Error::SubscribeRefused { index: 1 }));
        assert_eq!(granted, [Some(QoS::AtLeastOnce), None]);
        assert!(client.is_connected());
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("publish after refusals");
        client.disconnect().unwrap();
    });
    broker.join();
}

// ---------------------------------------------------------------------------
// 3. Segmentation: many packets in one segment, one byte per segment
// ---------------------------------------------------------------------------

#[test]
fn connack_and_several_publishes_in_one_segment_are_all_delivered() {
    let broker = FakeBroker::start(1, |_, mut s| {
        let burst = hex("20020000\
             3008 0003 612f31 6f6e65\
             3008 0003 612f32 74776f\
             310a 0003 612f33 7468726565\
             320b 0003 612f34 0007 666f7572");
        answer_connect(&mut s, &burst);
        assert_eq!(
            to_hex(&read_packet(&mut s).unwrap()),
            "40020007",
            "PUBACK of the QoS 1 message"
        );
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let (mut client, inbox) = parts.client_with_inbox(|o| o);
        client
            .connect(addr)
            .expect("CONNACK at the front of a burst");
        for i in 0..4 {
            assert_eq!(
                client.wait_msg_for(5_000),
                Ok(true),
                "message {i} of the burst"
            );
        }
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    let summary: Vec<(Vec<u8>, Vec<u8>, QoS, bool)> = got
        .into_iter()
        .map(|m| (m.topic, m.payload, m.qos, m.retain))
        .collect();
    assert_eq!(
        summary,
        vec![
            (b"a/1".to_vec(), b"one".to_vec(), QoS::AtMostOnce, false),
            (b"a/2".to_vec(), b"two".to_vec(), QoS::AtMostOnce, false),
            (b"a/3".to_vec(), b"three".to_vec(), QoS::AtMostOnce, true),
            (b"a/4".to_vec(), b"four".to_vec(), QoS::AtLeastOnce, false),
        ]
    );
}

#[test]
fn broker_writing_one_byte_per_segment_still_works() {
    fn trickle(s: &mut TcpStream, bytes: &[u8]) {
        for b in bytes {
            s.write_all(&[*b]).unwrap();
            s.flush().unwrap();
            thread::sleep(Duration::from_millis(3));
        }
    }
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        read_connect(&mut s);
        trickle(&mut s, &hex("20020100")); // session present
        trickle(&mut s, &hex("320b0005696e2f71311234 6869"));
        assert_eq!(to_hex(&read_packet(&mut s).unwrap()), "40021234");
        let publish = read_packet(&mut s).unwrap();
        assert_eq!(to_hex(&publish), "3206000174000178");
        trickle(&mut s, &hex("40020001"));
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 1024, 1024);
        let (mut client, inbox) =
            parts.client_with_inbox(|o| hostile_options(o).clean_session(false));
        assert_eq!(
            client.connect(addr),
            Ok(true),
            "session present read from a trickled CONNACK"
        );
        assert_eq!(client.wait_msg_for(5_000), Ok(true));
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("PUBACK trickled byte by byte");
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"in/q1".to_vec(),
            payload: b"hi".to_vec(),
            qos: QoS::AtLeastOnce,
            retain: false
        }]
    );
}

// ---------------------------------------------------------------------------
// 4. A message larger than the receive buffer
// ---------------------------------------------------------------------------

#[test]
fn message_larger_than_rx_buffer_is_drained_acked_and_the_next_one_arrives() {
    let big = qos1_publish(b"big", 0x0101, &[0xab; 5000]);
    let big_len = big.len();
    let broker = FakeBroker::start(1, move |_, mut s| {
        accept_connect(&mut s);
        // The big one and a small one in one write: the small one starts in
        // the same segment as the big one's tail.
        let mut both = big.clone();
        both.extend(hex("3009 0005 736d616c6c 6f6b"));
        s.write_all(&both).unwrap();
        assert_eq!(
            to_hex(&read_packet(&mut s).unwrap()),
            "40020101",
            "PUBACK for the skipped message"
        );
        assert_eq!(drain(&mut s), vec![hex("e000")]);
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        let mut parts = ClientParts::with_id(CLIENT_ID, 256, 256);
        let (mut client, inbox) = parts.client_with_inbox(hostile_options);
        client.connect(addr).unwrap();
        assert_eq!(
            client.wait_msg_for(5_000),
            Err(Error::MessageTooLarge {
                size: big_len,
                capacity: 256
            })
        );
        assert!(
            client.is_connected(),
            "a skipped message keeps the connection"
        );
        assert_eq!(client.skipped_messages(), 1);
        assert_eq!(
            client.wait_msg_for(5_000),
            Ok(true),
            "the small message after the big one"
        );
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"small".to_vec(),
            payload: b"ok".to_vec(),
            qos: QoS::AtMostOnce,
            retain: false
        }]
    );
}

#[test]
fn flood_of_messages_larger_than_rx_buffer_each_is_too_large_qos1_acked_then_small_one_arrives() {
    const BIG: u16 = 200;
    const RX: usize = 512;
    // QoS 0 and QoS 1 mixed: every third message is QoS 0.
    fn packet_id(i: u16) -> Option<u16> {
        (i % 3 != 2).then_some(0x0100 + i)
    }
    fn big(i: u16) -> Vec<u8> {
        publish_packet(
            b"big",
            packet_id(i),
            &[u8::try_from(i % 256).unwrap(); 2_000],
        )
    }
    let sizes: Vec<usize> = (0..BIG).map(|i| big(i).len()).collect();
    let broker = FakeBroker::start(1, |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // About 400 KB in one write, the small message right behind the last
        // big one: far more than the client's 512-byte receive buffer.
        let mut flood: Vec<u8> = (0..BIG).flat_map(big).collect();
        flood.extend(hex("3009 0005 736d616c6c 6f6b"));
        s.write_all(&flood).unwrap();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        for i in (0..BIG).filter(|&i| packet_id(i).is_some()) {
            let pid = packet_id(i).unwrap();
            assert_eq!(
                to_hex(&read_packet(&mut reader).unwrap()),
                format!("4002{pid:04x}"),
                "PUBACK of skipped message {i}, in order"
            );
        }
        // The stream is still in sync: a QoS 1 publish after the flood.
        assert_eq!(to_hex(&read_packet(&mut reader).unwrap()), PUBLISH_T_X_QOS1);
        s.write_all(&hex("40020001")).unwrap();
        let rest: Vec<Vec<u8>> = std::iter::from_fn(|| read_packet(&mut reader).ok()).collect();
        assert_eq!(rest, vec![hex("e000")], "nothing but DISCONNECT after that");
    });
    let addr = broker.addr;
    let got = run_in_thread_within(HANG_LIMIT, move || {
        // The client's whole memory for the flood: these two fixed buffers.
        let mut parts = ClientParts::with_id(CLIENT_ID, 256, RX);
        let (mut client, inbox) = parts.client_with_inbox(hostile_options);
        client.connect(addr).unwrap();
        for (i, size) in sizes.into_iter().enumerate() {
            assert_eq!(
                client.wait_msg(),
                Err(Error::MessageTooLarge { size, capacity: RX }),
                "big message {i}"
            );
            assert!(client.is_connected(), "connected after big message {i}");
        }
        assert_eq!(client.skipped_messages(), u32::from(BIG));
        assert!(inbox.is_empty(), "no big message reached the callback");
        client
            .wait_msg()
            .expect("the small message after the flood");
        client
            .publish(b"t", b"x", false, QoS::AtLeastOnce)
            .expect("QoS 1 publish after the flood");
        assert!(client.is_connected());
        client.disconnect().unwrap();
        inbox.all()
    });
    broker.join();
    assert_eq!(
        got,
        vec![Received {
            topic: b"small".to_vec(),
            payload: b"ok".to_vec(),
            qos: QoS::AtMostOnce,
            retain: false
        }]
    );
}

// ---------------------------------------------------------------------------
// 5. A burst of small messages while the client publishes QoS 1
// ---------------------------------------------------------------------------

#[test]
fn burst_of_100_000_messages_while_publishing_qos1_loses_none_keeps_order_and_every_publish_succeeds()
 {
    const MESSAGES: u32 = 100_000;
    const CHUNK: u32 = 1_000;
    const CHUNKS: u32 = MESSAGES / CHUNK;
    const PUBLISHES: u16 = 100;
    /// QoS 0 message `n`: topic `n`, payload `n` as four bytes, 9 bytes in all.
    fn numbered(n: u32) -> Vec<u8> {
        publish_packet(b"n", None, &n.to_be_bytes())
    }
    /// Messages `c * CHUNK ..` of chunk `c`, for one write.
    fn chunk(c: u32) -> Vec<u8> {
        (c * CHUNK..(c + 1) * CHUNK).flat_map(numbered).collect()
    }
    /// The client's QoS 1 publish `k`: topic `q1`, payload `k`, packet id `k + 1`.
    fn client_publish(k: u16) -> Vec<u8> {
        qos1_publish(b"q1", k + 1, &k.to_be_bytes())
    }

    let (report_tx, report) = mpsc::channel();
    let broker = FakeBroker::start(1, move |_, mut s| {
        s.set_nodelay(true).ok();
        accept_connect(&mut s);
        // The client's packets are read in a thread of their own, so that
        // this one can write floods meanwhile.
        let (packets_tx, packets) = mpsc::channel::<Vec<u8>>();
        let mut reader = BufReader::new(s.try_clone().unwrap());
        let reader_thread = thread::spawn(move || {
            while let Ok(p) = read_packet(&mut reader) {
                if packets_tx.send(p).is_err() {
                    break;
                }
            }
        });
        let answered = Cell::new(0u16);
        let puback = |p: Vec<u8>| {
            let k = answered.get();
            assert_eq!(
                to_hex(&p),
                to_hex(&client_publish(k)),
                "the client's publish {k}"
            );
            answered.set(k + 1);
            // 32 08, topic 0002 "q1", then the packet id.
            [0x40, 0x02, p[6], p[7]]
        };
        let (mut acks_between, mut acks_behind) = (0u32, 0u32);
        // The first 50 000: each PUBLISH that arrived is answered at once,
        // before the next chunk.
        for c in 0..CHUNKS / 2 {
            let mut out = Vec::new();
            for p in packets.try_iter() {
                out.extend(puback(p));
                acks_between += 1;
            }
            out.extend(chunk(c));
            s.write_all(&out).unwrap();
        }
        // The next 49 000: each PUBLISH is answered only behind one more
        // chunk, so the PUBACK reaches the client after 1 000 messages.
        for c in CHUNKS / 2..CHUNKS - 1 {
            let mut waiting: Vec<Vec<u8>> = packets.try_iter().collect();
            if waiting.is_empty() && answered.get() < PUBLISHES {
                waiting.push(
                    packets
                        .recv_timeout(WAIT)
                        .expect("the client's next publish"),
                );
            }
            let mut out = chunk(c);
            for p in waiting {
                out.extend(puback(p));
                acks_behind += 1;
            }
            s.write_all(&out).unwrap();
        }
        // Publishes still to come are answered as they arrive.
        while answered.get() < PUBLISHES {
            let p = packets
                .recv_timeout(WAIT)
                .expect("the client's next publish");
            s.write_all(&puback(p)).unwrap();
        }
        // The last chunk comes after every PUBACK: only wait_msg takes it in.
        s.write_all(&chunk(CHUNKS - 1)).unwrap();
        let rest: Vec<Vec<u8>> = packets.iter().collect();
        assert_eq!(rest, vec![hex("e000")], "nothing but DISCONNECT after that");
        reader_thread.join().unwrap();
        report_tx.send((acks_between, acks_behind)).unwrap();
    });
    let addr = broker.addr;
    let (after_publishes, received, elapsed) = run_in_thread_within(HANG_LIMIT, move || {
        let next = Cell::new(0u32);
        let mut on_message = |m: Message<'_>| {
            assert_eq!((m.topic, m.qos), (&b"n"[..], QoS::AtMostOnce));
            let n = u32::from_be_bytes(m.payload.try_into().expect("a 4-byte number"));
            assert_eq!(n, next.get(), "message numbers strictly increase by one");
            next.set(n + 1);
        };
        let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
        let options = Options::new(CLIENT_ID).ack_timeout_ms(10_000);
        let mut client = std_client(&mut tx, &mut rx, options);
        client.set_callback(&mut on_message);
        client.connect(addr).unwrap();
        let start = Instant::now();
        for k in 0..PUBLISHES {
            client
                .publish(b"q1", &k.to_be_bytes(), false, QoS::AtLeastOnce)
                .unwrap_or_else(|e| panic!("publish {k}, after {} messages: {e:?}", next.get()));
        }
        let after_publishes = next.get();
        while next.get() < MESSAGES {
            client
                .wait_msg()
                .unwrap_or_else(|e| panic!("wait_msg after {} messages: {e:?}", next.get()));
        }
        let elapsed = start.elapsed();
        assert!(client.is_connected());
        client.disconnect().unwrap();
        (after_publishes, next.get(), elapsed)
    });
    broker.join();
    let (acks_between, acks_behind) = report.recv().expect("the broker's report");
    eprintln!(
        "{MESSAGES} messages and {PUBLISHES} QoS 1 publishes in {elapsed:?}; \
         PUBACKs between chunks: {acks_between}, behind a chunk: {acks_behind}"
    );
    assert_eq!(received, MESSAGES, "every message arrived");
    // The client has one publish in flight at a time, so at most one PUBACK
    // goes out between two of the first 50 chunks, and each of the next 49
    // chunks waits for a publish and carries its PUBACK behind it.
    assert_eq!(acks_behind, CHUNKS / 2 - 1, "PUBACKs behind a chunk");
    // The last PUBACK comes after chunk 98 and before chunk 99: the last
    // publish returns with exactly 99 000 messages delivered.
    assert_eq!(after_publishes, MESSAGES - CHUNK);
}
