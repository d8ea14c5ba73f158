//! Monotonic time, the one thing embedded-nal leaves out.

/// A monotonic clock in milliseconds.
///
/// The client reads it to enforce every deadline (connect, acknowledgements,
/// keepalive). It must never go backwards; where it starts does not matter.
/// A 32-bit tick counter can be widened to `u64` by the implementation.
pub trait Clock {
    /// Milliseconds since an arbitrary, fixed point in the past.
    fn now_ms(&self) -> u64;
}

impl<T: Clock + ?Sized> Clock for &T {
    fn now_ms(&self) -> u64 {
        (**self).now_ms()
    }
}
