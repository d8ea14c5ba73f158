//! The client over the portable std stack (`std::net` alone: the std stack on
//! Windows), selected here on every platform so that it runs on every test
//! run: a session through mosquitto, keepalive while idle, and a broker that
//! never answers.

use std::cell::RefCell;
use std::time::{Duration, Instant};

use umqtt_simple::{Client, Error, Message, Options, QoS, Waiting};
use umqtt_tests::{
    FakeBroker, HANG_LIMIT, Mosquitto, client_id, read_connect, run_in_thread_within,
};
use umqtt_transports::std_tcp::{PortableTcpStack, PortableWait, StdClock};

type PortableClient<'a> = Client<'a, PortableTcpStack, StdClock, PortableWait>;

fn portable_client<'a>(
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
) -> PortableClient<'a> {
    Client::new(PortableTcpStack::new(), StdClock::new(), tx, rx, options)
        .with_waiter(PortableWait::new())
}

#[test]
fn a_session_through_mosquitto_over_the_portable_stack() {
    let Some(broker) = Mosquitto::start("portable", "") else {
        return;
    };
    let id = client_id("portable");
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 16 * 1024]);
    let got = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| got.borrow_mut().push((m.payload.to_vec(), m.qos));
    let mut client = portable_client(&mut tx, &mut rx, Options::new(&id).keepalive(1));
    client.set_callback(&mut on_message);
    assert_eq!(client.connect(broker.addr), Ok(false));
    client.subscribe(b"portable/#", QoS::AtLeastOnce).unwrap();
    client
        .publish(b"portable/a", b"zero", false, QoS::AtMostOnce)
        .unwrap();
    client
        .publish(b"portable/b", b"one", false, QoS::AtLeastOnce)
        .unwrap();
    let big = vec![b'x'; 10_000];
    client
        .publish(b"portable/c", &big, false, QoS::AtLeastOnce)
        .unwrap();
    let start = Instant::now();
    while got.borrow().len() < 3 && start.elapsed() < Duration::from_secs(10) {
        client.wait_msg_for(100).unwrap();
    }
    // Idle across three keepalives: the client pings and stays connected.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(3_500) {
        client.wait_msg_for(500).unwrap();
    }
    assert!(client.is_connected());
    client.disconnect().unwrap();
    drop(client);
    let got = got.into_inner();
    assert_eq!(got.len(), 3, "{got:?}");
    assert_eq!(got[0], (b"zero".to_vec(), QoS::AtMostOnce));
    assert_eq!(got[1], (b"one".to_vec(), QoS::AtLeastOnce));
    assert_eq!(got[2].0.len(), 10_000);
}

#[test]
fn a_broker_that_never_answers_ends_connect_at_its_deadline_over_the_portable_stack() {
    let fake = FakeBroker::start(1, |_, mut stream| {
        read_connect(&mut stream);
        std::thread::sleep(Duration::from_secs(3));
    });
    let addr = fake.addr;
    let (result, took) = run_in_thread_within(HANG_LIMIT, move || {
        let (mut tx, mut rx) = (vec![0u8; 256], vec![0u8; 256]);
        let options = Options::new("portable-silent").connect_timeout_ms(1_000);
        let mut client = portable_client(&mut tx, &mut rx, options);
        let start = Instant::now();
        let result = client.connect(addr);
        (result, start.elapsed())
    });
    assert_eq!(result, Err(Error::Timeout(Waiting::ConnAck)));
    assert!(took >= Duration::from_millis(900), "gave up after {took:?}");
}
