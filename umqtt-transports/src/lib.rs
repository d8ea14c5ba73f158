#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(clippy::unwrap_used, clippy::expect_used, clippy::panic)
)]

#[cfg(feature = "std")]
extern crate std;

#[cfg(feature = "embassy-time")]
pub mod embassy;
#[cfg(feature = "std")]
pub mod memory;
#[cfg(feature = "tls-rustls")]
pub mod rustls;
#[cfg(feature = "std")]
pub mod std_async;
#[cfg(feature = "std")]
pub mod std_tcp;
#[cfg(feature = "tls")]
pub mod tls;

/// The client's platform traits, implemented here (std, embassy, TLS);
/// umqtt-simple owns them.
pub use umqtt_simple::platform::{Clock, Spin, Timer, Wait};
