//! The TLS clients against a hostile TLS 1.3 server (the scripted server of
//! `umqtt_tests::tls_server`, on loopback): each way a server can leave out,
//! reorder, repeat or corrupt its handshake messages, and each
//! post-handshake message, once. Every case runs against both front-ends,
//! the blocking client over `TlsStack` (module `blocking`) and the async
//! client over `TlsConnect` on tokio sockets (module `asynch`), and each
//! gets the very same named error from both: one verifier, one handshake
//! order, one provider, one error mapping.
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
//! - Records trickled in pieces while the client waits with short
//!   deadlines: each read cut in the middle of a record goes on with it
//!   (for the async client a dropped read future, for the blocking one a
//!   receive that returned early).

use std::cell::RefCell;
use std::fmt::Debug;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use umqtt_simple::{Error, Message, Options, QoS, Waiting};
use umqtt_tests::tls_server::{
    self, DECRYPT_ERROR, ILLEGAL_PARAMETER, Msg, Post, Rec, Script, TlsIdentity, TlsServer,
    Trickle, UNEXPECTED_MESSAGE, assert_refused, assert_session_goes_on,
};
use umqtt_tests::tokio_net::{TokioNet, run_async};
use umqtt_tests::{HANG_LIMIT, client_id, run_in_thread_within};
use umqtt_transports::std_tcp::{StdClock, StdNetError, StdTcpStack, StdTimer, StdWait};
use umqtt_transports::tls::{
    CertError, HandshakeError, TlsBuffers, TlsConnect, TlsOptions, TlsStack, TlsStackError, TlsWait,
};

use Msg::{Certificate, CertificateVerify, EncryptedExtensions, Finished};

type Outcome<E> = tls_server::Outcome<TlsStackError<E>>;

/// What a client's run gives: how its connect ended, and the echoes.
type Run<E> = (Result<(), Error<TlsStackError<E>>>, Vec<Vec<u8>>);

/// How the client is set up, beyond trusting the server's CA.
#[derive(Debug, Clone, Copy, Default)]
struct Setup {
    /// Present the server's own certificate and key as a client
    /// certificate, when asked for one.
    client_certificate: bool,
    /// `TlsOptions::handshake_timeout_ms`, if not the default.
    handshake_timeout_ms: Option<u32>,
    /// The server name the client asks for, if not `localhost`.
    server_name: Option<&'static str>,
    /// How long each `wait_msg_for` waits for the echo (default 100 ms).
    wait_ms: Option<u32>,
    /// The payload published and echoed (default `still here`).
    payload: Option<&'static [u8]>,
}

/// The transmit and receive buffers of the MQTT client: room for the
/// largest echo a case sends.
const MQTT_BUFFER: usize = 17 * 1024;

/// A front-end of umqtt-simple, run against the hostile server.
trait Front {
    /// The I/O error of its TCP layer under TLS.
    type E: Debug + Send + 'static;
    /// Prefix of the test names (client ids and key files) of its runs.
    const TAG: &'static str;
    /// Whether `TlsOptions::handshake_timeout_ms` bounds the handshake
    /// (blocking `TlsStack`), or the client's connect deadline does (async
    /// `TlsConnect`: the handshake runs inside `connect`, which the client
    /// races against its timer).
    const OWN_HANDSHAKE_TIMEOUT: bool;
    /// Connects over TLS to `addr` trusting `identity`'s CA, then (if it
    /// connected) publishes one QoS 0 message, waits for the server's echo
    /// of it and disconnects; gives how the connect ended and the echoes.
    fn client(addr: SocketAddr, identity: &TlsIdentity, id: &str, setup: Setup) -> Run<Self::E>;
}

/// TLS options as `setup` says.
fn tls_options(identity: &TlsIdentity, setup: Setup) -> TlsOptions<'_> {
    let mut options = TlsOptions::new(setup.server_name.unwrap_or("localhost")).ca(&identity.ca);
    if setup.client_certificate {
        options = options.client_certificate(&identity.cert, &identity.key_der);
    }
    if let Some(ms) = setup.handshake_timeout_ms {
        options = options.handshake_timeout_ms(ms);
    }
    options
}

/// The blocking client over `TlsStack` over std sockets.
struct Blocking;

impl Front for Blocking {
    type E = StdNetError;
    const TAG: &'static str = "tls";
    const OWN_HANDSHAKE_TIMEOUT: bool = true;

    fn client(
        addr: SocketAddr,
        identity: &TlsIdentity,
        id: &str,
        setup: Setup,
    ) -> Run<StdNetError> {
        let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
        let buffers = TlsBuffers::new(&mut read, &mut write);
        let stack = TlsStack::new(
            StdTcpStack::new(),
            StdWait::new(),
            StdClock::new(),
            OsRng,
            &buffers,
            tls_options(identity, setup),
        );
        let (mut tx, mut rx) = (vec![0u8; MQTT_BUFFER], vec![0u8; MQTT_BUFFER]);
        let echoed: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
        let mut callback = |m: Message<'_>| echoed.borrow_mut().push(m.payload.to_vec());
        let mut client = umqtt_simple::Client::new(
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
                .publish(b"hostile/echo", payload(setup), false, QoS::AtMostOnce)
                .expect("publish after the handshake");
            let start = Instant::now();
            while echoed.borrow().is_empty() && start.elapsed() < Duration::from_secs(5) {
                client
                    .wait_msg_for(wait_ms(setup))
                    .expect("wait for the echo");
            }
            client.disconnect().expect("disconnect");
        }
        drop(client);
        assert!(!buffers.is_lent(), "the connection returned the buffers");
        let echoed = echoed.borrow().clone();
        (connect, echoed)
    }
}

/// The async client over `TlsConnect` over tokio sockets.
struct Async;

impl Front for Async {
    type E = std::io::Error;
    const TAG: &'static str = "atls";
    const OWN_HANDSHAKE_TIMEOUT: bool = false;

    fn client(
        addr: SocketAddr,
        identity: &TlsIdentity,
        id: &str,
        setup: Setup,
    ) -> (
        Result<(), Error<TlsStackError<std::io::Error>>>,
        Vec<Vec<u8>>,
    ) {
        run_async(HANG_LIMIT, async {
            let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
            let buffers = TlsBuffers::new(&mut read, &mut write);
            let net = TokioNet;
            let tls = TlsConnect::new(&net, OsRng, &buffers, tls_options(identity, setup));
            let (mut tx, mut rx) = (vec![0u8; MQTT_BUFFER], vec![0u8; MQTT_BUFFER]);
            let echoed: Rc<RefCell<Vec<Vec<u8>>>> = Rc::default();
            let mut callback = |m: Message<'_>| echoed.borrow_mut().push(m.payload.to_vec());
            let mut client = umqtt_simple::asynch::Client::new(
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
                    .publish(b"hostile/echo", payload(setup), false, QoS::AtMostOnce)
                    .await
                    .expect("publish after the handshake");
                let start = Instant::now();
                while echoed.borrow().is_empty() && start.elapsed() < Duration::from_secs(5) {
                    client
                        .wait_msg_for(wait_ms(setup))
                        .await
                        .expect("wait for the echo");
                }
                client.disconnect().await.expect("disconnect");
            }
            drop(client);
            assert!(!buffers.is_lent(), "the connection returned the buffers");
            let echoed = echoed.borrow().clone();
            (connect, echoed)
        })
    }
}

fn payload(setup: Setup) -> &'static [u8] {
    setup.payload.unwrap_or(b"still here")
}

fn wait_ms(setup: Setup) -> u32 {
    setup.wait_ms.unwrap_or(100)
}

/// Serves `script` and runs front-end `F`'s client against it: connect,
/// then (if it connected) publish one QoS 0 message and wait for the
/// server's echo of it.
fn session<F: Front>(test: &str, script: Script) -> Outcome<F::E> {
    session_with::<F>(test, script, Setup::default())
}

/// [`session`] with a client set up as `setup` says.
fn session_with<F: Front>(test: &str, script: Script, setup: Setup) -> Outcome<F::E> {
    let test = format!("{}-{test}", F::TAG);
    let identity = TlsIdentity::generate(&test);
    let server = TlsServer::start(&identity, script);
    let addr = server.addr();
    let id = client_id(&test);
    let (connect, echoed) =
        run_in_thread_within(HANG_LIMIT, move || F::client(addr, &identity, &id, setup));
    let seen = server.seen();
    tls_server::Outcome {
        connect,
        echoed,
        seen,
    }
}

fn refused_in_handshake<F: Front>(
    test: &str,
    script: Script,
    expected: HandshakeError,
    alert: Option<u8>,
) {
    let outcome = session::<F>(test, script);
    assert_refused(&outcome, TlsStackError::Handshake(expected), alert);
}

/// Each case below is a function generic over the front-end; this makes a
/// test of each for both: `blocking::case` and `asynch::case`.
macro_rules! on_both_front_ends {
    ($($case:ident),* $(,)?) => {
        mod blocking {
            $(#[test]
            fn $case() {
                super::$case::<super::Blocking>();
            })*
        }

        mod asynch {
            $(#[test]
            fn $case() {
                super::$case::<super::Async>();
            })*
        }
    };
}

on_both_front_ends!(
    an_honest_server_completes_the_handshake_and_echoes_a_publish,
    an_honest_flight_in_one_record_per_message_is_accepted,
    no_certificate_and_no_certificate_verify_is_refused,
    a_certificate_without_certificate_verify_is_refused,
    a_certificate_verify_before_the_certificate_is_refused,
    a_certificate_verify_with_no_certificate_at_all_is_refused,
    a_second_certificate_is_refused,
    a_certificate_after_the_certificate_verify_is_refused,
    a_second_certificate_verify_is_refused,
    a_forged_certificate_verify_is_refused,
    an_rsa_pss_certificate_verify_over_an_ec_certificate_is_refused,
    a_corrupted_finished_is_refused,
    an_empty_certificate_is_refused_as_malformed,
    a_certificate_for_another_name_is_refused,
    a_certificate_after_the_server_finished_is_refused,
    encrypted_extensions_after_the_certificate_is_refused,
    a_second_encrypted_extensions_is_refused,
    an_empty_record_in_the_handshake_is_refused,
    a_zero_length_handshake_record_in_the_handshake_is_refused,
    a_key_update_keeps_the_session_going,
    a_key_update_that_asks_for_one_back_gets_it_and_the_session_goes_on,
    two_key_updates_in_a_row_keep_the_session_going,
    a_new_session_ticket_keeps_the_session_going,
    a_post_handshake_certificate_request_is_refused,
    an_empty_record_after_the_handshake_is_refused,
    a_zero_length_handshake_record_after_the_handshake_is_refused,
    a_key_update_followed_by_more_in_its_record_is_refused,
    an_unencrypted_handshake_message_in_the_encrypted_flight_is_refused,
    a_change_cipher_spec_of_value_1_in_the_flight_is_ignored,
    a_change_cipher_spec_of_another_value_is_refused,
    an_unencrypted_alert_after_the_handshake_is_refused,
    an_unencrypted_key_update_after_the_handshake_is_refused,
    a_change_cipher_spec_after_the_handshake_is_refused,
    a_flood_of_change_cipher_spec_ends_the_handshake_at_its_timeout,
    a_flood_of_session_tickets_does_not_hold_the_connect_past_its_deadline,
    a_server_asking_for_a_client_certificate_before_proving_who_it_is_gets_none,
    a_server_that_proved_who_it_is_gets_the_client_certificate,
    a_read_cut_by_a_deadline_in_the_middle_of_a_record_goes_on_with_it,
    a_large_record_cut_in_the_middle_of_its_body_goes_on_with_it,
);

// ---------------------------------------------------------------------------
// The honest server
// ---------------------------------------------------------------------------

fn an_honest_server_completes_the_handshake_and_echoes_a_publish<F: Front>() {
    let outcome = session::<F>("honest", Script::honest());
    assert_session_goes_on(&outcome);
    assert!(outcome.seen.client_finished);
}

fn an_honest_flight_in_one_record_per_message_is_accepted<F: Front>() {
    let script = Script::one_per_record(vec![
        EncryptedExtensions,
        Certificate,
        CertificateVerify,
        Finished,
    ]);
    assert_session_goes_on(&session::<F>("one-per-record", script));
}

// ---------------------------------------------------------------------------
// Handshakes that do not authenticate the server
// ---------------------------------------------------------------------------

fn no_certificate_and_no_certificate_verify_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "no-cert",
        Script::coalesced(vec![EncryptedExtensions, Finished]),
        HandshakeError::NoCertificate,
        None,
    );
}

fn a_certificate_without_certificate_verify_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "no-cv",
        Script::coalesced(vec![EncryptedExtensions, Certificate, Finished]),
        HandshakeError::NoCertificateVerify,
        None,
    );
}

fn a_certificate_verify_before_the_certificate_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "cv-first",
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

fn a_certificate_verify_with_no_certificate_at_all_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "cv-only",
        Script::coalesced(vec![EncryptedExtensions, CertificateVerify, Finished]),
        HandshakeError::CertificateVerifyBeforeCertificate,
        Some(UNEXPECTED_MESSAGE),
    );
}

fn a_second_certificate_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "two-certs",
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

fn a_certificate_after_the_certificate_verify_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "cert-after-cv",
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

fn a_second_certificate_verify_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "two-cvs",
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

fn a_forged_certificate_verify_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "forged-cv",
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
fn an_rsa_pss_certificate_verify_over_an_ec_certificate_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "pss-over-ec",
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

fn a_corrupted_finished_is_refused<F: Front>() {
    refused_in_handshake::<F>(
        "bad-finished",
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

fn an_empty_certificate_is_refused_as_malformed<F: Front>() {
    let outcome = session::<F>(
        "empty-cert",
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

/// The server's certificate names `localhost`; the client asks for another
/// name.
fn a_certificate_for_another_name_is_refused<F: Front>() {
    let outcome = session_with::<F>(
        "wrong-name",
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

/// A flight out of the order embedded-tls itself enforces (patched):
/// refused with unexpected_message.
fn refused_as_unexpected<F: Front>(test: &str, script: Script) {
    let outcome = session::<F>(test, script);
    assert_refused(
        &outcome,
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

fn a_certificate_after_the_server_finished_is_refused<F: Front>() {
    refused_as_unexpected::<F>(
        "after-finished",
        Script::coalesced(vec![
            EncryptedExtensions,
            Certificate,
            CertificateVerify,
            Finished,
            Certificate,
        ]),
    );
}

fn encrypted_extensions_after_the_certificate_is_refused<F: Front>() {
    refused_as_unexpected::<F>(
        "ee-late",
        Script::coalesced(vec![
            Certificate,
            CertificateVerify,
            EncryptedExtensions,
            Finished,
        ]),
    );
}

fn a_second_encrypted_extensions_is_refused<F: Front>() {
    refused_as_unexpected::<F>(
        "two-ee",
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
fn an_empty_record_in_the_handshake_is_refused<F: Front>() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Inner(Vec::new()));
    let outcome = session::<F>("empty-hs", script);
    assert_refused(&outcome, TlsStackError::MalformedRecord, None);
}

/// Upstream embedded-tls skipped it silently; RFC 8446 §5.1 forbids it.
fn a_zero_length_handshake_record_in_the_handshake_is_refused<F: Front>() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Inner(vec![22]));
    refused_as_unexpected::<F>("zero-hs", script);
}

// ---------------------------------------------------------------------------
// After the handshake
// ---------------------------------------------------------------------------

/// Upstream embedded-tls ended the connection (`Unimplemented`).
fn a_key_update_keeps_the_session_going<F: Front>() {
    let outcome = session::<F>(
        "key-update",
        Script::honest().then(vec![Post::KeyUpdate { requested: false }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(
        outcome.seen.client_key_updates,
        Vec::<bool>::new(),
        "not asked for"
    );
}

fn a_key_update_that_asks_for_one_back_gets_it_and_the_session_goes_on<F: Front>() {
    let outcome = session::<F>(
        "key-update-requested",
        Script::honest().then(vec![Post::KeyUpdate { requested: true }]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(
        outcome.seen.client_key_updates,
        [false],
        "the client's own KeyUpdate(update_not_requested)"
    );
}

fn two_key_updates_in_a_row_keep_the_session_going<F: Front>() {
    let outcome = session::<F>(
        "key-update-twice",
        Script::honest().then(vec![
            Post::KeyUpdate { requested: true },
            Post::KeyUpdate { requested: true },
        ]),
    );
    assert_session_goes_on(&outcome);
    assert_eq!(outcome.seen.client_key_updates, [false, false]);
}

fn a_new_session_ticket_keeps_the_session_going<F: Front>() {
    let outcome = session::<F>(
        "ticket",
        Script::honest().then(vec![Post::NewSessionTicket]),
    );
    assert_session_goes_on(&outcome);
}

/// The connect's CONNECT is sent before the client reads what follows the
/// handshake, so these fail at the CONNACK, with the named error.
fn refused_after_handshake<F: Front>(
    test: &str,
    post: Post,
    expected: TlsStackError<F::E>,
    alert: Option<u8>,
) {
    let outcome = session::<F>(test, Script::honest().then(vec![post]));
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
fn a_post_handshake_certificate_request_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-cr",
        Post::CertificateRequest,
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// Upstream embedded-tls panicked here (`last().unwrap()`).
fn an_empty_record_after_the_handshake_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-empty",
        Post::Inner(Vec::new()),
        TlsStackError::MalformedRecord,
        None,
    );
}

fn a_zero_length_handshake_record_after_the_handshake_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-zero",
        Post::Inner(vec![22]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

fn a_key_update_followed_by_more_in_its_record_is_refused<F: Front>() {
    // KeyUpdate then a NewSessionTicket in the same record: a key change
    // must end its record.
    let mut both = vec![24, 0, 0, 1, 0];
    both.extend_from_slice(&[
        4, 0, 0, 18, 0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 1, 2, 3, 4, 0, 0,
    ]);
    both.push(22);
    refused_after_handshake::<F>(
        "post-ku-more",
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
fn an_unencrypted_handshake_message_in_the_encrypted_flight_is_refused<F: Front>() {
    let plain_encrypted_extensions = vec![22, 3, 3, 0, 6, 8, 0, 0, 2, 0, 0];
    let outcome = session::<F>(
        "plain-ee",
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

fn a_change_cipher_spec_of_value_1_in_the_flight_is_ignored<F: Front>() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Plain(vec![20, 3, 3, 0, 1, 1]));
    assert_session_goes_on(&session::<F>("ccs-compat", script));
}

fn a_change_cipher_spec_of_another_value_is_refused<F: Front>() {
    let mut script = Script::honest();
    script.flight.insert(0, Rec::Plain(vec![20, 3, 3, 0, 1, 2]));
    assert_refused(
        &session::<F>("ccs-2", script),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// A forged close_notify, injected without any key, used to end the
/// session "in order".
fn an_unencrypted_alert_after_the_handshake_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-plain-alert",
        Post::Plain(vec![21, 3, 3, 0, 2, 1, 0]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// An injected KeyUpdate(update_requested) used to make the client change
/// its write keys (and send a record) at the injector's word.
fn an_unencrypted_key_update_after_the_handshake_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-plain-ku",
        Post::Plain(vec![22, 3, 3, 0, 5, 24, 0, 0, 1, 1]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

fn a_change_cipher_spec_after_the_handshake_is_refused<F: Front>() {
    refused_after_handshake::<F>(
        "post-ccs",
        Post::Plain(vec![20, 3, 3, 0, 1, 1]),
        TlsStackError::UnexpectedMessage,
        Some(UNEXPECTED_MESSAGE),
    );
}

/// ChangeCipherSpec records are ignored during the handshake, so a server
/// that never stops sending them used to hold `connect` for as long as it
/// liked: the handshake timeout was checked only when no byte was waiting.
/// The flood lasts 8 s: the blocking client ends the handshake at its own
/// timeout (1 s), the async one at the connect deadline (5 s).
fn a_flood_of_change_cipher_spec_ends_the_handshake_at_its_timeout<F: Front>() {
    let mut script = Script::honest();
    script.flight.insert(
        0,
        Rec::Flood {
            record: vec![20, 3, 3, 0, 1, 1],
            ms: 8_000,
        },
    );
    let outcome = session_with::<F>(
        "ccs-flood",
        script,
        Setup {
            handshake_timeout_ms: Some(1_000),
            ..Setup::default()
        },
    );
    if F::OWN_HANDSHAKE_TIMEOUT {
        assert_refused(&outcome, TlsStackError::HandshakeTimedOut, None);
    } else {
        match &outcome.connect {
            Err(Error::Timeout(Waiting::Connect)) => {}
            other => panic!("expected the connect deadline, got {other:?}"),
        }
        assert!(!outcome.seen.sent_application_data());
    }
}

/// Encrypted NewSessionTickets carry no data, so a server that sends them
/// without pause used to keep the client reading them, past the deadline
/// of the call that waited (here the CONNACK's, 5 s, while the flood lasts
/// 10 s): now a wait that met only such records ends at its own deadline.
fn a_flood_of_session_tickets_does_not_hold_the_connect_past_its_deadline<F: Front>() {
    let mut ticket = vec![4, 0, 0, 18];
    ticket.extend_from_slice(&[0, 0, 0x0e, 0x10, 1, 2, 3, 4, 1, 9, 0, 4, 1, 2, 3, 4, 0, 0]);
    ticket.push(22);
    let outcome = session::<F>(
        "nst-flood",
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
fn a_server_asking_for_a_client_certificate_before_proving_who_it_is_gets_none<F: Front>() {
    let outcome = session_with::<F>(
        "cr-unauthenticated",
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

fn a_server_that_proved_who_it_is_gets_the_client_certificate<F: Front>() {
    let outcome = session_with::<F>(
        "cr-authenticated",
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

// ---------------------------------------------------------------------------
// Records cut by the client's deadlines
// ---------------------------------------------------------------------------

/// The echo's record comes in three pieces (2 bytes of its header, then 7
/// more bytes, then the rest), 350 ms apart, while the client waits in
/// `wait_msg_for(100)`: its deadline ends the read in the middle of the
/// header and in the middle of the body, several times. The next read goes
/// on with the record (for the async client, whose read future was
/// dropped, the header is handed to embedded-tls again and the body already
/// read stays), so the echo arrives whole and the session goes on. Without
/// the async header replay this fails.
fn a_read_cut_by_a_deadline_in_the_middle_of_a_record_goes_on_with_it<F: Front>() {
    let outcome = session::<F>(
        "trickle",
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
/// record. Before vendored patch 10 the async one asked for the whole
/// record again, reading past it and slicing past the buffer.
fn a_large_record_cut_in_the_middle_of_its_body_goes_on_with_it<F: Front>() {
    static BIG: [u8; 16_000] = [0x5a; 16_000];
    let outcome = session_with::<F>(
        "trickle-big",
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
