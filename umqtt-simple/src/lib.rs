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

#[cfg(feature = "async")]
pub mod asynch;
mod blocking;
pub mod engine;
mod error;
mod front_end;
mod options;
pub mod packet;
pub mod platform;
mod session;

pub use blocking::{Client, ClientError};
pub use engine::{AckCallback, Callback, Engine, UndeliveredCallback};
pub use error::{CoreError, Error, ErrorKind, Waiting};
pub use options::{
    DEFAULT_ACK_TIMEOUT_MS, DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_KEEPALIVE_S,
    DEFAULT_SEND_TIMEOUT_MS, MAX_DEFAULT_PING_TIMEOUT_MS, Options,
};
pub use packet::QoS;
pub use platform::{Clock, Spin, Timer, Wait};
pub use session::released::AWAITING_RELEASE;
pub use session::{MIN_RX_BUFFER, MIN_TX_BUFFER, Message, Undelivered};
