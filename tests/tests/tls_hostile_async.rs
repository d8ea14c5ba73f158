//! The async TLS path (`tls::TlsConnect` under umqtt-simple's async client,
//! over tokio sockets) against the hostile TLS 1.3 server of
//! `umqtt_tests::tls_server`: a representative set of the cases of
//! `tls_hostile.rs`, refused with the very same errors, which proves the
//! async front-end makes the same decisions as the blocking `TlsStack` (one
//! verifier, one handshake order, one provider, one error mapping).
//!
//! Plus what only the async path meets: the client's deadlines drop reads
//! in the middle of a record (a server that trickles its records), and the
//! next read must go on with the record instead of losing the stream.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use umqtt_simple::asynch::Client;
use umqtt_simple::{Error, Message, Options, QoS};
use umqtt_tests::tls_server::{
    self, DECRYPT_ERROR, Msg, Post, Script, TlsIdentity, TlsServer, Trickle, UNEXPECTED_MESSAGE,
    assert_refused, assert_session_goes_on,
};
use umqtt_tests::tokio_net::{TokioNet, run_async};
use umqtt_tests::{HANG_LIMIT, client_id, run_in_thread_within};
use umqtt_transports::std_tcp::StdTimer;
use umqtt_transports::tls::{
    CertError, HandshakeError, TlsBuffers, TlsConnect, TlsOptions, TlsStackError,
};

type TlsError = TlsStackError<std::io::Error>;

type Outcome = tls_server::Outcome<TlsError>;

#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    client_certificate: bool,
    /// The server name the client asks for, if not `localhost`.
    server_name: Option<&'static str>,
    /// How long each `wait_msg_for` waits for the echo (default 100 ms).
    wait_ms: Option<u32>,
    /// The payload published and echoed (default `still here`).
    payload: Option<&'static [u8]>,
}

fn session(test: &str, script: Script) -> Outcome {
    session_with(test, script, Setup::default())
}

fn session_with(test: &str, script: Script, setup: Setup) -> Outcome {
    let identity = TlsIdentity::generate(test);
    let server = TlsServer::start(&identity, script);
    let addr = server.addr();
    let id = client_id(test);
    let (connect, echoed) = run_in_thread_within(HANG_LIMIT, move || {
        run_async(HANG_LIMIT, client(addr, &identity, &id, setup))
    });
    let seen = server.seen();
    Outcome {
        connect,
        echoed,
        seen,
    }
}

/// The async client over `TlsConnect` over tokio: connect, then (if it
/// connected) one QoS 0 PUBLISH and its echo, then DISCONNECT.
async fn client(
    addr: SocketAddr,
    identity: &TlsIdentity,
    id: &str,
    setup: Setup,
) -> (Result<(), Error<TlsError>>, Vec<Vec<u8>>) {
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let mut options = TlsOptions::new(setup.server_name.unwrap_or("localhost")).ca(&identity.ca);
    if setup.client_certificate {
        options = options.client_certificate(&identity.cert, &identity.key_der);
    }
    let net = TokioNet;
    let tls = TlsConnect::new(&net, OsRng, &buffers, options);
    let (mut tx, mut rx) = (vec![0u8; 17 * 1024], vec![0u8; 17 * 1024]);
    let echoed: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let mut callback = |m: Message<'_>| echoed.borrow_mut().push(m.payload.to_vec());
    let mut client = Client::new(
        &tls,
        StdTimer::new(),
        &mut tx,
        &mut rx,
        Options::new(id).connect_timeout_ms(5_000),
    );
    client.set_callback(&mut callback);
    let connect = client.connect(addr).await.map(|_| ());
    if connect.is_ok() {
        client
            .publish(
                b"hostile/echo",
                setup.payload.unwrap_or(b"still here"),
                false,
                QoS::AtMostOnce,
            )
            .await
            .expect("publish after the handshake");
        let start = Instant::now();
        while echoed.borrow().is_empty() && start.elapsed() < Duration::from_secs(5) {
            client
                .wait_msg_for(setup.wait_ms.unwrap_or(100))
                .await
                .expect("wait for the echo");
        }
        client.disconnect().await.expect("disconnect");
    }
    drop(client);
    assert!(!buffers.is_lent(), "the connection returned the buffers");
    let echoed = echoed.borrow().clone();
    (connect, echoed)
}

use Msg::{Certificate, CertificateVerify, EncryptedExtensions, Finished};

#[test]
fn async_an_honest_server_completes_the_handshake_and_echoes_a_publish() {
    let outcome = session("atls-honest", Script::honest());
    assert_session_goes_on(&outcome);
    assert!(outcome.seen.client_finished);
}

#[test]
fn async_no_certificate_and_no_certificate_verify_is_refused() {
    let outcome = session(
        "atls-no-cert",
        Script::coalesced(vec![EncryptedExtensions, Finished]),
    );
    assert_refused(
        &outcome,
        TlsStackError::Handshake(HandshakeError::NoCertificate),
        None,
    );
}

#[test]
fn async_a_certificate_without_certificate_verify_is_refused() {
    let outcome = session(
        "atls-no-cv",
        Script::coalesced(vec![EncryptedExtensions, Certificate, Finished]),
    );
    assert_refused(
        &outcome,
        TlsStackError::Handshake(HandshakeError::NoCertificateVerify),
        None,
    );
}

#[test]
fn async_a_certificate_verify_before_the_certificate_is_refused() {
    let outcome = session(
        "atls-cv-first",
        Script::coalesced(vec![
            EncryptedExtensions,
            CertificateVerify,
            Certificate,
            Finished,
        ]),
    );
    assert_refused(
        &outcome,
        TlsStackError::Handshake(HandshakeError::CertificateVerifyBeforeCertificate),
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn async_a_forged_certificate_verify_is_refused() {
    let outcome = session(
        "atls-forged-cv",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            Msg::ForgedCertificateVerify,
            Finished,
        ]),
    );
    assert_refused(
        &outcome,
        TlsStackError::Handshake(HandshakeError::BadSignature),
        Some(DECRYPT_ERROR),
    );
}

#[test]
fn async_a_certificate_for_another_name_is_refused() {
    let outcome = session_with(
        "atls-wrong-name",
        Script::honest(),
        Setup {
            server_name: Some("broker.example.com"),
            ..Setup::default()
        },
    );
    assert_refused(
        &outcome,
        TlsStackError::Certificate(CertError::NameMismatch),
        None,
    );
}

#[test]
fn async_a_key_update_keeps_the_session_going() {
    let outcome = session(
        "atls-key-update",
        Script::honest().then(vec![Post::KeyUpdate { requested: false }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(outcome.seen.client_key_updates, Vec::<bool>::new());
}

#[test]
fn async_a_key_update_that_asks_for_one_back_gets_it_and_the_session_goes_on() {
    let outcome = session(
        "atls-key-update-requested",
        Script::honest().then(vec![Post::KeyUpdate { requested: true }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(outcome.seen.client_key_updates, [false]);
}

#[test]
fn async_a_post_handshake_certificate_request_is_refused() {
    let outcome = session(
        "atls-post-cr",
        Script::honest().then(vec![Post::CertificateRequest]),
    );
    match &outcome.connect {
        Err(Error::Network(e)) => assert_eq!(
            format!("{e:?}"),
            format!("{:?}", TlsError::UnexpectedMessage),
            "{e}"
        ),
        other => panic!("expected UnexpectedMessage, got {other:?}"),
    }
    assert_eq!(outcome.seen.mqtt_packets, [1], "only the CONNECT");
    assert_eq!(outcome.seen.alerts, [UNEXPECTED_MESSAGE]);
}

#[test]
fn async_an_empty_record_after_the_handshake_is_refused() {
    let outcome = session(
        "atls-post-empty",
        Script::honest().then(vec![Post::Inner(Vec::new())]),
    );
    match &outcome.connect {
        Err(Error::Network(e)) => assert_eq!(
            format!("{e:?}"),
            format!("{:?}", TlsError::MalformedRecord),
            "{e}"
        ),
        other => panic!("expected MalformedRecord, got {other:?}"),
    }
}

#[test]
fn async_a_server_asking_for_a_client_certificate_before_proving_who_it_is_gets_none() {
    let outcome = session_with(
        "atls-cr-unauthenticated",
        Script::coalesced(vec![EncryptedExtensions, Msg::CertificateRequest, Finished]),
        Setup {
            client_certificate: true,
            ..Setup::default()
        },
    );
    assert_refused(
        &outcome,
        TlsStackError::Handshake(HandshakeError::NoCertificate),
        None,
    );
    assert_eq!(
        outcome.seen.client_certificates,
        [0],
        "an empty Certificate"
    );
}

#[test]
fn async_a_server_that_proved_who_it_is_gets_the_client_certificate() {
    let outcome = session_with(
        "atls-cr-authenticated",
        Script::coalesced(vec![
            EncryptedExtensions,
            Msg::CertificateRequest,
            Certificate,
            CertificateVerify,
            Finished,
        ]),
        Setup {
            client_certificate: true,
            ..Setup::default()
        },
    );
    assert_session_goes_on(&outcome);
    assert_eq!(outcome.seen.client_certificates.len(), 1);
    assert!(
        outcome.seen.client_certificates[0] > 0,
        "a certificate sent"
    );
}

/// The echo's record comes in three pieces (2 bytes of its header, then 7
/// more bytes, then the rest), 350 ms apart, while the client waits in
/// `wait_msg_for(100)`: its deadline drops the read in the middle of the
/// header and in the middle of the body, several times. The next read goes
/// on with the record (the header is handed to embedded-tls again, the body
/// already read stays), so the echo arrives whole and the session goes on.
#[test]
fn async_a_read_cut_by_a_deadline_in_the_middle_of_a_record_goes_on_with_it() {
    let outcome = session(
        "atls-trickle",
        Script::honest().trickled(Trickle {
            cuts: vec![2, 9],
            pause_ms: 350,
        }),
    );
    assert_session_goes_on(&outcome);
}

/// The same with a record that nearly fills the read buffer, cut 1000
/// bytes into its body (after a smaller record moved embedded-tls's read
/// position on): the resumed read must ask only for what is missing of the
/// record. Before vendored patch 10 it asked for the whole record again,
/// reading past it and slicing past the buffer.
#[test]
fn async_a_large_record_cut_in_the_middle_of_its_body_goes_on_with_it() {
    static BIG: [u8; 16_000] = [0x5a; 16_000];
    let outcome = session_with(
        "atls-trickle-big",
        Script::honest().trickled(Trickle {
            cuts: vec![2, 9, 1000],
            pause_ms: 250,
        }),
        Setup {
            payload: Some(&BIG),
            ..Setup::default()
        },
    );
    assert!(outcome.connect.is_ok(), "{:?}", outcome.connect);
    assert_eq!(
        outcome.echoed,
        [BIG.to_vec()],
        "the 16 000-byte echo, whole"
    );
    assert_eq!(outcome.seen.mqtt_packets, [1, 3, 14]);
}
