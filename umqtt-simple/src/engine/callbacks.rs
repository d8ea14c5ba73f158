//! The application's callbacks, and what handing an event to them tells
//! the request that waits.

use crate::packet::PacketType;
use crate::session::{Event, Message, Undelivered, event_type};

/// The callback that receives every message: a borrowed closure, so no heap
/// is needed.
pub type Callback<'a> = &'a mut dyn FnMut(Message<'_>);

/// The callback that hears of every message too large to deliver
/// (`set_undelivered_callback`).
pub type UndeliveredCallback<'a> = &'a mut dyn FnMut(Undelivered<'_>);

/// The callback that hears of every PUBACK of a message sent through the
/// QoS 1 window (`set_window`), with its packet id.
pub type AckCallback<'a> = &'a mut dyn FnMut(u16);

/// The application's callbacks.
#[derive(Default)]
pub(crate) struct Callbacks<'a> {
    pub(crate) message: Option<Callback<'a>>,
    pub(crate) undelivered: Option<UndeliveredCallback<'a>>,
    pub(crate) acked: Option<AckCallback<'a>>,
}

impl Callbacks<'_> {
    /// Delivers a message or a report to its callback; says what the
    /// waiting call needs to know of the event.
    pub(crate) fn hand_over(&mut self, event: Event<'_>) -> Handled {
        match event {
            Event::Message(message) => {
                match self.message.as_mut() {
                    Some(callback) => callback(message),
                    None => log::warn!("message dropped: no callback set"),
                }
                Handled::Other(PacketType::Publish)
            }
            Event::Skipped(report) => match self.undelivered.as_mut() {
                Some(undelivered) => {
                    undelivered(report);
                    Handled::Other(PacketType::Publish)
                }
                None => Handled::Unreported(report.size),
            },
            Event::ConnAck { session_present } => Handled::ConnAck { session_present },
            Event::Acked => Handled::Acked,
            Event::PubAcked(id) => {
                if let Some(acked) = self.acked.as_mut() {
                    acked(id);
                }
                Handled::Other(PacketType::PubAck)
            }
            other => Handled::Other(event_type(&other)),
        }
    }
}

/// What a driver handled, as far as the waiting call cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    ConnAck {
        session_present: bool,
    },
    /// The acknowledgement the call waits for.
    Acked,
    /// A message too large to deliver, with no callback to tell: its size.
    Unreported(usize),
    /// Anything else (delivered, answered or ignored): its packet type.
    Other(PacketType),
}

impl Handled {
    pub(crate) fn packet_type(self) -> PacketType {
        match self {
            Handled::ConnAck { .. } => PacketType::ConnAck,
            Handled::Acked => PacketType::PubAck,
            Handled::Unreported(_) => PacketType::Publish,
            Handled::Other(packet) => packet,
        }
    }
}
