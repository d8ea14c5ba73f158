//! The outbox: messages the reconnecting client has accepted and not yet
//! delivered, kept across outages (and, in a file or on flash, across power
//! cuts), sent in order once a connection is up.
//!
//! [`Outbox`] is the storage, a small trait a RAM ring ([`RamOutbox`]), a
//! file log (`FileOutbox`, feature `std`) or a flash driver implements. What
//! to send next, what was acknowledged and what a full outbox drops is
//! decided above it, once for both front-ends (`flow.rs`).
//!
//! # What an implementation must do
//! - Keep messages in the order they were pushed, each under a sequence
//!   number it assigns (increasing; it may wrap only after `u32::MAX`).
//! - Give them back by sequence number ([`Outbox::first`],
//!   [`Outbox::next_after`]), with the packet id recorded by
//!   [`Outbox::mark_sent`], until [`Outbox::remove`] removes them, in any
//!   order (acknowledgements may come in any order).
//! - Refuse what does not fit with [`OutboxError::Full`], changing nothing.
//! - For persistence: after a restart, give back every message pushed and
//!   not removed, with its packet id if one was recorded. A record cut short
//!   by a power cut must be detected (a checksum) and dropped, never
//!   delivered as a corrupt message. A message may come back after it was
//!   removed, if the removal was not yet durable: it is then sent again
//!   (QoS 1 allows duplicates; losses are what must not happen).
//!
//! # On flash
//! NOR flash only clears bits when programmed and sets them back a whole
//! block at a time, so a flash outbox appends: each message in a record with
//! a checksum ([`checksum`]) over its length, number and bytes; "sent" and
//! "removed" either programmed in place into bits left erased for them, or
//! appended as records of their own. Bits programmed in place are outside the
//! checksum, so read them to err towards a duplicate: removed only if every
//! bit of the mark is programmed, a packet id only if it and its stored
//! complement agree. A block is reclaimed (erased) once everything in it is
//! removed, after its header is zeroed, so an erase cut short cannot leave a
//! valid header over records whose marks read erased again; an erased header
//! must be recognised as such (the CRC-32 of four `0xFF` bytes is
//! `0xFFFFFFFF`). A record that fails its checksum ends its block: the next
//! one goes to a fresh block. `umqtt-robust/tests/flash_outbox.rs` is a
//! worked sketch of all this over a simulated NOR array, tested with a power
//! cut at every byte a workload writes.

#[cfg(feature = "std")]
mod file;
mod flow;
mod ram;
mod record;

#[cfg(feature = "std")]
pub use file::{FileOutbox, FileOutboxOptions, FsyncPolicy, OpenError, OpenReport, TornRecord};
pub(crate) use flow::{Flow, Next, checked_message};
pub use flow::{OutboxOptions, WhenFull};
pub use ram::RamOutbox;
pub use record::{FRAME_OVERHEAD, RECORD_OVERHEAD, Unframed, checksum, frame, unframe};

use umqtt_simple::QoS;

/// A message in the outbox.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Queued<'m> {
    /// Its sequence number, given by the outbox when it was pushed.
    pub seq: u32,
    /// The topic to publish to.
    pub topic: &'m [u8],
    /// The message.
    pub payload: &'m [u8],
    /// Its QoS (0 or 1).
    pub qos: QoS,
    /// The retain flag.
    pub retain: bool,
    /// The packet id it was last sent with (QoS 1), if it was sent: a
    /// resend uses it again, with DUP set.
    pub packet_id: Option<u16>,
}

impl<'m> Queued<'m> {
    /// A message to push (the outbox gives it its sequence number).
    pub const fn new(topic: &'m [u8], payload: &'m [u8], qos: QoS, retain: bool) -> Self {
        Queued {
            seq: 0,
            topic,
            payload,
            qos,
            retain,
            packet_id: None,
        }
    }
}

/// Why the outbox refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum OutboxError {
    /// The message does not fit now: `needed` bytes, `free` free.
    Full {
        /// Bytes the message needs (with its record header).
        needed: usize,
        /// Bytes free now.
        free: usize,
    },
    /// The message could never fit: `needed` bytes, `capacity` in all.
    TooLarge {
        /// Bytes the message needs (with its record header).
        needed: usize,
        /// The outbox's whole capacity.
        capacity: usize,
    },
    /// No message has that sequence number.
    UnknownSeq(u32),
    /// The storage failed (the file or flash driver logs why).
    Storage,
}

impl core::fmt::Display for OutboxError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        match self {
            OutboxError::Full { needed, free } => {
                write!(
                    f,
                    "the outbox is full: the message needs {needed} bytes, {free} are free"
                )
            }
            OutboxError::TooLarge { needed, capacity } => write!(
                f,
                "the message needs {needed} bytes of outbox, which holds {capacity} in all"
            ),
            OutboxError::UnknownSeq(seq) => write!(f, "no message {seq} in the outbox"),
            OutboxError::Storage => f.write_str("the outbox's storage failed (see the log)"),
        }
    }
}

impl core::error::Error for OutboxError {}

/// Storage for messages accepted and not yet delivered (see the module
/// documentation for what an implementation must do).
pub trait Outbox {
    /// Appends a message (its `seq` and `packet_id` are ignored) and
    /// returns the sequence number it gets.
    fn push(&mut self, message: &Queued<'_>) -> Result<u32, OutboxError>;
    /// The oldest message.
    fn first(&self) -> Option<Queued<'_>>;
    /// The oldest message pushed after the one numbered `seq`.
    fn next_after(&self, seq: u32) -> Option<Queued<'_>>;
    /// Records that message `seq` was sent with `packet_id`.
    fn mark_sent(&mut self, seq: u32, packet_id: u16) -> Result<(), OutboxError>;
    /// Removes message `seq` (delivered, or dropped).
    fn remove(&mut self, seq: u32) -> Result<(), OutboxError>;
    /// How many messages it holds.
    fn len(&self) -> usize;
    /// Whether it holds none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}
