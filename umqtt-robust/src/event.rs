//! What the reconnecting client tells the application about its connection.

/// A change of the connection, reported to the event callback and the log.
///
/// More kinds may be added: match with a wildcard arm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Event {
    /// The connection was lost (the reason is logged).
    Lost,
    /// A reconnect attempt failed; the next comes after `retry_in_ms`.
    ReconnectFailed {
        /// Failed attempts in a row.
        attempt: u32,
        /// Milliseconds until the next attempt.
        retry_in_ms: u32,
    },
    /// Connected again.
    Reconnected {
        /// Whether the broker kept the session (subscriptions and queued
        /// QoS 1 messages).
        session_present: bool,
        /// Attempts it took.
        attempts: u32,
    },
    /// The subscriptions were sent again because the broker had forgotten them.
    Resubscribed {
        /// How many filters.
        filters: usize,
    },
    /// `max_attempts` attempts failed in a row; no more until `connect`.
    GaveUp {
        /// Attempts made.
        attempts: u32,
    },
    /// A message of the outbox was delivered: its PUBACK came (QoS 1), or
    /// it was sent (QoS 0); `seq` is what `RobustClient::queue` returned.
    Delivered {
        /// The message's sequence number in the outbox.
        seq: u32,
    },
    /// Messages were lost: batched QoS 0 messages
    /// ([`Options::batch_qos0`](umqtt_simple::Options::batch_qos0)) with the
    /// connection before they were sent (reported right after
    /// [`Event::Lost`]), or the oldest messages of a full outbox
    /// ([`WhenFull::DropOldest`](crate::outbox::WhenFull::DropOldest)).
    Dropped {
        /// How many.
        messages: u32,
    },
}

/// The callback that hears about connection changes.
pub type EventCallback<'a> = &'a mut dyn FnMut(Event);
