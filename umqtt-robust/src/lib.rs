#![doc = include_str!("../README.md")]
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

#[cfg(test)]
extern crate std;

mod backoff;
mod client;
mod error;
mod subscriptions;

pub use backoff::{Backoff, Random, XorShift32};
pub use client::{
    DEFAULT_CALL_TIMEOUT_MS, Event, EventCallback, RobustClient, RobustClientError, RobustOptions,
};
pub use error::RobustError;
pub use subscriptions::{Subscriptions, SubscriptionsFull};

#[cfg(test)]
mod tests;
