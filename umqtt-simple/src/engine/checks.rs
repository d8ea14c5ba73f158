//! What every request checks before anything is sent, and how it judges
//! what it received: no I/O, no stack error type.

use super::callbacks::{Callbacks, Handled};
use crate::error::{CoreError, Error};
use crate::packet::{
    DecodeError, EncodeError, PacketType, Publish, QoS, Subscribe, SubscribeFilters, Unsubscribe,
    UnsubscribeFilters,
};
use crate::session::Session;

/// The answer to CONNECT, once the wait for it ended (`None`: in time).
pub(crate) fn connack(handled: Option<Handled>) -> Result<bool, CoreError> {
    match handled {
        Some(Handled::ConnAck { session_present }) => Ok(session_present),
        Some(other) => Err(Error::UnexpectedPacket(other.packet_type())),
        None => Err(Error::Timeout(crate::Waiting::ConnAck)),
    }
}

/// Checks a packet that arrived while nothing waited for it (the session
/// already refused acknowledgements nothing waits for); a message too large
/// to deliver is kept for the next `wait_msg`/`check_msg` to report.
pub(crate) fn unsolicited(session: &mut Session<'_>, handled: Handled) -> Result<(), CoreError> {
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
pub(crate) fn handled_msg(
    session: &mut Session<'_>,
    handled: Option<Handled>,
) -> Result<bool, CoreError> {
    match handled {
        None => Ok(false),
        Some(Handled::Unreported(size)) => Err(too_large(session, size)),
        Some(other) => unsolicited(session, other).map(|()| true),
    }
}

/// A message skipped earlier inside another call and not reported yet.
pub(crate) fn earlier_unreported(session: &mut Session<'_>) -> Result<(), CoreError> {
    match session.take_unreported() {
        Some(size) => Err(too_large(session, size)),
        None => Ok(()),
    }
}

fn too_large(session: &Session<'_>, size: usize) -> CoreError {
    Error::MessageTooLarge {
        size,
        capacity: session.rx_capacity(),
    }
}

/// Checks a PUBLISH before anything is sent; one without the caller's id
/// gets a stand-in (the real one is taken once the connection is known
/// up). Publishing QoS 2 is refused.
pub(crate) fn check_publish(publish: &mut Publish<'_>, given_id: bool) -> Result<(), CoreError> {
    if !given_id {
        publish.packet_id = 1;
    }
    publish.validate()?;
    if publish.qos == QoS::ExactlyOnce {
        return Err(EncodeError::PublishQoS2NotSupported.into());
    }
    Ok(())
}

/// A SUBSCRIBE checked before anything is sent (stand-in packet id), with
/// room for every granted QoS and a callback to deliver to.
pub(crate) fn checked_subscribe<'f>(
    filters: &'f [(&'f [u8], QoS)],
    granted: &[Option<QoS>],
    callbacks: &Callbacks<'_>,
) -> Result<Subscribe<'f>, CoreError> {
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
    probe.validate()?;
    if callbacks.message.is_none() {
        return Err(Error::NoCallback);
    }
    Ok(probe)
}

/// An UNSUBSCRIBE checked before anything is sent (stand-in packet id).
pub(crate) fn checked_unsubscribe<'f>(
    filters: &'f [&'f [u8]],
) -> Result<Unsubscribe<'f>, CoreError> {
    let probe = Unsubscribe {
        packet_id: 1,
        filters: UnsubscribeFilters::List(filters),
    };
    probe.validate()?;
    Ok(probe)
}

/// Writes the QoS granted by the SUBACK just received into `granted`; a
/// refusal is [`Error::SubscribeRefused`] for the first refused filter,
/// after all results are written.
pub(crate) fn granted(
    session: &Session<'_>,
    filters: usize,
    granted: &mut [Option<QoS>],
) -> Result<(), CoreError> {
    let codes = session.last_suback()?;
    if codes.return_codes.len() != filters {
        return Err(Error::Protocol(DecodeError::InvalidLength {
            packet: PacketType::SubAck,
            len: 2 + codes.return_codes.len(),
        }));
    }
    let mut refused = None;
    // Validated when the SUBACK was decoded: 0, 1, 2 or 0x80 (refused).
    for (i, (slot, &code)) in granted.iter_mut().zip(codes.return_codes).enumerate() {
        *slot = QoS::from_u8(code);
        if slot.is_none() {
            refused.get_or_insert(i);
        }
    }
    match refused {
        Some(index) => Err(Error::SubscribeRefused { index }),
        None => Ok(()),
    }
}

/// The options' will, checked: the topic, and a message that fits its
/// 16-bit length.
pub(crate) fn checked_will<'a>(
    topic: &'a [u8],
    message: &'a [u8],
    retain: bool,
    qos: QoS,
) -> Result<crate::packet::LastWill<'a>, CoreError> {
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
