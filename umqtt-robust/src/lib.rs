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

#[cfg(any(test, feature = "std"))]
extern crate std;

#[macro_use]
mod front_end;

#[cfg(feature = "async")]
pub mod asynch;
mod backoff;
mod blocking;
mod engine;
mod error;
mod event;
mod inner;
mod options;
pub mod outbox;
mod reconnecting;
mod subscriptions;

pub use backoff::{Backoff, Random, XorShift32};
pub use blocking::{RobustClient, RobustClientError};
pub use error::RobustError;
pub use event::{Event, EventCallback};
pub use inner::InnerClient;
pub use options::{DEFAULT_CALL_TIMEOUT_MS, RobustOptions};
pub use reconnecting::Reconnecting;
pub use subscriptions::{Subscriptions, SubscriptionsFull};
