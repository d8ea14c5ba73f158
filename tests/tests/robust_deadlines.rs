//! umqtt-robust against brokers that accept the connection and then fail it,
//! over real loopback TCP: each call ends by its deadline with an error that
//! says what it waited for, the failed connections are paced by the backoff
//! like refused ones, and once the broker behaves again the next call
//! completes normally.
//!
//! The broker is scripted (a half-broken broker is the point), and turns
//! into a well-behaved one when the test says so.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use umqtt_robust::RobustError;
use umqtt_simple::{Message, Options, QoS, Waiting};
use umqtt_tests::{CONNACK_ACCEPTED, FakeBroker, StdRobust, read_connect, read_packet, std_robust};

/// Every call's deadline in these tests.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// How late past its deadline a call may return on a busy machine.
const SLACK: Duration = Duration::from_millis(1_500);

/// How the broker fails a connection after accepting it.
#[derive(Debug, Clone, Copy)]
enum Failure {
    /// Never acknowledges anything.
    Silent,
    /// Sends a packet of a reserved type right after the CONNACK.
    Garbage,
    /// Announces a 268 MB message after the CONNACK and sends 4 KiB of it.
    HugeMessage,
}

impl Failure {
    /// The most connections a client backing off (waits of 50-100 ms after
    /// the first failure, doubling up to 400-800 ms) can make in one 2 s
    /// call against this failure. Reconnecting at once would make more: 5
    /// for silent ones (400 ms answer timeout each), hundreds for garbage.
    fn most_connections(self) -> usize {
        match self {
            Failure::Silent | Failure::HugeMessage => 4,
            // Waits of at least 50, 100, 200, 400, 400, 400 ms: 7 fit in 2 s.
            Failure::Garbage => 8,
        }
    }
}

/// A broker that fails every connection as `failure` says until `healed`
/// is set, then answers like a real one; counts the connections.
struct HalfBroken {
    fake: FakeBroker,
    healed: Arc<AtomicBool>,
    connections: Arc<AtomicUsize>,
}

impl HalfBroken {
    fn start(failure: Failure) -> Self {
        let healed = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicUsize::new(0));
        let (heal, count) = (Arc::clone(&healed), Arc::clone(&connections));
        let fake = FakeBroker::start(200, move |_, mut stream| {
            count.fetch_add(1, Ordering::SeqCst);
            read_connect(&mut stream);
            if stream.write_all(&CONNACK_ACCEPTED).is_err() {
                return;
            }
            if heal.load(Ordering::SeqCst) {
                serve(stream);
            } else {
                fail(stream, failure);
            }
        });
        HalfBroken {
            fake,
            healed,
            connections,
        }
    }

    fn connections(&self) -> usize {
        self.connections.load(Ordering::SeqCst)
    }
}

fn fail(mut stream: TcpStream, failure: Failure) {
    let sent = match failure {
        Failure::Silent => Ok(()),
        Failure::Garbage => stream.write_all(&[0xf0, 0x00]),
        Failure::HugeMessage => {
            let mut bytes = vec![b'x'; 4_096];
            bytes[..9].copy_from_slice(&[0x30, 0xff, 0xff, 0xff, 0x7f, 0x00, 0x02, b'f', b'b']);
            stream.write_all(&bytes)
        }
    };
    if sent.is_ok() {
        let mut sink = [0u8; 4_096];
        while matches!(stream.read(&mut sink), Ok(n) if n > 0) {}
    }
}

/// Answers like a broker: PUBACK, SUBACK (QoS granted as asked),
/// UNSUBACK, PINGRESP.
fn serve(mut stream: TcpStream) {
    while let Ok(packet) = read_packet(&mut stream) {
        let id = packet.get(2..4).map(|b| [b[0], b[1]]).unwrap_or_default();
        let answer = match packet[0] & 0xf0 {
            0x30 if packet[0] & 0x06 != 0 => {
                let topic_len = usize::from(u16::from_be_bytes([packet[2], packet[3]]));
                let at = 4 + topic_len;
                vec![0x40, 0x02, packet[at], packet[at + 1]]
            }
            0x80 => vec![0x90, 0x03, id[0], id[1], packet[packet.len() - 1]],
            0xa0 => vec![0xb0, 0x02, id[0], id[1]],
            0xc0 => vec![0xd0, 0x00],
            _ => continue,
        };
        if stream.write_all(&answer).is_err() {
            return;
        }
    }
}

type Robust<'a> = StdRobust<'a>;

/// Runs `call` against a connected client of `broker`, turned half-broken
/// after the first connection worked; checks that it ends by its deadline,
/// then heals the broker and checks that `again` completes.
fn ends_by_its_deadline_then_recovers<T: std::fmt::Debug>(
    failure: Failure,
    call: impl FnOnce(
        &mut Robust<'_>,
    ) -> Result<
        T,
        umqtt_robust::RobustClientError<umqtt_transports::std_tcp::StdTcpStack>,
    >,
    expected: impl FnOnce(&RobustError<umqtt_transports::std_tcp::StdNetError>) -> bool,
    again: impl FnOnce(&mut Robust<'_>),
) {
    let broker = HalfBroken::start(failure);
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut on_message = |_: Message<'_>| {};
    let options = Options::new("half-broken").ack_timeout_ms(400);
    let backoff = (100, 800);
    let call_timeout = CALL_TIMEOUT.as_millis() as u32;
    let mut client = std_robust(&mut tx, &mut rx, options, backoff, call_timeout);
    client.set_callback(&mut on_message);
    // The first connection is half-broken too: the client has never seen
    // this broker work.
    client.connect(broker.fake.addr).expect("CONNACK");
    let start = Instant::now();
    let result = call(&mut client);
    let took = start.elapsed();
    let err = result.expect_err("the broker never answered");
    println!(
        "{failure:?}: {err} after {took:?}, {} connections",
        broker.connections()
    );
    assert!(expected(&err), "{failure:?}: {err:?}");
    assert!(took <= CALL_TIMEOUT + SLACK, "{failure:?}: took {took:?}");
    assert!(
        broker.connections() <= failure.most_connections(),
        "{failure:?}: {} connections in 2 s",
        broker.connections()
    );
    assert!(
        client.failed_attempts() >= 1,
        "{failure:?}: counted as failed attempts"
    );

    broker.healed.store(true, Ordering::SeqCst);
    let start = Instant::now();
    again(&mut client);
    assert!(client.is_connected());
    assert_eq!(
        client.failed_attempts(),
        0,
        "the broker's answer shows the connection works"
    );
    println!(
        "{failure:?}: healed broker reached in {:?}",
        start.elapsed()
    );
}

#[test]
fn silent_puback_ends_publish_by_its_deadline_and_the_same_message_goes_out_later() {
    let unacked = std::cell::Cell::new(None);
    ends_by_its_deadline_then_recovers(
        Failure::Silent,
        |c| c.publish(b"t", b"m", false, QoS::AtLeastOnce),
        |e| match e {
            RobustError::TimedOut {
                waiting: Waiting::PubAck,
                unacked: Some(id),
                ..
            } => {
                unacked.set(Some(*id));
                true
            }
            _ => false,
        },
        |c| {
            let id = unacked.get().expect("the unacknowledged id");
            c.republish(b"t", b"m", false, id)
                .expect("PUBACK from the healed broker");
        },
    );
}

#[test]
fn silent_suback_and_unsuback_end_their_calls_by_the_deadline() {
    subscribe_ends_by_its_deadline_then_recovers(Failure::Silent);
    ends_by_its_deadline_then_recovers(
        Failure::Silent,
        |c| c.unsubscribe(b"a/b"),
        |e| {
            matches!(
                e,
                RobustError::TimedOut {
                    waiting: Waiting::UnsubAck,
                    ..
                }
            )
        },
        |c| c.unsubscribe(b"a/b").expect("UNSUBACK"),
    );
}

#[test]
fn silent_pingresp_is_paced_by_the_backoff_while_wait_msg_for_keeps_its_deadline() {
    let broker = HalfBroken::start(Failure::Silent);
    let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
    let mut on_message = |_: Message<'_>| {};
    let options = Options::new("silent-ping")
        .keepalive(1)
        .ping_timeout_ms(300);
    let mut client = std_robust(&mut tx, &mut rx, options, (400, 3_200), 60_000);
    client.set_callback(&mut on_message);
    client.connect(broker.fake.addr).expect("CONNACK");
    let start = Instant::now();
    assert_eq!(client.wait_msg_for(6_000), Ok(false));
    let took = start.elapsed();
    println!(
        "silent PINGRESP: {took:?}, {} connections",
        broker.connections()
    );
    assert!(took <= Duration::from_secs(6) + SLACK, "took {took:?}");
    // Each connection lives 1.3 s (ping after 1 s, 300 ms for the answer);
    // reconnecting at once would make 5 in 6 s, the backoff (200-400 ms,
    // then 400-800, then 800-1600) makes 3 or 4.
    assert!(
        broker.connections() <= 4,
        "{} connections",
        broker.connections()
    );
    assert!(client.failed_attempts() >= 2);
    broker.healed.store(true, Ordering::SeqCst);
    client.ping().expect("PINGREQ");
    assert!(
        client
            .wait_msg_for(3_000)
            .expect("PINGRESP from the healed broker")
    );
    assert_eq!(client.failed_attempts(), 0);
}

/// [`ends_by_its_deadline_then_recovers`] for a subscribe, which waits for
/// its SUBACK.
fn subscribe_ends_by_its_deadline_then_recovers(failure: Failure) {
    ends_by_its_deadline_then_recovers(
        failure,
        |c| c.subscribe(b"fb/#", QoS::AtLeastOnce),
        |e| {
            matches!(
                e,
                RobustError::TimedOut {
                    waiting: Waiting::SubAck,
                    ..
                }
            )
        },
        |c| {
            c.subscribe(b"fb/#", QoS::AtLeastOnce).expect("SUBACK");
        },
    );
}

#[test]
fn garbage_right_after_connack_ends_subscribe_by_its_deadline() {
    subscribe_ends_by_its_deadline_then_recovers(Failure::Garbage);
}

#[test]
fn a_huge_message_never_sent_whole_ends_subscribe_by_its_deadline() {
    subscribe_ends_by_its_deadline_then_recovers(Failure::HugeMessage);
}

#[test]
fn async_silent_puback_ends_publish_by_its_deadline_backed_off_and_the_same_message_goes_out_later()
{
    use umqtt_tests::tokio_net::{TokioNet, async_robust, run_async};
    let broker = HalfBroken::start(Failure::Silent);
    run_async(umqtt_tests::HANG_LIMIT, async {
        let net = TokioNet;
        let (mut tx, mut rx) = (vec![0u8; 512], vec![0u8; 512]);
        let options = Options::new("async-half-broken").ack_timeout_ms(400);
        let call_timeout = CALL_TIMEOUT.as_millis() as u32;
        let mut client = async_robust(&net, (&mut tx, &mut rx), options, (100, 800), call_timeout);
        client.connect(broker.fake.addr).await.expect("CONNACK");
        let start = Instant::now();
        let result = client.publish(b"t", b"m", false, QoS::AtLeastOnce).await;
        let took = start.elapsed();
        println!(
            "async silent PUBACK: {result:?} after {took:?}, {} connections",
            broker.connections()
        );
        let Err(RobustError::TimedOut {
            waiting: Waiting::PubAck,
            unacked: Some(id),
            ..
        }) = result
        else {
            panic!("{result:?}");
        };
        assert!(took <= CALL_TIMEOUT + SLACK, "took {took:?}");
        assert!(
            broker.connections() <= Failure::Silent.most_connections(),
            "{} connections in 2 s",
            broker.connections()
        );
        assert!(client.failed_attempts() >= 1, "counted as failed attempts");

        broker.healed.store(true, Ordering::SeqCst);
        client
            .republish(b"t", b"m", false, id)
            .await
            .expect("PUBACK from the healed broker");
        assert!(client.is_connected());
        assert_eq!(client.failed_attempts(), 0);
    });
}
