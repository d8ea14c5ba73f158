//! The async client's pieces on std that are not networking: a [`Timer`]
//! that works under any executor ([`StdTimer`]) and the smallest executor
//! ([`block_on`]). (They used to live in `std_tcp`, which still re-exports
//! them.)
//!
//! ```
//! use umqtt_transports::std_async::{StdTimer, block_on};
//! use umqtt_transports::{Clock, Timer};
//!
//! let mut timer = StdTimer::new();
//! let until = timer.now_ms() + 5;
//! block_on(timer.sleep_until(until));
//! assert!(timer.now_ms() >= until);
//! ```
//!
//! [`Timer`]: crate::Timer

mod block_on;
mod timer;

pub use block_on::block_on;
pub use timer::StdTimer;
