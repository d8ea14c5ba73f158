//! One TLS session over smoltcp (a `no_std`-style stack that moves only when
//! polled): the "TLS over any stack" claim on the porting guide's example.
//! mosquitto with a TLS listener in a network namespace of its own (see
//! `umqtt_tests::netns`); certificates made by `openssl`.

use std::time::{Duration, Instant};

use rand_core::OsRng;
use support::{STACK_IP, TAP, broker};
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_smoltcp_example::{TapConfig, open};
use umqtt_tests::netns as support;
use umqtt_tests::pki::{Pki, Spec};
use umqtt_transports::tls::{SystemTime, TlsBuffers, TlsOptions, TlsStack, TlsWait};

#[test]
fn tls_session_over_smoltcp() {
    let Some(ns) = support::enter("tls_session_over_smoltcp") else {
        return;
    };
    // A P-256 CA and a server certificate for `broker.local`.
    let pki = Pki::new("tls_session_over_smoltcp");
    pki.ca("ca", Spec::ca("ca"))
        .issue("server", "ca", Spec::leaf("broker.local"));
    let _mosquitto =
        support::Mosquitto::start_with(&ns.dir, broker(), &pki.listener("server.crt", "server"));
    let ca = pki.der("ca");

    let tap = open(&TapConfig::new(TAP, STACK_IP, 24)).expect("open the TAP device");
    // Records of at most 4 096 bytes (mosquitto agrees): a 4 352-byte read
    // buffer, as on a microcontroller.
    let (mut read, mut write) = (vec![0u8; 4352], vec![0u8; 1024]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let options = TlsOptions::new("broker.local")
        .ca(&ca)
        .max_fragment_length(umqtt_transports::tls::MaxFragmentLength::Bits12);
    let stack = TlsStack::new(tap.stack, tap.waiter, tap.clock, OsRng, &buffers, options)
        .with_time(SystemTime);

    let received = std::cell::RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| received.borrow_mut().push(m.payload.to_vec());
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 8192]);
    let mut client = Client::new(
        stack,
        tap.clock,
        &mut tx,
        &mut rx,
        Options::new("smoltcp-tls").keepalive(1),
    )
    .with_waiter(TlsWait);
    client.set_callback(&mut on_message);
    client
        .connect(broker())
        .expect("connect over TLS over smoltcp");
    client
        .subscribe(b"umqtt/tls/#", QoS::AtLeastOnce)
        .expect("subscribe");
    let big: Vec<u8> = (0..6000u32).map(|i| (i % 251) as u8).collect();
    client
        .publish(b"umqtt/tls/a", b"small", false, QoS::AtLeastOnce)
        .expect("publish");
    client
        .publish(b"umqtt/tls/b", &big, false, QoS::AtLeastOnce)
        .expect("publish 6 kB");
    let start = Instant::now();
    while received.borrow().len() < 2 {
        assert!(
            start.elapsed() < Duration::from_secs(10),
            "messages did not come back"
        );
        client.wait_msg_for(500).expect("wait_msg_for");
    }
    // Idle across keepalive periods: PINGREQ/PINGRESP over TLS over smoltcp.
    let idle = Instant::now();
    while idle.elapsed() < Duration::from_millis(2500) {
        client.wait_msg_for(500).expect("idle");
    }
    assert_eq!(*received.borrow(), vec![b"small".to_vec(), big]);
    client.disconnect().expect("disconnect");
}
