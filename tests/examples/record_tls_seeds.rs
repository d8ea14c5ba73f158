//! Records seeds for the `tls` fuzz target (fuzz/src/tls.rs): real TLS 1.3
//! handshakes with the scripted server (`umqtt_tests::tls_server`), honest
//! and hostile, each followed by the MQTT exchange the fuzz harness makes.
//! The client draws from `ReplayRng`, as the harness does, so its
//! ClientHello is the harness's and the recorded server bytes replay there.
//!
//! `cargo run -p umqtt-tests --example record_tls_seeds -- fuzz/tls-seeds`
//! writes one file per script: `[CA length u16 BE][CA DER][server bytes]`.

use std::net::SocketAddr;
use std::path::PathBuf;

use umqtt_simple::{Client, Message, Options, QoS};
use umqtt_tests::tls_server::{Msg, Post, Rec, Script, TlsIdentity, TlsServer};
use umqtt_transports::memory::ReplayRng;
use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
use umqtt_transports::tls::{TlsBuffers, TlsOptions, TlsStack, TlsWait};

/// The harness's calls, over loopback.
fn run_client(addr: SocketAddr, ca: &[u8]) {
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    let tls = TlsStack::new(
        StdTcpStack::new(),
        StdWait::new(),
        StdClock::new(),
        ReplayRng::default(),
        &buffers,
        TlsOptions::new("localhost").ca(ca),
    );
    let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
    let mut client = Client::new(
        tls,
        StdClock::new(),
        &mut tx,
        &mut rx,
        Options::new("fuzz").connect_timeout_ms(5_000),
    )
    .with_waiter(TlsWait);
    let mut callback = |_: Message<'_>| {};
    client.set_callback(&mut callback);
    match client.connect(addr) {
        Err(e) => println!("  connect: {e:?}"),
        Ok(_) => {
            let _ = client.publish(b"fuzz/tls", b"still here", false, QoS::AtMostOnce);
            for _ in 0..4 {
                match client.wait_msg_for(200) {
                    Ok(_) => {}
                    Err(e) => {
                        println!("  wait: {e:?}");
                        break;
                    }
                }
            }
            let _ = client.disconnect();
        }
    }
}

fn main() {
    let dir = PathBuf::from(
        std::env::args()
            .nth(1)
            .expect("usage: record_tls_seeds DIR"),
    );
    std::fs::create_dir_all(&dir).expect("create the seed directory");
    use Msg::{Certificate, CertificateVerify, EncryptedExtensions, Finished};
    let honest = Script::honest;
    let scripts: Vec<(&str, Script)> = vec![
        ("honest", honest()),
        (
            "one-record-per-message",
            Script::one_per_record(vec![
                EncryptedExtensions,
                Certificate,
                CertificateVerify,
                Finished,
            ]),
        ),
        (
            "key-update",
            honest().then(vec![Post::KeyUpdate { requested: false }]),
        ),
        (
            "key-update-requested",
            honest().then(vec![Post::KeyUpdate { requested: true }]),
        ),
        (
            "new-session-ticket",
            honest().then(vec![Post::NewSessionTicket]),
        ),
        (
            "post-handshake-certificate-request",
            honest().then(vec![Post::CertificateRequest]),
        ),
        (
            "post-handshake-empty-record",
            honest().then(vec![Post::Inner(Vec::new())]),
        ),
        (
            "no-certificate",
            Script::coalesced(vec![EncryptedExtensions, Finished]),
        ),
        (
            "no-certificate-verify",
            Script::coalesced(vec![EncryptedExtensions, Certificate, Finished]),
        ),
        ("empty-record-in-flight", {
            let mut s = honest();
            s.flight.insert(0, Rec::Inner(Vec::new()));
            s
        }),
    ];
    let identity = TlsIdentity::generate("fuzz-seeds");
    for (name, script) in scripts {
        println!("{name}");
        let server = TlsServer::start(&identity, script);
        run_client(server.addr(), &identity.ca);
        let seen = server.seen();
        let len = u16::try_from(identity.ca.len()).expect("small CA");
        let mut seed = len.to_be_bytes().to_vec();
        seed.extend_from_slice(&identity.ca);
        seed.extend_from_slice(&seen.sent);
        std::fs::write(dir.join(name), seed).expect("write a seed");
    }
    println!("seeds written to {}", dir.display());
}
