//! What both drivers (blocking and async) do alike around the session, with
//! no I/O of their own: checking requests before anything is sent, handing
//! events to the callbacks, and judging what a call received.

use crate::error::Error;
use crate::packet::{
    DecodeError, EncodeError, Packet, PacketType, Publish, QoS, SubAckCode, Subscribe,
    SubscribeFilters, Unsubscribe, UnsubscribeFilters,
};
use crate::session::{Event, Message, Session, Undelivered, event_type};

/// The callback that receives every message: a borrowed closure, so no heap
/// is needed.
pub type Callback<'a> = &'a mut dyn FnMut(Message<'_>);

/// The callback that hears of every message too large to deliver
/// (`set_undelivered_callback`).
pub type UndeliveredCallback<'a> = &'a mut dyn FnMut(Undelivered<'_>);

/// The application's callbacks.
#[derive(Default)]
pub(crate) struct Callbacks<'a> {
    pub(crate) message: Option<Callback<'a>>,
    pub(crate) undelivered: Option<UndeliveredCallback<'a>>,
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

/// The answer to CONNECT, once the wait for it ended (`None`: in time).
pub(crate) fn connack<E>(handled: Option<Handled>) -> Result<bool, Error<E>> {
    match handled {
        Some(Handled::ConnAck { session_present }) => Ok(session_present),
        Some(other) => Err(Error::UnexpectedPacket(other.packet_type())),
        None => Err(Error::Timeout(crate::Waiting::ConnAck)),
    }
}

/// Checks a packet that arrived while nothing waited for it (the session
/// already refused acknowledgements nothing waits for); a message too large
/// to deliver is kept for the next `wait_msg`/`check_msg` to report.
pub(crate) fn unsolicited<E>(session: &mut Session<'_>, handled: Handled) -> Result<(), Error<E>> {
    match handled {
        Handled::Other(_) => Ok(()),
        Handled::Unreported(size) => {
            session.defer_report(size);
            Ok(())
        }
        other => Err(Error::UnexpectedPacket(other.packet_type())),
    }
}

/// What `wait_msg`/`check_msg` make of a handled packet: whether one was,
/// or the error of a message that could not be delivered.
pub(crate) fn handled_msg<E>(
    session: &mut Session<'_>,
    handled: Option<Handled>,
) -> Result<bool, Error<E>> {
    match handled {
        None => Ok(false),
        Some(Handled::Unreported(size)) => Err(too_large(session, size)),
        Some(other) => unsolicited(session, other).map(|()| true),
    }
}

/// A message skipped earlier inside another call and not reported yet.
pub(crate) fn earlier_unreported<E>(session: &mut Session<'_>) -> Result<(), Error<E>> {
    match session.take_unreported() {
        Some(size) => Err(too_large(session, size)),
        None => Ok(()),
    }
}

fn too_large<E>(session: &Session<'_>, size: usize) -> Error<E> {
    Error::MessageTooLarge {
        size,
        capacity: session.rx_capacity(),
    }
}

/// A PUBLISH checked before anything is sent, with a stand-in packet id
/// for QoS 1 (the real one is taken once the connection is known up).
/// Publishing QoS 2 is refused.
pub(crate) fn checked_publish<'p, E>(
    topic: &'p [u8],
    payload: &'p [u8],
    retain: bool,
    qos: QoS,
) -> Result<Publish<'p>, Error<E>> {
    let publish = Publish::new(topic, payload, qos)
        .with_retain(retain)
        .with_packet_id(1);
    publish.validate()?;
    if qos == QoS::ExactlyOnce {
        return Err(EncodeError::PublishQoS2NotSupported.into());
    }
    Ok(publish)
}

/// A QoS 1 PUBLISH with the packet id the caller keeps, checked.
pub(crate) fn checked_publish_with_id<'p, E>(
    topic: &'p [u8],
    payload: &'p [u8],
    retain: bool,
    packet_id: u16,
    dup: bool,
) -> Result<Publish<'p>, Error<E>> {
    let mut publish = Publish::new(topic, payload, QoS::AtLeastOnce)
        .with_retain(retain)
        .with_packet_id(packet_id);
    publish.dup = dup;
    publish.validate()?;
    Ok(publish)
}

/// A SUBSCRIBE checked before anything is sent (stand-in packet id), with
/// room for every granted QoS and a callback to deliver to.
pub(crate) fn checked_subscribe<'f, E>(
    filters: &'f [(&'f [u8], QoS)],
    granted: &[Option<QoS>],
    callbacks: &Callbacks<'_>,
) -> Result<Subscribe<'f>, Error<E>> {
    if granted.len() < filters.len() {
        return Err(Error::TooManyFilters {
            filters: filters.len(),
            slots: granted.len(),
        });
    }
    let probe = Subscribe {
        packet_id: 1,
        filters: SubscribeFilters::List(filters),
    };
    Packet::Subscribe(probe).validate()?;
    if callbacks.message.is_none() {
        return Err(Error::NoCallback);
    }
    Ok(probe)
}

/// An UNSUBSCRIBE checked before anything is sent (stand-in packet id).
pub(crate) fn checked_unsubscribe<'f, E>(
    filters: &'f [&'f [u8]],
) -> Result<Unsubscribe<'f>, Error<E>> {
    let probe = Unsubscribe {
        packet_id: 1,
        filters: UnsubscribeFilters::List(filters),
    };
    Packet::Unsubscribe(probe).validate()?;
    Ok(probe)
}

/// Writes the QoS granted by the SUBACK just received into `granted`; a
/// refusal is [`Error::SubscribeRefused`] for the first refused filter,
/// after all results are written.
pub(crate) fn granted<E>(
    session: &Session<'_>,
    filters: usize,
    granted: &mut [Option<QoS>],
) -> Result<(), Error<E>> {
    let codes = session.last_suback::<E>()?;
    if codes.return_codes.len() != filters {
        return Err(Error::Protocol(DecodeError::InvalidLength {
            packet: PacketType::SubAck,
            len: 2 + codes.return_codes.len(),
        }));
    }
    let mut refused = None;
    for (i, (slot, code)) in granted.iter_mut().zip(codes.codes()).enumerate() {
        *slot = match code {
            SubAckCode::GrantedQoS0 => Some(QoS::AtMostOnce),
            SubAckCode::GrantedQoS1 => Some(QoS::AtLeastOnce),
            SubAckCode::GrantedQoS2 => Some(QoS::ExactlyOnce),
            SubAckCode::Failure => {
                refused.get_or_insert(i);
                None
            }
        };
    }
    match refused {
        Some(index) => Err(Error::SubscribeRefused { index }),
        None => Ok(()),
    }
}

/// The options' will, checked: the topic, and a message that fits its
/// 16-bit length.
pub(crate) fn checked_will<'a, E>(
    topic: &'a [u8],
    message: &'a [u8],
    retain: bool,
    qos: QoS,
) -> Result<crate::packet::LastWill<'a>, Error<E>> {
    crate::packet::validate_topic_name(topic)?;
    if message.len() > usize::from(u16::MAX) {
        return Err(Error::Invalid(EncodeError::TooLong {
            field: crate::packet::Field::WillMessage,
            len: message.len(),
        }));
    }
    Ok(crate::packet::LastWill {
        topic,
        message,
        qos,
        retain,
    })
}
