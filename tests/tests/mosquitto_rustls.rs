//! The rustls engine (`umqtt_transports::rustls`, feature `tls-rustls`)
//! against mosquitto TLS listeners started here with certificates made by
//! `openssl`: a TLS-1.2-only broker with an RSA chain (capped through an
//! OpenSSL config, and checked with `openssl s_client -tls1_3` to really
//! refuse 1.3) reached by rustls and refused by embedded-tls with an error
//! naming TLS 1.2; the blocking and robust clients over it; refusals that
//! say what was wrong (unknown CA, name mismatch, expired, no version in
//! common). Skipped without mosquitto or openssl, unless
//! `UMQTT_REQUIRE_MOSQUITTO=1`. Only 127.0.0.1.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use embedded_nal::TcpClientStack;
use rand_core::OsRng;
use umqtt_robust::RobustClient;
use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_tests::pki::{Pki, Spec, openssl_available};
use umqtt_tests::{Mosquitto, client_id};
use umqtt_transports::rustls::{
    RustlsError, RustlsOptions, RustlsStack, RustlsWait, StdRustlsStack, TlsVersions,
};
use umqtt_transports::std_tcp::{StdClock, StdNetError, StdTcpStack, StdWait};
use umqtt_transports::tls::{SystemTime, TlsBuffers, TlsOptions, TlsStack, TlsWait};

/// A stack over the std stack with `options`.
fn stack(options: &RustlsOptions) -> StdRustlsStack {
    RustlsStack::new(StdTcpStack::new(), StdWait::new(), StdClock::new(), options)
        .expect("rustls configuration")
}

/// Connects a bare TLS socket (no MQTT) and returns it, or the error.
fn handshake(
    options: &RustlsOptions,
    addr: SocketAddr,
) -> Result<
    (
        StdRustlsStack,
        umqtt_transports::rustls::RustlsSocket<umqtt_transports::std_tcp::StdSocket, StdNetError>,
    ),
    RustlsError<StdNetError>,
> {
    let mut s = stack(options);
    let mut socket = s.socket()?;
    match s.connect(&mut socket, addr) {
        Ok(()) => Ok((s, socket)),
        Err(nb::Error::Other(e)) => Err(e),
        Err(nb::Error::WouldBlock) => panic!("connect returned WouldBlock"),
    }
}

#[test]
fn tls12_only_rsa_broker_is_reached_by_rustls_and_refused_by_embedded_tls_naming_tls12() {
    let test = "rustls-tls12-rsa";
    let Some((broker, pki)) = Mosquitto::tls12_only_rsa(test) else {
        return;
    };
    let ca = pki.der("ca");
    let options = RustlsOptions::new("localhost").ca_der(&ca);

    // The handshake alone: TLS 1.2, over the RSA chain.
    let (mut s, socket) = handshake(&options, broker.addr).expect("rustls handshake");
    assert_eq!(
        socket.protocol_version(),
        Some(umqtt_transports::rustls::ProtocolVersion::TLSv1_2)
    );
    println!(
        "rustls: {:?} {:?}",
        socket.protocol_version(),
        socket.cipher_suite().map(|c| c.suite())
    );
    s.close(socket).expect("close");

    // MQTT over it: subscribe, QoS 1 publish, the message comes back.
    let got = RefCell::new(Vec::new());
    let mut on_message = |m: Message<'_>| got.borrow_mut().push(m.payload.to_vec());
    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
    let id = client_id("rustls12");
    let mut client = Client::new(
        stack(&options),
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new(&id),
    )
    .with_waiter(RustlsWait);
    client.set_callback(&mut on_message);
    client
        .connect(broker.addr)
        .expect("MQTT connect over TLS 1.2");
    client
        .subscribe(b"rustls/12", QoS::AtLeastOnce)
        .expect("subscribe");
    client
        .publish(b"rustls/12", b"over TLS 1.2", false, QoS::AtLeastOnce)
        .expect("QoS 1 publish");
    let start = Instant::now();
    while got.borrow().is_empty() && start.elapsed() < Duration::from_secs(10) {
        client.wait_msg_for(500).expect("wait_msg");
    }
    client.disconnect().expect("disconnect");
    drop(client);
    assert_eq!(got.borrow().as_slice(), &[b"over TLS 1.2".to_vec()]);

    // rustls told to speak TLS 1.3 only: no version in common, said so.
    let e = handshake(&options.clone().versions(TlsVersions::Tls13), broker.addr)
        .expect_err("TLS 1.3 only must be refused");
    assert!(
        matches!(
            e,
            RustlsError::ProtocolVersion {
                offered: TlsVersions::Tls13
            }
        ),
        "{e:?}"
    );
    println!("rustls 1.3 only: {e}");

    // embedded-tls (TLS 1.3 only): refused, and the error names TLS 1.2.
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 4096]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let mut embedded = TlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        OsRng,
        &buffers,
        TlsOptions::new("localhost").ca(&ca),
    )
    .with_time(SystemTime)
    .with_cert_size::<16384>();
    let mut socket = embedded.socket().expect("socket");
    let e = match embedded.connect(&mut socket, broker.addr) {
        Err(nb::Error::Other(e)) => e,
        other => panic!("embedded-tls reached a TLS 1.2-only broker: {other:?}"),
    };
    let text = e.to_string();
    assert!(text.contains("TLS 1.2"), "{text}");
    println!("embedded-tls: {text}");
    let _ = TlsWait;
}

#[test]
fn refusals_say_what_was_wrong() {
    let test = "rustls-refusals";
    if !openssl_available(test) {
        return;
    }
    let pki = Pki::new(test);
    pki.ca("ca", Spec::ca("ca"))
        .ca("other", Spec::ca("other"))
        .issue("server", "ca", Spec::leaf("localhost"))
        .issue("expired", "ca", Spec::leaf("localhost").days(-1))
        .ca("self", Spec::ca("localhost").sans(&["DNS:localhost"]));
    let Some(broker) = Mosquitto::start(test, &pki.listener("server.crt", "server")) else {
        return;
    };
    let trusting = |ca: &str, name: &str| RustlsOptions::new(name).ca_der(&pki.der(ca));

    let e = handshake(&trusting("other", "localhost"), broker.addr).expect_err("unknown CA");
    assert!(matches!(e, RustlsError::UnknownCa), "{e:?}");
    assert!(e.to_string().contains("not trusted"), "{e}");

    let e = handshake(&trusting("ca", "broker.example"), broker.addr).expect_err("name mismatch");
    assert!(
        matches!(&e, RustlsError::NameMismatch { expected, .. } if expected == "broker.example"),
        "{e:?}"
    );
    assert!(
        e.to_string().contains("not valid for the server name"),
        "{e}"
    );
    println!("{e}");

    handshake(&trusting("ca", "localhost"), broker.addr).expect("the right CA and name");
    drop(broker);

    let Some(expired) = Mosquitto::start(test, &pki.listener("expired.crt", "expired")) else {
        return;
    };
    let e = handshake(&trusting("ca", "localhost"), expired.addr).expect_err("expired");
    assert!(matches!(e, RustlsError::Expired), "{e:?}");
    assert!(e.to_string().contains("expired"), "{e}");
    drop(expired);

    // A self-signed CA certificate as the server's own: webpki refuses it,
    // and the error says what to do.
    let Some(selfsigned) = Mosquitto::start(test, &pki.listener("self.crt", "self")) else {
        return;
    };
    let e =
        handshake(&trusting("self", "localhost"), selfsigned.addr).expect_err("CA as end entity");
    assert!(e.to_string().contains("CA certificate"), "{e}");
    println!("{e}");
}

#[test]
fn robust_client_rides_out_a_broker_restart_over_rustls() {
    let test = "rustls-robust";
    let Some((mut broker, pki)) = Mosquitto::tls_for_localhost(test, "") else {
        return;
    };
    let options = RustlsOptions::new("localhost").ca_der(&pki.der("ca"));
    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
    let id = client_id("rustls-robust");
    let inner = Client::new(
        stack(&options),
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new(&id),
    )
    .with_waiter(RustlsWait);
    let mut client: RobustClient<'_, StdRustlsStack, StdClock, RustlsWait> =
        RobustClient::from_client(inner);
    client.connect(broker.addr).expect("connect");
    client
        .publish(b"rustls/robust", b"before", false, QoS::AtLeastOnce)
        .expect("publish before the restart");
    broker.restart();
    client
        .publish(b"rustls/robust", b"after", false, QoS::AtLeastOnce)
        .expect("publish after the restart (reconnected over TLS)");
}

/// CPU time (user + system) of the calling thread, from
/// `/proc/thread-self/stat`, in clock ticks (1/100 s on Linux).
fn thread_cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses): state is
    // field 3, utime 14, stime 15.
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

#[test]
fn a_silent_server_ends_the_handshake_at_its_timeout() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // Accepts, then says nothing.
    let holder = std::thread::spawn(move || {
        let conn = listener.accept();
        std::thread::sleep(Duration::from_secs(3));
        drop(conn);
    });
    let options = RustlsOptions::new("localhost")
        .dangerously_skip_verification()
        .handshake_timeout_ms(500);
    let cpu = thread_cpu_ticks();
    let start = Instant::now();
    let e = handshake(&options, addr).expect_err("a silent server");
    let took = start.elapsed();
    assert!(matches!(e, RustlsError::HandshakeTimedOut), "{e:?}");
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_millis(1500),
        "took {took:?}"
    );
    // It waited in the kernel, not in a loop.
    if let (Some(before), Some(after)) = (cpu, thread_cpu_ticks()) {
        assert!(
            after - before <= 10,
            "{} ticks of CPU while waiting",
            after - before
        );
    }
    let _ = holder.join();
}

#[test]
fn a_server_that_is_not_tls_is_named_so() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    // An MQTT broker's plain port answering a CONNACK.
    let server = std::thread::spawn(move || {
        use std::io::Write;
        if let Ok((mut conn, _)) = listener.accept() {
            let _ = conn.write_all(&[0x20, 0x02, 0x00, 0x00]);
            std::thread::sleep(Duration::from_millis(500));
        }
    });
    let options = RustlsOptions::new("localhost").dangerously_skip_verification();
    let e = handshake(&options, addr).expect_err("not TLS");
    assert!(matches!(e, RustlsError::NotTls), "{e:?}");
    assert!(e.to_string().contains("not TLS"), "{e}");
    let _ = server.join();
}

#[test]
fn check_msg_does_not_block_and_an_idle_wait_sleeps() {
    let test = "rustls-idle";
    let Some((broker, pki)) = Mosquitto::tls_for_localhost(test, "") else {
        return;
    };
    let options = RustlsOptions::new("localhost").ca_der(&pki.der("ca"));
    let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
    let id = client_id("rustls-idle");
    let mut on_message = |_: Message<'_>| {};
    let mut client = Client::new(
        stack(&options),
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new(&id),
    )
    .with_waiter(RustlsWait);
    client.set_callback(&mut on_message);
    client.connect(broker.addr).expect("connect");
    client
        .subscribe(b"rustls/idle", QoS::AtMostOnce)
        .expect("subscribe");
    let start = Instant::now();
    for _ in 0..100 {
        client.check_msg().expect("check_msg");
    }
    assert!(
        start.elapsed() < Duration::from_millis(200),
        "100 check_msg took {:?}",
        start.elapsed()
    );
    let cpu = thread_cpu_ticks();
    let start = Instant::now();
    let got = client.wait_msg_for(1_000).expect("wait_msg_for");
    let took = start.elapsed();
    assert!(!got);
    assert!(
        took >= Duration::from_millis(950) && took < Duration::from_millis(1_500),
        "took {took:?}"
    );
    if let (Some(before), Some(after)) = (cpu, thread_cpu_ticks()) {
        assert!(
            after - before <= 10,
            "{} ticks of CPU while idle",
            after - before
        );
    }
    client.disconnect().expect("disconnect");
}

#[test]
fn async_client_reaches_the_tls12_only_rsa_broker_over_rustls_and_is_refused_an_unknown_ca() {
    use umqtt_simple::asynch::Client as AsyncClient;
    use umqtt_tests::tokio_net::{TokioNet, run_async};
    use umqtt_transports::rustls::RustlsConnect;
    use umqtt_transports::std_async::StdTimer;

    let test = "rustls-async-tls12";
    let Some((broker, pki)) = Mosquitto::tls12_only_rsa(test) else {
        return;
    };
    let ca = pki.der("ca");
    let got = RefCell::new(Vec::new());
    run_async(Duration::from_secs(60), async {
        let net = TokioNet;
        let options = RustlsOptions::new("localhost").ca_der(&ca);
        let tls = RustlsConnect::new(&net, &options).expect("rustls configuration");
        let mut on_message = |m: Message<'_>| got.borrow_mut().push(m.payload.to_vec());
        let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
        let id = client_id("rustls-async");
        let mut client =
            AsyncClient::new(&tls, StdTimer::new(), &mut tx, &mut rx, Options::new(&id));
        client.set_callback(&mut on_message);
        client
            .connect(broker.addr)
            .await
            .expect("MQTT connect over TLS 1.2");
        client
            .subscribe(b"rustls/async", QoS::AtLeastOnce)
            .await
            .expect("subscribe");
        client
            .publish(
                b"rustls/async",
                b"async over TLS 1.2",
                false,
                QoS::AtLeastOnce,
            )
            .await
            .expect("QoS 1 publish");
        let start = Instant::now();
        while got.borrow().is_empty() && start.elapsed() < Duration::from_secs(10) {
            client.wait_msg_for(500).await.expect("wait_msg");
        }
        client.disconnect().await.expect("disconnect");
        drop(client);

        // The same refusals as the blocking engine: a CA that did not sign
        // the broker's chain.
        let other = Pki::new("rustls-async-other");
        other.ca("other", Spec::ca("other"));
        let wrong = RustlsOptions::new("localhost").ca_der(&other.der("other"));
        let tls = RustlsConnect::new(&net, &wrong).expect("rustls configuration");
        let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
        let mut client =
            AsyncClient::new(&tls, StdTimer::new(), &mut tx, &mut rx, Options::new(&id));
        match client.connect(broker.addr).await {
            Err(umqtt_simple::Error::Network(RustlsError::UnknownCa)) => {}
            other => panic!("expected UnknownCa, got {other:?}"),
        }
        assert!(!client.is_connected());
    });
    assert_eq!(got.borrow().as_slice(), &[b"async over TLS 1.2".to_vec()]);
}
