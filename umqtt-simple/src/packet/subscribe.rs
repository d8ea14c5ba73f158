//! SUBSCRIBE, SUBACK and UNSUBSCRIBE: which topics the broker forwards.

use super::codec::{Reader, Writer};
use super::error::{DecodeError, EncodeError};
use super::header::PacketType;
use super::qos::QoS;
use super::validate::validate_filter;

/// The filters of a SUBSCRIBE: a list to encode, or the validated bytes of a
/// received packet. Iterate with [`SubscribeFilters::iter`].
#[derive(Debug, Clone, Copy)]
pub enum SubscribeFilters<'a> {
    /// Filters and their requested QoS, to be encoded.
    List(&'a [(&'a [u8], QoS)]),
    /// The payload of a decoded SUBSCRIBE (already validated).
    Wire(&'a [u8]),
}

impl<'a> SubscribeFilters<'a> {
    /// Each filter with its requested QoS, in order.
    pub fn iter(&self) -> impl Iterator<Item = (&'a [u8], QoS)> + 'a {
        let (list, wire): (&'a [(&'a [u8], QoS)], &'a [u8]) = match *self {
            SubscribeFilters::List(list) => (list, &[]),
            SubscribeFilters::Wire(bytes) => (&[], bytes),
        };
        let mut r = Reader::new(wire, PacketType::Subscribe);
        let from_wire = core::iter::from_fn(move || {
            if r.is_empty() {
                return None;
            }
            let filter = r.prefixed().ok()?;
            let qos = QoS::from_u8(r.u8().ok()?)?;
            Some((filter, qos))
        });
        list.iter().copied().chain(from_wire)
    }

    fn is_empty(&self) -> bool {
        self.iter().next().is_none()
    }
}

impl PartialEq for SubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for SubscribeFilters<'_> {}

/// A SUBSCRIBE packet: one or more filters, each with the QoS requested.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Subscribe<'a> {
    /// The packet id the SUBACK will carry (1 to 65 535).
    pub packet_id: u16,
    /// The filters.
    pub filters: SubscribeFilters<'a>,
}

impl<'a> Subscribe<'a> {
    pub(crate) fn validate(&self) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        if self.filters.is_empty() {
            return Err(EncodeError::NoFilters);
        }
        self.filters
            .iter()
            .try_for_each(|(filter, _)| validate_filter(filter))
    }

    pub(crate) fn remaining_length(&self) -> usize {
        2 + match self.filters {
            SubscribeFilters::List(list) => list.iter().map(|(f, _)| 2 + f.len() + 1).sum(),
            SubscribeFilters::Wire(payload) => payload.len(),
        }
    }

    pub(crate) fn write_body(&self, w: &mut Writer<'_>) {
        w.u16(self.packet_id);
        match self.filters {
            SubscribeFilters::List(list) => {
                for (filter, qos) in list {
                    w.prefixed(filter);
                    w.u8(*qos as u8);
                }
            }
            // Decoded, so already in wire form.
            SubscribeFilters::Wire(payload) => w.bytes(payload),
        }
    }

    pub(crate) fn read_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::InvalidLength {
                packet: PacketType::Subscribe,
                len: 2,
            });
        }
        while !r.is_empty() {
            r.prefixed()?;
            match r.u8()? {
                0..=2 => {}
                _ => return Err(DecodeError::InvalidQoS),
            }
        }
        Ok(Subscribe {
            packet_id,
            filters: SubscribeFilters::Wire(payload),
        })
    }
}

/// One entry of a SUBACK: what the broker granted for one filter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
pub enum SubAckCode {
    /// Granted with maximum QoS 0.
    GrantedQoS0,
    /// Granted with maximum QoS 1.
    GrantedQoS1,
    /// Granted with maximum QoS 2 (never requested by this client).
    GrantedQoS2,
    /// 0x80: the broker refused the subscription.
    Failure,
}

impl SubAckCode {
    /// The code for a wire value.
    pub fn from_u8(code: u8) -> Result<Self, DecodeError> {
        Ok(match code {
            0 => SubAckCode::GrantedQoS0,
            1 => SubAckCode::GrantedQoS1,
            2 => SubAckCode::GrantedQoS2,
            0x80 => SubAckCode::Failure,
            other => return Err(DecodeError::InvalidSubAckCode(other)),
        })
    }

    /// The wire value.
    pub const fn to_u8(self) -> u8 {
        match self {
            SubAckCode::GrantedQoS0 => 0,
            SubAckCode::GrantedQoS1 => 1,
            SubAckCode::GrantedQoS2 => 2,
            SubAckCode::Failure => 0x80,
        }
    }
}

/// A SUBACK packet: one return code per filter of the SUBSCRIBE.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubAck<'a> {
    /// The packet id of the SUBSCRIBE it answers.
    pub packet_id: u16,
    /// The raw return codes, validated when decoded; see [`SubAck::codes`].
    pub return_codes: &'a [u8],
}

impl<'a> SubAck<'a> {
    /// The return codes, in the order of the SUBSCRIBE's filters.
    pub fn codes(&self) -> impl Iterator<Item = SubAckCode> + 'a {
        self.return_codes
            .iter()
            .filter_map(|&c| SubAckCode::from_u8(c).ok())
    }

    pub(crate) fn write_body(&self, w: &mut Writer<'_>) {
        w.u16(self.packet_id);
        w.bytes(self.return_codes);
    }

    pub(crate) fn read_body(r: &mut Reader<'a>, len: usize) -> Result<Self, DecodeError> {
        if len < 3 {
            return Err(DecodeError::InvalidLength {
                packet: PacketType::SubAck,
                len,
            });
        }
        let packet_id = r.packet_id()?;
        let return_codes = r.rest();
        for &code in return_codes {
            SubAckCode::from_u8(code)?;
        }
        Ok(SubAck {
            packet_id,
            return_codes,
        })
    }
}

/// The filters of an UNSUBSCRIBE: a list to encode, or the validated bytes of
/// a received packet.
#[derive(Debug, Clone, Copy)]
pub enum UnsubscribeFilters<'a> {
    /// Filters to be encoded.
    List(&'a [&'a [u8]]),
    /// The payload of a decoded UNSUBSCRIBE (already validated).
    Wire(&'a [u8]),
}

impl<'a> UnsubscribeFilters<'a> {
    /// Each filter, in order.
    pub fn iter(&self) -> impl Iterator<Item = &'a [u8]> + 'a {
        let (list, wire): (&'a [&'a [u8]], &'a [u8]) = match *self {
            UnsubscribeFilters::List(list) => (list, &[]),
            UnsubscribeFilters::Wire(bytes) => (&[], bytes),
        };
        let mut r = Reader::new(wire, PacketType::Unsubscribe);
        let from_wire = core::iter::from_fn(move || {
            if r.is_empty() {
                None
            } else {
                r.prefixed().ok()
            }
        });
        list.iter().copied().chain(from_wire)
    }
}

impl PartialEq for UnsubscribeFilters<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.iter().eq(other.iter())
    }
}

impl Eq for UnsubscribeFilters<'_> {}

/// An UNSUBSCRIBE packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Unsubscribe<'a> {
    /// The packet id the UNSUBACK will carry (1 to 65 535).
    pub packet_id: u16,
    /// The filters to remove.
    pub filters: UnsubscribeFilters<'a>,
}

impl<'a> Unsubscribe<'a> {
    pub(crate) fn validate(&self) -> Result<(), EncodeError> {
        if self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        if self.filters.iter().next().is_none() {
            return Err(EncodeError::NoFilters);
        }
        self.filters.iter().try_for_each(validate_filter)
    }

    pub(crate) fn remaining_length(&self) -> usize {
        2 + match self.filters {
            UnsubscribeFilters::List(list) => list.iter().map(|f| 2 + f.len()).sum(),
            UnsubscribeFilters::Wire(payload) => payload.len(),
        }
    }

    pub(crate) fn write_body(&self, w: &mut Writer<'_>) {
        w.u16(self.packet_id);
        match self.filters {
            UnsubscribeFilters::List(list) => list.iter().for_each(|f| w.prefixed(f)),
            // Decoded, so already in wire form.
            UnsubscribeFilters::Wire(payload) => w.bytes(payload),
        }
    }

    pub(crate) fn read_body(r: &mut Reader<'a>) -> Result<Self, DecodeError> {
        let packet_id = r.packet_id()?;
        let payload = r.rest();
        if payload.is_empty() {
            return Err(DecodeError::InvalidLength {
                packet: PacketType::Unsubscribe,
                len: 2,
            });
        }
        while !r.is_empty() {
            r.prefixed()?;
        }
        Ok(Unsubscribe {
            packet_id,
            filters: UnsubscribeFilters::Wire(payload),
        })
    }
}
