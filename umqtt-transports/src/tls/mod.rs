//! TLS 1.3 over any [`TcpClientStack`](embedded_nal::TcpClientStack) (feature `tls`): [`TlsStack`];
//! and over any embedded-nal-async `TcpConnect`, for the async clients
//! (feature `tls-async`): `TlsConnect` (see [async](self#async)).
//!
//! [`TlsStack`] is itself a [`TcpClientStack`](embedded_nal::TcpClientStack) that wraps another one (the std
//! stack, smoltcp, a modem's stack) with [embedded-tls], so umqtt-simple's
//! `Client` and umqtt-robust use TLS unchanged. `#![no_std]`, no heap (unless
//! feature `tls-rsa`).
//!
//! - **Verification is on by default.** The server's certificate chain must
//!   lead to a CA given with [`TlsOptions::ca`] or [`TlsOptions::cas`], and
//!   be valid for the server name (mandatory). Each failure is its own
//!   [`CertError`]; see [what is verified](self#what-is-verified). Skipping
//!   all of it takes [`TlsOptions::dangerously_skip_verification`], which
//!   logs a warning at each connect.
//! - **The server must prove who it is.** `connect` succeeds only after the
//!   server sent a Certificate that passed verification, then a
//!   CertificateVerify over it that passed (its signature scheme must fit
//!   the certificate's key), then its Finished. Any other order or subset, a
//!   second Certificate or CertificateVerify, ends the connect with
//!   [`TlsStackError::Handshake`] naming what was wrong, before a byte of
//!   MQTT is sent (embedded-tls itself completes a handshake with any subset
//!   of those messages). With `dangerously_skip_verification` none of this
//!   is checked.
//! - **No server bytes make it panic**, in the handshake or after it: it
//!   builds a patched embedded-tls 0.19.0 (`vendor/embedded-tls`, crate
//!   `umqtt-embedded-tls`; its `UMQTT-PATCHES.md` lists each change). A
//!   message out of place (a zero-length handshake record, a post-handshake
//!   CertificateRequest, anything after the server's Finished) ends the
//!   connection with [`TlsStackError::UnexpectedMessage`] and the alert
//!   unexpected_message; a record with no content type with
//!   [`TlsStackError::MalformedRecord`]. KeyUpdate is handled (RFC 8446
//!   §4.6.3: new read keys, and our own KeyUpdate and new write keys when the
//!   server asks); NewSessionTicket is ignored. An unprotected record after
//!   ServerHello (but a ChangeCipherSpec of the byte 1 during the
//!   handshake) is [`TlsStackError::UnexpectedMessage`]: no one on the path
//!   can forge a close_notify or a KeyUpdate without the keys.
//! - **The client certificate goes only to a server that proved who it
//!   is**: asked for one before its Certificate and CertificateVerify
//!   passed, the client sends an empty Certificate, and the connect fails.
//! - **What the server must speak:** TLS 1.3, key exchange P-256 (secp256r1),
//!   cipher suite TLS_AES_128_GCM_SHA256. A P-256 (ECDSA) certificate chain
//!   works without a heap; an RSA chain needs feature `tls-rsa` (an
//!   allocator). A server that offers only TLS 1.2 is refused with an error
//!   that says so ([`TlsStackError::Tls12Only`]).
//! - **Options:** client certificate and P-256 key (mutual TLS), ALPN, max
//!   fragment length, handshake and I/O timeouts. The random generator is a
//!   parameter ([`rand_core::CryptoRngCore`]): the OS generator on std, the
//!   device's TRNG on embedded.
//! - **Buffers:** the user's [`TlsBuffers`], lent to one connection at a time
//!   (see [the buffers](self#the-buffers)).
//! - **Never hangs, never spins forever:** `connect` (TCP, then the whole
//!   handshake) ends within the handshake timeout, even against a server
//!   that never stops sending (the deadlines are checked while bytes keep
//!   coming, not only when none are waiting); `receive` never waits:
//!   it returns `WouldBlock` when no whole record has arrived, and keeps
//!   plaintext it decrypted but could not hand over for the next call;
//!   `send` encrypts, writes and flushes within the I/O timeout. Waiting
//!   for data is [`TlsWait`], which waits with the inner stack's waiter (the
//!   std `StdWait` sleeps in the kernel).
//!
//! # Known limits (embedded-tls 0.19, as patched)
//!
//! - After the handshake, embedded-tls reports any alert but close_notify as
//!   `InternalError`, without its description; [`TlsStackError`] names the
//!   likely cause where it can ([`TlsStackError::AbortedAfterHandshake`]
//!   for an alert or a reset right after the handshake: probably the client
//!   certificate; [`TlsStackError::ClosedByServer`] for a close_notify: the
//!   server refused the client for a reason of its own).
//! - Alerts during the handshake go out unencrypted (servers accept them).
//! - One cipher suite (TLS_AES_128_GCM_SHA256), one key exchange (P-256),
//!   TLS 1.3 only; no session resumption.
//!
//! # What is verified
//!
//! The chain is checked in this crate (module `chain`, what rustpki leaves
//! out), then rustpki (embedded-tls `rustpki`) verifies every signature up to
//! the trust anchor and the server's CertificateVerify.
//!
//! - **Trust anchor:** among the CAs given, the first whose subject is the
//!   issuer of the chain's top certificate (and whose subjectKeyIdentifier is
//!   its authorityKeyIdentifier, when both carry one) and that passes the
//!   checks below. rustpki takes the chain once, so of two CAs with the same
//!   subject and no key identifiers only the first is tried. The anchor must
//!   be a CA; a self-signed CA may also be the server's own certificate.
//! - **Issuers:** every certificate after the first, and the anchor, must be
//!   a CA (basicConstraints); each CA's pathLenConstraint bounds the
//!   intermediate CAs below it (self-issued ones not counted; the anchor's
//!   too).
//! - **Key usage, when present:** digitalSignature on the server's
//!   certificate, keyCertSign on every CA. **Extended key usage, when
//!   present:** serverAuth or anyExtendedKeyUsage, on the server's
//!   certificate and the intermediates.
//! - **Critical extensions:** one this crate does not process (name
//!   constraints, policy constraints, ...) refuses the chain; certificate
//!   policies are ignored (no policy is asked for). An extension present
//!   twice makes the certificate malformed (RFC 5280 §4.2).
//! - **The name:** a DNS name is matched (RFC 6125, one leftmost wildcard)
//!   against every DNS SAN, and against the CN only when there is no DNS SAN;
//!   it is sent as SNI. An IP address (`TlsOptions::new("192.0.2.7")`, `::1`)
//!   is matched against the IP address SANs only, never a DNS SAN or CN that
//!   spells it, and no SNI is sent (RFC 6066 forbids an address there).
//!   rustpki's own name check (first 3 DNS SANs and the CN) is given one of
//!   the leaf's names, so it agrees instead of deciding: a mismatch is always
//!   [`CertError::NameMismatch`].
//! - **Dates:** of the chain and the anchor, when a wall clock is given
//!   ([`TlsStack::with_time`]; std: [`SystemTime`]).
//!
//! Not verified: name constraints (refused when critical, ignored
//! otherwise), policies, revocation (no CRL, no OCSP). A CN, or one of the
//! first 3 DNS SANs, longer than 64 bytes is refused ([`CertError::NameTooLong`]):
//! rustpki cannot read it.
//!
//! # The buffers
//!
//! embedded-tls takes its record buffers as `&'a mut [u8]`, and a connection
//! cannot be opened again, yet a stack that reconnects needs them for each
//! connection. [`TlsBuffers`] lends them to one connection at a time and
//! takes them back when it closes (the vendored embedded-tls's
//! `TlsConnection::close_and_release`), in safe Rust: this crate forbids
//! `unsafe`. A leaked connection keeps them forever: later connects fail
//! with [`TlsStackError::BuffersStillLent`].
//!
//! # Example
//!
//! ```no_run
//! # #[cfg(feature = "std")]
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
//! use umqtt_transports::tls::{TlsBuffers, TlsOptions, TlsStack, TlsWait, pem};
//!
//! let ca_pem = std::fs::read("ca.crt")?;
//! let mut ca_der = [0u8; 2048];
//! let ca = pem::decode(&ca_pem, "CERTIFICATE", &mut ca_der)?;
//!
//! let (mut read, mut write) = ([0u8; 16_640], [0u8; 4096]);
//! let buffers = TlsBuffers::new(&mut read, &mut write);
//! let options = TlsOptions::new("broker.example.com").ca(ca);
//! let rng = rand_core::OsRng; // feature tls-std
//! let stack = TlsStack::new(StdTcpStack::new(), StdWait::new(), StdClock::new(), rng, &buffers, options);
//! // `stack` is a TcpClientStack: hand it to umqtt_simple::Client::new, call
//! // `.with_waiter(TlsWait)` on the client, and connect to port 8883.
//! # let _ = (stack, TlsWait); Ok(()) }
//! # #[cfg(not(feature = "std"))]
//! # fn main() {}
//! ```
//!
//! # Async
//!
//! Feature `tls-async`: `TlsConnect` wraps any
//! [`embedded_nal_async::TcpConnect`] (embassy-net's `TcpClient`, a
//! modem's async driver) and is itself one; each `connect` opens a TCP
//! connection through it and runs the handshake, and the connection it
//! returns (`TlsStream`) is the TLS session as embedded-io-async `Read` +
//! `Write`. `umqtt_simple::asynch::Client` and umqtt-robust's async client
//! take a `&TlsConnect` where they took the plain stack. Everything above
//! holds for it too, from the same code (`decide.rs`, `provider.rs`,
//! `handshake.rs`, `verify.rs`, `chain.rs`; only the byte moving is its
//! own): options, verification, the handshake order, the client
//! certificate rule, the errors, and the [`TlsBuffers`], lent to one
//! connection at a time and returned when it is dropped (a second
//! `connect` while one is open fails with
//! [`TlsStackError::BuffersStillLent`]).
//!
//! Time is the client's: its connect deadline spans the TCP connect, the
//! handshake and the CONNACK (the client races `connect` against its
//! timer; dropped, the handshake closes the TCP connection and returns the
//! buffers), and each read or write is bounded by the client's own
//! deadlines, so [`TlsOptions::handshake_timeout_ms`] and
//! [`TlsOptions::io_timeout_ms`] are not used. A read dropped by a deadline
//! in the middle of a record goes on with it at the next read (the inner
//! connection's read must lose no bytes when dropped, as embassy-net's and
//! tokio's do); a write dropped half-way ends the session
//! ([`TlsStackError::WriteCut`]). `write` keeps plaintext until `flush`:
//! leave the async client's `set_flush_after_send` on (the default).
//!
//! While `connect` runs, its future holds the handshake's state (the
//! verifier's copy of the server's chain, `CERT_SIZE`, among it): about
//! 15 KiB on x86_64 with the defaults, in the task's future rather than on
//! a call stack.
//!
//! ```no_run
//! # #[cfg(feature = "tls-async")]
//! # mod demo {
//! use core::net::SocketAddr;
//!
//! use embedded_nal_async::TcpConnect;
//! use rand_core::CryptoRngCore;
//! use umqtt_simple::asynch::Client;
//! use umqtt_simple::{Options, QoS};
//! use umqtt_transports::Timer;
//! use umqtt_transports::tls::{MaxFragmentLength, TlsBuffers, TlsConnect, TlsOptions};
//!
//! /// One QoS 1 message over TLS through any async stack (`net`: embassy-net's
//! /// `TcpClient`, say), with the device's random generator and timer.
//! pub async fn hello<N: TcpConnect, R: CryptoRngCore, T: Timer>(
//!     net: &N,
//!     rng: R,
//!     timer: T,
//!     ca_der: &[u8],
//!     broker: SocketAddr,
//! ) -> bool {
//!     // 4 KiB records (the server must honour max fragment length).
//!     let (mut read, mut write) = ([0u8; 4352], [0u8; 1024]);
//!     let buffers = TlsBuffers::new(&mut read, &mut write);
//!     let options = TlsOptions::new("broker.example.com")
//!         .ca(ca_der)
//!         .max_fragment_length(MaxFragmentLength::Bits12);
//!     let tls = TlsConnect::new(net, rng, &buffers, options);
//!     let (mut tx, mut rx) = ([0u8; 1024], [0u8; 1024]);
//!     let mut client = Client::new(&tls, timer, &mut tx, &mut rx, Options::new("device"));
//!     // TCP connect, TLS handshake and CONNACK, within the connect timeout.
//!     client.connect(broker).await.is_ok()
//!         && client
//!             .publish(b"devices/hello", b"over TLS", false, QoS::AtLeastOnce)
//!             .await
//!             .is_ok()
//!         && client.disconnect().await.is_ok()
//! }
//! # }
//! # fn main() {}
//! ```
//!
//! [embedded-tls]: https://docs.rs/embedded-tls

pub mod adapter;
#[cfg(feature = "tls-async")]
mod async_io;
mod chain;
#[cfg(feature = "tls-async")]
mod connect;
mod decide;
mod error;
mod framing;
mod handshake;
mod lend;
mod options;
pub mod pem;
mod provider;
mod stack;
mod verify;
mod wait;

use embedded_tls::blocking::Aes128GcmSha256;

pub use adapter::{IoControl, IoOutcome, NalIo, NalIoError};
#[cfg(feature = "tls-async")]
pub use connect::{TlsConnect, TlsStream};
pub use embedded_tls::blocking::MaxFragmentLength;
pub use error::{TlsDnsError, TlsStackError};
pub use handshake::HandshakeError;
pub use lend::{StillLent, TlsBuffers};
pub use options::TlsOptions;
pub use stack::{TlsSocket, TlsStack};
#[cfg(feature = "std")]
pub use verify::SystemTime;
pub use verify::{CertError, NoTime, TlsTime};
pub use wait::TlsWait;

/// The one cipher suite offered (every TLS 1.3 server supports it).
type Suite = Aes128GcmSha256;

/// The default size of the copy of the server's certificate chain that the
/// verifier keeps during the handshake, in bytes.
pub const DEFAULT_CERT_SIZE: usize = 4096;
