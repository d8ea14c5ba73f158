//! A reconnecting MQTT 3.1.1 client for `no_std` targets, with no heap: the
//! port of MicroPython's `umqtt.robust`, built on [`umqtt_simple`].
//!
//! [`RobustClient`] has the API of [`umqtt_simple::Client`] (a program
//! switches by changing the type) and adds what field devices need:
//!
//! - reconnects after any network or protocol error, with exponential
//!   [`Backoff`] and jitter (minimum, maximum and an optional attempt limit;
//!   the randomness source is pluggable through [`Random`]);
//! - keeps the application's clean-session choice, remembers subscriptions
//!   ([`Subscriptions`], in a fixed number of bytes) and restores them when
//!   the broker kept no session;
//! - sends an unacknowledged QoS 1 PUBLISH again with DUP after a reconnect,
//!   so every QoS 1 publish that returned `Ok` reached the broker;
//! - bounds every call: `check_msg` never waits for the backoff, and
//!   `publish`, `subscribe` and `wait_msg` give up with
//!   [`RobustError::Offline`] after the outage deadline;
//! - reports connection changes through an [`Event`] callback and `log`.
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
mod event;
mod options;
mod subscriptions;

pub use backoff::{Backoff, Random, XorShift32};
pub use client::{RobustClient, RobustClientError};
pub use error::RobustError;
pub use event::{Event, EventCallback};
pub use options::{DEFAULT_CALL_TIMEOUT_MS, RobustOptions};
pub use subscriptions::{Subscriptions, SubscriptionsFull};

#[cfg(test)]
mod tests;
