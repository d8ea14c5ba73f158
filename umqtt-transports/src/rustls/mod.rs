//! TLS 1.2 and 1.3 over any [`TcpClientStack`](embedded_nal::TcpClientStack)
//! with rustls, on std (feature `tls-rustls`): [`RustlsStack`].
//!
//! The second TLS engine, for desktops and servers that must reach every
//! broker `mosquitto_pub` reaches: embedded-tls (module [`tls`](crate::tls)
//! when built, `no_std`, no heap) speaks TLS 1.3 with P-256 and one cipher
//! suite only, so a TLS 1.2 server (Azure IoT Hub, a TLS 1.2 load balancer)
//! or one that wants X25519 is out of its reach. This engine uses rustls 0.23
//! with ring's crypto (no cmake, no aws-lc):
//!
//! - **What it speaks:** TLS 1.2 and 1.3 (or one of them:
//!   [`TlsVersions`]); ECDHE with X25519, P-256 or P-384; AES-GCM and
//!   ChaCha20-Poly1305; RSA (PKCS#1 and PSS), ECDSA and Ed25519 server
//!   certificates; ALPN; mutual TLS with an RSA, ECDSA or Ed25519 client key.
//! - **What it trusts:** the CAs given ([`RustlsOptions::ca_der`],
//!   [`RustlsOptions::ca_pem`]) or the OS trust store
//!   ([`RustlsOptions::system_roots`], rustls-native-certs: `SSL_CERT_FILE`
//!   and `SSL_CERT_DIR` when set, as OpenSSL does), verified by webpki
//!   (chain, name, dates, key usage). Skipping verification takes
//!   [`RustlsOptions::dangerously_skip_verification`], which logs a warning
//!   at each connect.
//! - **The same client:** [`RustlsStack`] is a `TcpClientStack` (and `Dns`
//!   over a stack that is one), so umqtt-simple's blocking `Client` and
//!   umqtt-robust take it unchanged; wait with [`RustlsWait`].
//! - **Deadlines:** `connect` (the inner TCP connect, then the whole
//!   handshake) ends within the handshake timeout, waiting with the inner
//!   stack's waiter between records; `receive` never blocks (rustls keeps a
//!   partial record, so a wait that ends mid-record loses nothing); `send`
//!   hands its records to the inner stack within the I/O timeout or ends the
//!   session ([`RustlsError::TimedOut`]).
//! - **Errors say what was wrong:** [`RustlsError::UnknownCa`],
//!   [`RustlsError::NameMismatch`], [`RustlsError::Expired`],
//!   [`RustlsError::ProtocolVersion`] (no TLS version in common),
//!   [`RustlsError::NoCommonAlgorithms`], [`RustlsError::AlpnRefused`],
//!   [`RustlsError::ClientCertificateRequired`], ...; a bad CA, client
//!   certificate or key is a [`ConfigError`] from [`RustlsStack::new`],
//!   before any connection.
//!
//! - **The async clients too:** [`RustlsConnect`] wraps any
//!   embedded-nal-async `TcpConnect` (tokio's sockets behind one, say) with
//!   the same options, verification and errors; its connections are
//!   [`RustlsStream`]s.
//!
//! Unlike the embedded engine, it allocates (rustls keeps its record buffers
//! and session state on the heap) and needs std.
//!
//! # Example
//!
//! ```no_run
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use umqtt_transports::rustls::{RustlsOptions, RustlsStack, RustlsWait};
//! use umqtt_transports::std_tcp::{StdClock, StdTcpStack, StdWait};
//!
//! let options = RustlsOptions::new("broker.example.com").system_roots();
//! let stack = RustlsStack::new(StdTcpStack::new(), StdWait::new(), StdClock::new(), &options)?;
//! // `stack` is a TcpClientStack: hand it to umqtt_simple::Client::new, call
//! // `.with_waiter(RustlsWait)` on the client, and connect to port 8883.
//! # let _ = (stack, RustlsWait); Ok(()) }
//! ```

mod connect;
mod error;
mod options;
mod stack;
mod wait;

pub use ::rustls::pki_types::PrivateKeyDer;
pub use ::rustls::{AlertDescription, ProtocolVersion, SupportedCipherSuite};
pub use connect::{RustlsConnect, RustlsStream};
pub use error::{ConfigError, RustlsError};
pub use options::{RustlsOptions, TlsVersions};
pub use stack::{RustlsSocket, RustlsStack};
pub use wait::RustlsWait;

/// The stack over the std TCP stack, as most programs use it.
#[cfg(feature = "std")]
pub type StdRustlsStack =
    RustlsStack<crate::std_tcp::StdTcpStack, crate::std_tcp::StdClock, crate::std_tcp::StdWait>;
