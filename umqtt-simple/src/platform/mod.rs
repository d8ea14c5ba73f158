//! What a port provides besides its embedded-nal stack: a monotonic
//! [`Clock`], a [`Wait`] for when the stack has no data yet (or [`Spin`]),
//! and, for the async client, a [`Timer`] to sleep on. The client owns these
//! traits; umqtt-transports implements them for std, embassy and its TLS
//! stack.

mod clock;
mod timer;
mod wait;

pub use clock::Clock;
pub use timer::Timer;
pub use wait::{Spin, Wait};
