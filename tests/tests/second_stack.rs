//! The client is generic over the stack: the same code runs over
//! std-embedded-nal (a second, independent `TcpClientStack`), with DNS through
//! its `Dns` implementation.

use std::time::{Duration, Instant};

use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_tests::{InProcessBroker, Inbox, client_id};
use umqtt_transports::std_tcp::StdClock;

#[test]
fn publish_and_receive_over_std_embedded_nal_with_a_host_name() {
    let broker = InProcessBroker::start();
    let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
    let inbox = Inbox::default();
    let mut on_message = |m: Message<'_>| inbox.push(m);
    let id = client_id("second-stack");
    let options = Options::new(&id);
    let mut client = Client::new(
        std_embedded_nal::Stack,
        StdClock::new(),
        &mut tx,
        &mut rx,
        options,
    );
    // std-embedded-nal reports end of file as Ok(0).
    client.set_zero_read_is_eof(true);
    client.set_callback(&mut on_message);
    client
        .connect_host("localhost", broker.addr.port())
        .unwrap();
    client.subscribe(b"stack/two", QoS::AtLeastOnce).unwrap();
    client
        .publish(b"stack/two", b"generic", false, QoS::AtLeastOnce)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while inbox.is_empty() && Instant::now() < deadline {
        client.wait_msg_for(100).unwrap();
    }
    assert_eq!(inbox.payloads(), vec![b"generic".to_vec()]);
    client.disconnect().unwrap();
}
