//! The `tls` target: arbitrary server bytes into the TLS client.
//!
//! An input is `[CA length: u16 BE][CA certificate, DER][server bytes]`. The
//! server bytes are queued on a `MemoryStack` all at once, as the answer to
//! the ClientHello; a
//! `umqtt_simple::Client` over `TlsStack` (server name `localhost`, the
//! input's CA, `ReplayRng`: the same ClientHello and key share every run;
//! feature `tls-rsa` as in the tests, since it changes the ClientHello)
//! connects on virtual time, and if it connected, publishes one QoS 0
//! message, waits for messages and disconnects.
//!
//! Because the client's randomness repeats, a real handshake recorded once
//! from the scripted TLS 1.3 server of the tests (`fuzz/tls-seeds/`, made by
//! `cargo run -p umqtt-tests --example record_tls_seeds -- fuzz/tls-seeds`)
//! replays in full: ServerHello, the encrypted flight, post-handshake
//! messages (KeyUpdate, NewSessionTicket, CertificateRequest) and MQTT. The
//! fuzzer mutates record framing, the plaintext ServerHello and any byte of
//! the stream; a mutated encrypted record fails its AEAD tag, so what lies
//! inside the encryption is explored only as far as the seeds and their
//! cuts and splices reach.
//!
//! Checks: no panic; every call returns (virtual time: a stalled handshake
//! ends at its timeout); every error formats; once the client is dropped the
//! record buffers are back (`TlsBuffers::is_lent` is false).

use core::fmt::{self, Write};
use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use umqtt_simple::{Client, Options, QoS};
use umqtt_transports::memory::{MemoryStack, ReplayRng, VirtualClock, VirtualWait};
use umqtt_transports::tls::{TlsBuffers, TlsOptions, TlsStack, TlsWait};

const SERVER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8883);

/// A `fmt::Write` that throws the text away: Display impls run, nothing is kept.
struct Sink;

impl Write for Sink {
    fn write_str(&mut self, _: &str) -> fmt::Result {
        Ok(())
    }
}

fn format<T: fmt::Display + fmt::Debug>(value: &T) {
    let _ = write!(Sink, "{value} {value:?}");
}

/// Splits an input into the CA and the server's bytes.
pub fn split(data: &[u8]) -> Option<(&[u8], &[u8])> {
    let (len, rest) = data.split_first_chunk::<2>()?;
    rest.split_at_checked(usize::from(u16::from_be_bytes(*len)))
}

/// An input made of `ca` and the server's bytes `stream`.
pub fn join(ca: &[u8], stream: &[u8]) -> Vec<u8> {
    let len = u16::try_from(ca.len()).expect("a CA certificate under 64 KiB");
    let mut input = len.to_be_bytes().to_vec();
    input.extend_from_slice(ca);
    input.extend_from_slice(stream);
    input
}

/// Runs one input; returns whether the client connected (TLS and MQTT).
pub fn check(data: &[u8]) -> bool {
    let Some((ca, stream)) = split(data) else {
        return false;
    };
    let connected;
    let stack = MemoryStack::new();
    // Released when the ClientHello (a handshake record, 0x16) goes out (a
    // connect empties what was queued before it).
    stack.answer(0x16, stream);
    let clock = VirtualClock::starting_at(1_000);
    let (mut read, mut write) = (vec![0u8; 16_640], vec![0u8; 2048]);
    let buffers = TlsBuffers::new(&mut read, &mut write);
    {
        let tls = TlsStack::new(
            stack.clone(),
            VirtualWait::new(&clock),
            clock.clone(),
            ReplayRng::default(),
            &buffers,
            TlsOptions::new("localhost").ca(ca),
        );
        let (mut tx, mut rx) = ([0u8; 256], [0u8; 256]);
        let mut client = Client::new(
            tls,
            clock.clone(),
            &mut tx,
            &mut rx,
            Options::new("fuzz").connect_timeout_ms(5_000),
        )
        .with_waiter(TlsWait);
        let mut callback = |_: umqtt_simple::Message<'_>| {};
        client.set_callback(&mut callback);
        let connect = client.connect(SERVER);
        connected = connect.is_ok();
        match connect {
            Err(e) => format(&e),
            Ok(_) => {
                if let Err(e) = client.publish(b"fuzz/tls", b"still here", false, QoS::AtMostOnce) {
                    format(&e);
                }
                for _ in 0..4 {
                    if let Err(e) = client.wait_msg_for(1_000) {
                        format(&e);
                        break;
                    }
                }
                if let Err(e) = client.disconnect() {
                    format(&e);
                }
            }
        }
    }
    assert!(
        !buffers.is_lent(),
        "a dropped client left the TLS buffers lent"
    );
    connected
}

/// The recorded seeds in `fuzz/tls-seeds/`, and whether the client connects
/// over each (the honest handshakes) or refuses it (the hostile ones).
pub const SEEDS: &[(&str, bool)] = &[
    ("honest", true),
    ("one-record-per-message", true),
    ("key-update", true),
    ("key-update-requested", true),
    ("new-session-ticket", true),
    ("post-handshake-certificate-request", false),
    ("post-handshake-empty-record", false),
    ("no-certificate", false),
    ("no-certificate-verify", false),
    ("empty-record-in-flight", false),
];

#[cfg(test)]
mod tests {
    /// The recorded handshakes replay: the honest ones connect, the hostile
    /// ones are refused, so the seeds reach past the handshake.
    #[test]
    fn recorded_seeds_replay_to_the_same_end() {
        for (name, seed) in crate::seeds::tls() {
            let expected = super::SEEDS
                .iter()
                .any(|&(n, connects)| n == name && connects);
            assert_eq!(super::check(&seed), expected, "seed {name}");
        }
    }
}
