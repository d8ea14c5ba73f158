//! Platform pieces for umqtt: what a client needs from the machine it runs on.
//!
//! An MQTT client needs three things from its platform, and this crate holds the
//! traits for the two that [`embedded_nal`] does not define, plus ready-made
//! implementations:
//!
//! - a TCP stack: any [`embedded_nal::TcpClientStack`] (with [`embedded_nal::Dns`]
//!   for host names). With the `std` feature, [`std_tcp::StdTcpStack`] is one
//!   over `std::net` with timeouts and `TCP_NODELAY`.
//! - a monotonic clock: [`Clock`], in milliseconds. With `std`,
//!   [`std_tcp::StdClock`].
//! - optionally, a way to wait for data without spinning: [`Wait`]. The default,
//!   [`Spin`], works on every stack; with `std`, [`std_tcp::StdWait`] sleeps in
//!   the kernel until the socket is readable or the deadline arrives.
//!
//! - TLS (feature `tls`): [`tls::TlsStack`], a `TcpClientStack` that wraps
//!   any other one with TLS 1.3 (embedded-tls, no heap).
//!
//! The crate knows nothing of MQTT: it is the boundary a porter implements or
//! picks from. (The check a porter runs against their stack and a broker,
//! which speaks MQTT, is the `umqtt-conformance` crate, above umqtt-simple.)
//!
//! ```
//! use umqtt_transports::Clock;
//!
//! /// A clock driven by a hardware tick counter (here, a plain value).
//! struct Ticks(core::cell::Cell<u64>);
//! impl Clock for Ticks {
//!     fn now_ms(&self) -> u64 {
//!         self.0.get()
//!     }
//! }
//! let clock = Ticks(core::cell::Cell::new(5));
//! assert_eq!(clock.now_ms(), 5);
//! ```
#![no_std]
// `deny`, not `forbid`: the one module that lends the TLS record buffers
// (`tls::lend`, feature `tls`) allows it; nothing else may.
#![deny(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(feature = "std")]
extern crate std;

mod clock;
mod wait;

#[cfg(feature = "std")]
pub mod memory;
#[cfg(feature = "std")]
pub mod std_tcp;
#[cfg(feature = "tls")]
pub mod tls;

pub use clock::Clock;
pub use wait::{Spin, Wait};
