//! The TLS client against a hostile TLS 1.3 server (the scripted server of
//! `umqtt_tests::tls_server`, on loopback): each way a server can leave out,
//! reorder, repeat or corrupt its handshake messages, and each
//! post-handshake message, once.
//!
//! - A handshake the server did not authenticate (a Certificate that passed,
//!   then a CertificateVerify over it that passed, then Finished) ends the
//!   connect with the error that names what was wrong, and the server
//!   receives no application data: not a byte of MQTT left the client.
//! - No server bytes make the client panic (a panic fails the test: the
//!   client runs in `run_in_thread_within`, which re-raises it).
//! - KeyUpdate (with and without update_requested) and NewSessionTicket keep
//!   the session going: a PUBLISH still comes back; a post-handshake
//!   CertificateRequest, an empty record or a zero-length handshake record
//!   end it with a named error and an unexpected_message alert.

use std::cell::RefCell;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use embedded_nal::TcpClientStack;
use rand_core::OsRng;
use umqtt_simple::{Client, Error, Message, Options, QoS};
use umqtt_tests::tls_server::{
    self, DECRYPT_ERROR, ILLEGAL_PARAMETER, Msg, Post, Rec, Script, TlsIdentity, TlsServer,
    UNEXPECTED_MESSAGE, assert_refused, assert_session_goes_on,
};
use umqtt_tests::{HANG_LIMIT, client_id, run_in_thread_within};
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
use umqtt_transports::tls::{
    CertError, HandshakeError, TlsBuffers, TlsOptions, TlsStack, TlsStackError, TlsWait,
};

type TlsError = TlsStackError<<StdTcpStack as TcpClientStack>::Error>;

type Outcome = tls_server::Outcome<TlsError>;

/// How the client is set up, beyond trusting the server's CA.
#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    /// Present the server's own certificate and key as a client
    /// certificate, when asked for one.
    client_certificate: bool,
    /// `TlsOptions::handshake_timeout_ms`, if not the default.
    handshake_timeout_ms: Option<u32>,
}

/// Serves `script` and runs an MQTT client over `TlsStack` against it:
/// connect, then (if it connected) publish one QoS 0 message and wait for
/// the server's echo of it.
fn session(test: &str, script: Script) -> Outcome {
    session_with(test, script, Setup::default())
}

/// [`session`] with a client set up as `setup` says.
fn session_with(test: &str, script: Script, setup: Setup) -> Outcome {
    let identity = TlsIdentity::generate(test);
    let server = TlsServer::start(&identity, script);
    let addr = server.addr();
    let id = client_id(test);
    let (connect, echoed) =
        run_in_thread_within(HANG_LIMIT, move || client(addr, &identity, &id, setup));
    let seen = server.seen();
    Outcome {
        connect,
        echoed,
        seen,
    }
}

fn client(
    addr: SocketAddr,
    identity: &TlsIdentity,
    id: &str,
    setup: Setup,
) -> (Result<(), Error<TlsError>>, Vec<Vec<u8>>) {
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let mut options = TlsOptions::new("localhost").ca(&identity.ca);
    if setup.client_certificate {
        options = options.client_certificate(&identity.cert, &identity.key_der);
    }
    if let Some(ms) = setup.handshake_timeout_ms {
        options = options.handshake_timeout_ms(ms);
    }
    let stack = TlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        OsRng,
        &buffers,
        options,
    );
    let (mut tx, mut rx) = (vec![0u8; 1024], vec![0u8; 1024]);
    let echoed: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
    let mut callback = |m: Message<'_>| echoed.borrow_mut().push(m.payload.to_vec());
    let mut client = Client::new(
        stack,
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new(id).connect_timeout_ms(5_000),
    )
    .with_waiter(TlsWait);
    client.set_callback(&mut callback);
    let connect = client.connect(addr).map(|_| ());
    if connect.is_ok() {
        client
            .publish(b"hostile/echo", b"still here", false, QoS::AtMostOnce)
            .expect("publish after the handshake");
        let start = Instant::now();
        while echoed.borrow().is_empty() && start.elapsed() < Duration::from_secs(5) {
            client.wait_msg_for(100).expect("wait for the echo");
        }
        client.disconnect().expect("disconnect");
    }
    drop(client);
    assert!(!buffers.is_lent(), "the connection returned the buffers");
    let echoed = echoed.borrow().clone();
    (connect, echoed)
}

fn refused_in_handshake(test: &str, script: Script, expected: HandshakeError, alert: Option<u8>) {
    let outcome = session(test, script);
    assert_refused(&outcome, TlsStackError::Handshake(expected), alert);
}

use Msg::{Certificate, CertificateVerify, EncryptedExtensions, Finished};

// ---------------------------------------------------------------------------
// The honest server
// ---------------------------------------------------------------------------

#[test]
fn an_honest_server_completes_the_handshake_and_echoes_a_publish() {
    let outcome = session("tls-honest", Script::honest());
    assert_session_goes_on(&outcome);
    assert!(outcome.seen.client_finished);
}

#[test]
fn an_honest_flight_in_one_record_per_message_is_accepted() {
    let script = Script::one_per_record(vec![
        EncryptedExtensions,
        Certificate,
        CertificateVerify,
        Finished,
    ]);
    assert_session_goes_on(&session("tls-one-per-record", script));
}

// ---------------------------------------------------------------------------
// Handshakes that do not authenticate the server
// ---------------------------------------------------------------------------

#[test]
fn no_certificate_and_no_certificate_verify_is_refused() {
    refused_in_handshake(
        "tls-no-cert",
        Script::coalesced(vec![EncryptedExtensions, Finished]),
        HandshakeError::NoCertificate,
        None,
    );
}

#[test]
fn a_certificate_without_certificate_verify_is_refused() {
    refused_in_handshake(
        "tls-no-cv",
        Script::coalesced(vec![EncryptedExtensions, Certificate, Finished]),
        HandshakeError::NoCertificateVerify,
        None,
    );
}

#[test]
fn a_certificate_verify_before_the_certificate_is_refused() {
    refused_in_handshake(
        "tls-cv-first",
        Script::coalesced(vec![
            EncryptedExtensions,
            CertificateVerify,
            Certificate,
            Finished,
        ]),
        HandshakeError::CertificateVerifyBeforeCertificate,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_certificate_verify_with_no_certificate_at_all_is_refused() {
    refused_in_handshake(
        "tls-cv-only",
        Script::coalesced(vec![EncryptedExtensions, CertificateVerify, Finished]),
        HandshakeError::CertificateVerifyBeforeCertificate,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_second_certificate_is_refused() {
    refused_in_handshake(
        "tls-two-certs",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            Certificate,
            CertificateVerify,
            Finished,
        ]),
        HandshakeError::SecondCertificate,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_certificate_after_the_certificate_verify_is_refused() {
    refused_in_handshake(
        "tls-cert-after-cv",
        Script::one_per_record(vec![
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            Certificate,
            Finished,
        ]),
        HandshakeError::SecondCertificate,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_second_certificate_verify_is_refused() {
    refused_in_handshake(
        "tls-two-cvs",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            CertificateVerify,
            Finished,
        ]),
        HandshakeError::SecondCertificateVerify,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_forged_certificate_verify_is_refused() {
    refused_in_handshake(
        "tls-forged-cv",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            Msg::ForgedCertificateVerify,
            Finished,
        ]),
        HandshakeError::BadSignature,
        Some(DECRYPT_ERROR),
    );
}

/// Upstream embedded-tls (with `rsa`, as the tests build it) panicked here:
/// `RsaPublicKey::from_pkcs1_der(ec_key).unwrap()`.
#[test]
fn an_rsa_pss_certificate_verify_over_an_ec_certificate_is_refused() {
    refused_in_handshake(
        "tls-pss-over-ec",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            Msg::CertificateVerifyWithScheme(0x0804),
            Finished,
        ]),
        HandshakeError::SchemeMismatch,
        Some(ILLEGAL_PARAMETER),
    );
}

#[test]
fn a_corrupted_finished_is_refused() {
    refused_in_handshake(
        "tls-bad-finished",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            Msg::Raw([vec![20, 0, 0, 32], vec![0x5a; 32]].concat()),
        ]),
        HandshakeError::BadFinished,
        None,
    );
}

#[test]
fn an_empty_certificate_is_refused_as_malformed() {
    let outcome = session(
        "tls-empty-cert",
        Script::coalesced(vec![
            EncryptedExtensions,
            Msg::Raw(vec![11, 0, 0, 4, 0, 0, 0, 0]),
            CertificateVerify,
            Finished,
        ]),
    );
    assert_refused(
        &outcome,
        TlsStackError::Certificate(CertError::Malformed),
        None,
    );
}

/// A flight out of the order embedded-tls itself enforces (patched):
/// refused with unexpected_message.
fn refused_as_unexpected(test: &str, script: Script) {
    let outcome = session(test, script);
    assert_refused(
        &outcome,
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_certificate_after_the_server_finished_is_refused() {
    refused_as_unexpected(
        "tls-after-finished",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            Finished,
            Certificate,
        ]),
    );
}

#[test]
fn encrypted_extensions_after_the_certificate_is_refused() {
    refused_as_unexpected(
        "tls-ee-late",
        Script::coalesced(vec![
            Certificate,
            CertificateVerify,
            EncryptedExtensions,
            Finished,
        ]),
    );
}

#[test]
fn a_second_encrypted_extensions_is_refused() {
    refused_as_unexpected(
        "tls-two-ee",
        Script::coalesced(vec![
            EncryptedExtensions,
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            Finished,
        ]),
    );
}

/// Upstream embedded-tls panicked here (`last().unwrap()` in
/// `decrypt_record`).
#[test]
fn an_empty_record_in_the_handshake_is_refused() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Inner(Vec::new()));
    let outcome = session("tls-empty-hs", script);
    assert_refused(&outcome, TlsStackError::MalformedRecord, None);
}

/// Upstream embedded-tls skipped it silently; RFC 8446 §5.1 forbids it.
#[test]
fn a_zero_length_handshake_record_in_the_handshake_is_refused() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Inner(vec![22]));
    refused_as_unexpected("tls-zero-hs", script);
}

// ---------------------------------------------------------------------------
// After the handshake
// ---------------------------------------------------------------------------

/// Upstream embedded-tls ended the connection (`Unimplemented`).
#[test]
fn a_key_update_keeps_the_session_going() {
    let outcome = session(
        "tls-key-update",
        Script::honest().then(vec![Post::KeyUpdate { requested: false }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(
        outcome.seen.client_key_updates,
        Vec::<bool>::new(),
        "not asked for"
    );
}

#[test]
fn a_key_update_that_asks_for_one_back_gets_it_and_the_session_goes_on() {
    let outcome = session(
        "tls-key-update-requested",
        Script::honest().then(vec![Post::KeyUpdate { requested: true }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(
        outcome.seen.client_key_updates,
        [false],
        "the client's own KeyUpdate(update_not_requested)"
    );
}

#[test]
fn two_key_updates_in_a_row_keep_the_session_going() {
    let outcome = session(
        "tls-key-update-twice",
        Script::honest().then(vec![
            Post::KeyUpdate { requested: true },
            Post::KeyUpdate { requested: true },
        ]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(outcome.seen.client_key_updates, [false, false]);
}

#[test]
fn a_new_session_ticket_keeps_the_session_going() {
    let outcome = session(
        "tls-ticket",
        Script::honest().then(vec![Post::NewSessionTicket]),
    );
    assert_session_goes_on(&outcome);
}

/// The connect's CONNECT is sent before the client reads what follows the
/// handshake, so these fail at the CONNACK, with the named error.
fn refused_after_handshake(test: &str, post: Post, expected: TlsError, alert: Option<u8>) {
    let outcome = session(test, Script::honest().then(vec![post]));
    match &outcome.connect {
        Err(Error::Network(e)) => assert_eq!(format!("{e:?}"), format!("{expected:?}"), "{e}"),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    assert_eq!(outcome.seen.mqtt_packets, [1], "only the CONNECT");
    if let Some(alert) = alert {
        assert_eq!(outcome.seen.alerts, [alert], "the client's alert");
    }
}

/// Upstream embedded-tls panicked here: it had no branch for this message.
#[test]
fn a_post_handshake_certificate_request_is_refused() {
    refused_after_handshake(
        "tls-post-cr",
        Post::CertificateRequest,
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// Upstream embedded-tls panicked here (`last().unwrap()`).
#[test]
fn an_empty_record_after_the_handshake_is_refused() {
    refused_after_handshake(
        "tls-post-empty",
        Post::Inner(Vec::new()),
        TlsStackError::MalformedRecord,
        None,
    );
}

#[test]
fn a_zero_length_handshake_record_after_the_handshake_is_refused() {
    refused_after_handshake(
        "tls-post-zero",
        Post::Inner(vec![22]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_key_update_followed_by_more_in_its_record_is_refused() {
    // KeyUpdate then a NewSessionTicket in the same record: a key change
    // must end its record.
    let mut both = vec![24, 0, 0, 1, 0];
    both.extend_from_slice(&[
        4, 0, 0, 18, 0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 1, 2, 3, 4, 0, 0,
    ]);
    both.push(22);
    refused_after_handshake(
        "tls-post-ku-more",
        Post::Inner(both),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

// ---------------------------------------------------------------------------
// Unencrypted records, floods and client certificates (review of issue 22)
// ---------------------------------------------------------------------------

/// An unencrypted record after ServerHello is out of place (RFC 8446 §5),
/// but for a ChangeCipherSpec of value 1 during the handshake: anyone on
/// the path could otherwise inject it without any key.
#[test]
fn an_unencrypted_handshake_message_in_the_encrypted_flight_is_refused() {
    let plain_encrypted_extensions = vec![22, 3, 3, 0, 6, 8, 0, 0, 2, 0, 0];
    let outcome = session(
        "tls-plain-ee",
        Script {
            flight: vec![
                Rec::Plain(plain_encrypted_extensions),
                Rec::Handshake(vec![Certificate, CertificateVerify, Finished]),
            ],
            after: Vec::new(),
            trickle: None,
        },
    );
    assert_refused(
        &outcome,
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_change_cipher_spec_of_value_1_in_the_flight_is_ignored() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Plain(vec![20, 3, 3, 0, 1, 1]));
    assert_session_goes_on(&session("tls-ccs-compat", script));
}

#[test]
fn a_change_cipher_spec_of_another_value_is_refused() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Plain(vec![20, 3, 3, 0, 1, 2]));
    assert_refused(
        &session("tls-ccs-2", script),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// A forged close_notify, injected without any key, used to end the
/// session "in order".
#[test]
fn an_unencrypted_alert_after_the_handshake_is_refused() {
    refused_after_handshake(
        "tls-post-plain-alert",
        Post::Plain(vec![21, 3, 3, 0, 2, 1, 0]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// An injected KeyUpdate(update_requested) used to make the client change
/// its write keys (and send a record) at the injector's word.
#[test]
fn an_unencrypted_key_update_after_the_handshake_is_refused() {
    refused_after_handshake(
        "tls-post-plain-ku",
        Post::Plain(vec![22, 3, 3, 0, 5, 24, 0, 0, 1, 1]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

#[test]
fn a_change_cipher_spec_after_the_handshake_is_refused() {
    refused_after_handshake(
        "tls-post-ccs",
        Post::Plain(vec![20, 3, 3, 0, 1, 1]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// ChangeCipherSpec records are ignored during the handshake, so a server
/// that never stops sending them used to hold `connect` for as long as it
/// liked: the handshake timeout was checked only when no byte was waiting.
#[test]
fn a_flood_of_change_cipher_spec_ends_the_handshake_at_its_timeout() {
    let mut script = Script::honest();
    script.flight.insert(
        0,
        Rec::Flood {
            record: vec![20, 3, 3, 0, 1, 1],
            ms: 8_000,
        },
    );
    let outcome = session_with(
        "tls-ccs-flood",
        script,
        Setup {
            handshake_timeout_ms: Some(1_000),
            ..Setup::default()
        },
    );
    assert_refused(&outcome, TlsStackError::HandshakeTimedOut, None);
}

/// Encrypted NewSessionTickets carry no data, so a server that sends them
/// without pause used to keep the client reading them, past the deadline
/// of the call that waited (here the CONNACK's, 5 s, while the flood lasts
/// 10 s): now a wait that met only such records ends at its own deadline.
#[test]
fn a_flood_of_session_tickets_does_not_hold_the_connect_past_its_deadline() {
    let mut ticket = vec![4, 0, 0, 18];
    ticket.extend_from_slice(&[0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 1, 2, 3, 4, 0, 0]);
    ticket.push(22);
    let outcome = session(
        "tls-nst-flood",
        Script::honest().then(vec![Post::Flood {
            inner: ticket,
            ms: 10_000,
        }]),
    );
    match &outcome.connect {
        Err(e) if e.kind() == umqtt_simple::ErrorKind::Timeout => {}
        other => panic!("expected the CONNACK's timeout, got {other:?}"),
    }
}

/// embedded-tls sends the client's Certificate and CertificateVerify while
/// it completes the handshake, before this crate can check that the server
/// authenticated itself: a server asking for a client certificate without
/// proving who it is got the device's identity. Now it gets an empty
/// Certificate, then the handshake is refused.
#[test]
fn a_server_asking_for_a_client_certificate_before_proving_who_it_is_gets_none() {
    let outcome = session_with(
        "tls-cr-unauthenticated",
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
        "the client's Certificate message(s): the length of the certificate list"
    );
}

#[test]
fn a_server_that_proved_who_it_is_gets_the_client_certificate() {
    let outcome = session_with(
        "tls-cr-authenticated",
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
