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

mod clock;
mod timer;
mod wait;

#[cfg(feature = "embassy-time")]
pub mod embassy;
#[cfg(feature = "std")]
pub mod memory;
#[cfg(feature = "std")]
pub mod std_tcp;
#[cfg(feature = "tls")]
pub mod tls;

pub use clock::Clock;
pub use timer::Timer;
pub use wait::{Spin, Wait};
