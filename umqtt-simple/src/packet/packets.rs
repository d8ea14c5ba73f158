//! PUBLISH, the small fixed-size packets, and [`Packet`], which encodes and
//! decodes them all.

use super::codec::{Reader, Writer};
use super::connect::{ConnAck, Connect};
use super::error::{DecodeError, EncodeError};
use super::header::{FixedHeader, PacketType, check_remaining_length};
use super::qos::QoS;
use super::subscribe::{SubAck, Subscribe, Unsubscribe};
use super::validate::validate_topic_name;

const FLAG_DUP: u8 = 0b1000;
const FLAG_RETAIN: u8 = 0b0001;

/// A PUBLISH packet: a message on a topic.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Publish<'a> {
    /// The topic name (no wildcards).
    pub topic: &'a [u8],
    /// The message.
    pub payload: &'a [u8],
    /// The QoS.
    pub qos: QoS,
    /// Whether the broker retains it for future subscribers.
    pub retain: bool,
    /// Set when the message is sent again after a reconnect (QoS 1 and 2
    /// only: MQTT-3.3.1-2 forbids it on QoS 0).
    pub dup: bool,
    /// The packet id: 1 to 65 535 for QoS 1 and 2, ignored (not sent) for
    /// QoS 0.
    pub packet_id: u16,
}

impl<'a> Publish<'a> {
    /// A message, not retained, not a duplicate, packet id 0 (set one with
    /// [`Publish::with_packet_id`] for QoS 1).
    pub const fn new(topic: &'a [u8], payload: &'a [u8], qos: QoS) -> Self {
        Publish {
            topic,
            payload,
            qos,
            retain: false,
            dup: false,
            packet_id: 0,
        }
    }

    /// The same message with this packet id.
    pub const fn with_packet_id(mut self, packet_id: u16) -> Self {
        self.packet_id = packet_id;
        self
    }

    /// The same message with the retain flag set as given.
    pub const fn with_retain(mut self, retain: bool) -> Self {
        self.retain = retain;
        self
    }

    /// Checks the topic, packet id and flags; what passes can be encoded.
    pub fn validate(&self) -> Result<(), EncodeError> {
        validate_topic_name(self.topic)?;
        if self.qos.has_packet_id() && self.packet_id == 0 {
            return Err(EncodeError::ZeroPacketId);
        }
        if self.dup && self.qos == QoS::AtMostOnce {
            return Err(EncodeError::DupWithQoS0);
        }
        Ok(())
    }

    /// Bytes of the PUBLISH before its payload: topic and packet id.
    fn variable_header_len(&self) -> usize {
        2 + self.topic.len() + if self.qos.has_packet_id() { 2 } else { 0 }
    }

    /// Bytes the whole packet takes.
    // Out of line for code size (measured).
    #[inline(never)]
    pub(crate) fn encoded_len(&self) -> usize {
        let header = self.fixed_header();
        header.len() + header.remaining_length
    }

    fn fixed_header(&self) -> FixedHeader {
        let mut flags = (self.qos as u8) << 1;
        if self.retain {
            flags |= FLAG_RETAIN;
        }
        if self.dup {
            flags |= FLAG_DUP;
        }
        FixedHeader {
            packet_type: PacketType::Publish,
            flags,
            remaining_length: self.variable_header_len() + self.payload.len(),
        }
    }

    /// Encodes everything but the payload: fixed header, topic and packet id.
    ///
    /// For messages larger than the transmit buffer: send these bytes, then the
    /// payload as it is. Returns the number of bytes written.
    pub fn encode_header(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.validate()?;
        self.encode_header_checked(buf)
    }

    /// [`Publish::encode_header`] for a message already [validated]
    /// (the client checks each publish once, before touching the network).
    ///
    /// [validated]: Publish::validate
    pub(crate) fn encode_header_checked(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let header = self.fixed_header();
        check_remaining_length(header.remaining_length)?;
        let needed = header.len() + self.variable_header_len();
        check_fits(needed, buf.len())?;
        let mut w = Writer::new(buf);
        header.write_to(&mut w);
        self.write_variable_header(&mut w);
        w.finish(needed)
    }

    fn write_variable_header(&self, w: &mut Writer<'_>) {
        w.prefixed(self.topic);
        if self.qos.has_packet_id() {
            w.u16(self.packet_id);
        }
    }

    /// The QoS in a PUBLISH's fixed-header flags.
    pub fn qos_of(flags: u8) -> Result<QoS, DecodeError> {
        QoS::from_u8((flags >> 1) & 0b11).ok_or(DecodeError::InvalidQoS)
    }

    /// Decodes a PUBLISH body. `body` may be cut short after the packet id: the
    /// payload is then whatever follows (used for messages too large to buffer).
    ///
    /// DUP on a QoS 0 message, which MQTT-3.3.1-2 forbids the sender, is
    /// ignored rather than refused: brokers have sent it, and the message is
    /// good.
    pub fn decode_body(flags: u8, body: &'a [u8]) -> Result<Self, DecodeError> {
        let qos = Publish::qos_of(flags)?;
        let dup = flags & FLAG_DUP != 0 && qos.has_packet_id();
        let mut r = Reader::new(body, PacketType::Publish);
        let topic = r.prefixed()?;
        let packet_id = if qos.has_packet_id() {
            r.packet_id()?
        } else {
            0
        };
        Ok(Publish {
            topic,
            payload: r.rest(),
            qos,
            retain: flags & FLAG_RETAIN != 0,
            dup,
            packet_id,
        })
    }
}

/// Any MQTT 3.1.1 packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Packet<'a> {
    /// CONNECT (client to broker).
    Connect(Connect<'a>),
    /// CONNACK (broker to client).
    ConnAck(ConnAck),
    /// PUBLISH (both ways).
    Publish(Publish<'a>),
    /// PUBACK with its packet id (both ways).
    PubAck(u16),
    /// PUBREC with its packet id: a QoS 2 message received (both ways).
    PubRec(u16),
    /// PUBREL with its packet id: a QoS 2 message released (both ways).
    PubRel(u16),
    /// PUBCOMP with its packet id: a QoS 2 exchange complete (both ways).
    PubComp(u16),
    /// SUBSCRIBE (client to broker).
    Subscribe(Subscribe<'a>),
    /// SUBACK (broker to client).
    SubAck(SubAck<'a>),
    /// UNSUBSCRIBE (client to broker).
    Unsubscribe(Unsubscribe<'a>),
    /// UNSUBACK with its packet id (broker to client).
    UnsubAck(u16),
    /// PINGREQ (client to broker).
    PingReq,
    /// PINGRESP (broker to client).
    PingResp,
    /// DISCONNECT (client to broker).
    Disconnect,
}

fn check_fits(needed: usize, available: usize) -> Result<(), EncodeError> {
    if needed > available {
        Err(EncodeError::BufferTooSmall { needed, available })
    } else {
        Ok(())
    }
}

impl<'a> Packet<'a> {
    /// The packet's type.
    pub fn packet_type(&self) -> PacketType {
        match self {
            Packet::Connect(_) => PacketType::Connect,
            Packet::ConnAck(_) => PacketType::ConnAck,
            Packet::Publish(_) => PacketType::Publish,
            Packet::PubAck(_) => PacketType::PubAck,
            Packet::PubRec(_) => PacketType::PubRec,
            Packet::PubRel(_) => PacketType::PubRel,
            Packet::PubComp(_) => PacketType::PubComp,
            Packet::Subscribe(_) => PacketType::Subscribe,
            Packet::SubAck(_) => PacketType::SubAck,
            Packet::Unsubscribe(_) => PacketType::Unsubscribe,
            Packet::UnsubAck(_) => PacketType::UnsubAck,
            Packet::PingReq => PacketType::PingReq,
            Packet::PingResp => PacketType::PingResp,
            Packet::Disconnect => PacketType::Disconnect,
        }
    }

    /// Checks every field of the packet without encoding it.
    pub fn validate(&self) -> Result<(), EncodeError> {
        match self {
            Packet::Connect(p) => p.validate(),
            Packet::Publish(p) => p.validate(),
            Packet::Subscribe(p) => p.validate(),
            Packet::Unsubscribe(p) => p.validate(),
            Packet::PubAck(0)
            | Packet::PubRec(0)
            | Packet::PubRel(0)
            | Packet::PubComp(0)
            | Packet::UnsubAck(0) => Err(EncodeError::ZeroPacketId),
            Packet::SubAck(p) if p.packet_id == 0 => Err(EncodeError::ZeroPacketId),
            _ => Ok(()),
        }
    }

    fn fixed_header(&self) -> FixedHeader {
        let packet_type = self.packet_type();
        let remaining_length = match self {
            Packet::Connect(p) => p.remaining_length(),
            Packet::Publish(p) => return p.fixed_header(),
            Packet::Subscribe(p) => p.remaining_length(),
            Packet::Unsubscribe(p) => p.remaining_length(),
            Packet::SubAck(p) => 2 + p.return_codes.len(),
            Packet::ConnAck(_)
            | Packet::PubAck(_)
            | Packet::PubRec(_)
            | Packet::PubRel(_)
            | Packet::PubComp(_)
            | Packet::UnsubAck(_) => 2,
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => 0,
        };
        header_of(packet_type, remaining_length)
    }

    /// The number of bytes [`Packet::encode`] writes.
    pub fn encoded_len(&self) -> usize {
        let header = self.fixed_header();
        header.len() + header.remaining_length
    }

    /// Checks the packet and writes it into `buf`; returns the bytes written.
    ///
    /// On error nothing useful is in `buf` and nothing should be sent.
    ///
    /// ```
    /// use umqtt_simple::packet::{Connect, Packet};
    ///
    /// let mut buf = [0u8; 64];
    /// let connect = Connect { keepalive: 60, ..Connect::new(b"umqtt_client") };
    /// let n = Packet::Connect(connect).encode(&mut buf).unwrap();
    /// assert_eq!(&buf[..n], b"\x10\x18\x00\x04MQTT\x04\x02\x00\x3c\x00\x0cumqtt_client");
    /// ```
    pub fn encode(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        self.validate()?;
        self.encode_checked(buf)
    }

    /// [`Packet::encode`] for a packet already [validated](Packet::validate)
    /// (the client checks each request once, before touching the network,
    /// and answers only with ids the decoder checked).
    pub(crate) fn encode_checked(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        Outgoing::encode_checked(self, buf)
    }

    /// Decodes one packet from the start of `bytes`.
    ///
    /// `Ok(None)` means `bytes` holds only part of a packet; otherwise the
    /// packet and the number of bytes it took.
    pub fn decode(bytes: &'a [u8]) -> Result<Option<(Packet<'a>, usize)>, DecodeError> {
        let Some((header, header_len)) = FixedHeader::parse(bytes)? else {
            return Ok(None);
        };
        let total = header_len.saturating_add(header.remaining_length);
        let Some(body) = bytes.get(header_len..total) else {
            return Ok(None);
        };
        Ok(Some((Packet::decode_body(&header, body)?, total)))
    }

    /// Decodes the body of a packet whose fixed header was already parsed.
    /// `body` must be exactly `header.remaining_length` bytes.
    pub fn decode_body(header: &FixedHeader, body: &'a [u8]) -> Result<Packet<'a>, DecodeError> {
        if let Some(decoded) = Packet::decode_from_broker(header, body) {
            return decoded;
        }
        let len = body.len();
        let packet = header.packet_type;
        let mut r = Reader::new(body, packet);
        Ok(match packet {
            PacketType::Connect => Packet::Connect(Connect::read_body(&mut r)?),
            PacketType::Subscribe => Packet::Subscribe(Subscribe::read_body(&mut r)?),
            PacketType::Unsubscribe => Packet::Unsubscribe(Unsubscribe::read_body(&mut r)?),
            PacketType::PingReq => {
                fixed_len(packet, len, 0)?;
                Packet::PingReq
            }
            _ => {
                fixed_len(packet, len, 0)?;
                Packet::Disconnect
            }
        })
    }

    /// [`Packet::decode_body`] for the packets a broker sends (CONNACK,
    /// PUBLISH, PUBACK, PUBREC, PUBREL, PUBCOMP, SUBACK, UNSUBACK,
    /// PINGRESP); `None` for one only a client sends (the client refuses
    /// those without decoding them, so their decoders are not in its code).
    pub(crate) fn decode_from_broker(
        header: &FixedHeader,
        body: &'a [u8],
    ) -> Option<Result<Packet<'a>, DecodeError>> {
        let len = body.len();
        let packet = header.packet_type;
        let mut r = Reader::new(body, packet);
        Some(match packet {
            PacketType::ConnAck => ConnAck::read_body(&mut r, len).map(Packet::ConnAck),
            PacketType::Publish => Publish::decode_body(header.flags, body).map(Packet::Publish),
            PacketType::PubAck
            | PacketType::PubRec
            | PacketType::PubRel
            | PacketType::PubComp
            | PacketType::UnsubAck => {
                // One path for the five: a packet id and nothing else.
                fixed_len(packet, len, 2)
                    .and_then(|()| r.packet_id())
                    .map(|id| match packet {
                        PacketType::PubAck => Packet::PubAck(id),
                        PacketType::PubRec => Packet::PubRec(id),
                        PacketType::PubRel => Packet::PubRel(id),
                        PacketType::PubComp => Packet::PubComp(id),
                        _ => Packet::UnsubAck(id),
                    })
            }
            PacketType::SubAck => SubAck::read_body(&mut r, len).map(Packet::SubAck),
            PacketType::PingResp => fixed_len(packet, len, 0).map(|()| Packet::PingResp),
            _ => return None,
        })
    }
}

/// A packet the client encodes, already checked. Each kind the client sends
/// has an encoder of its own (CONNECT, SUBSCRIBE, UNSUBSCRIBE, the
/// acknowledgements), so a program links the encoders of the packets it
/// sends, not [`Packet`]'s match over every kind.
pub(crate) trait Outgoing {
    /// The fixed header: type, flags and remaining length.
    fn header(&self) -> FixedHeader;

    /// Writes everything after the fixed header.
    fn write_body(&self, w: &mut Writer<'_>);

    /// The packet, for the packet log.
    fn packet(&self) -> Packet<'_>;

    /// Writes the packet into `buf`; returns the bytes written. Every check
    /// comes before the first write: a packet that fails leaves `buf` as it
    /// was (the client keeps batched messages there).
    fn encode_checked(&self, buf: &mut [u8]) -> Result<usize, EncodeError> {
        let header = self.header();
        check_remaining_length(header.remaining_length)?;
        let len = header.len() + header.remaining_length;
        check_fits(len, buf.len())?;
        let mut w = Writer::new(buf);
        header.write_to(&mut w);
        self.write_body(&mut w);
        w.finish(len)
    }
}

/// The fixed header of a packet of type `packet_type` whose body is
/// `remaining_length` bytes (any type but PUBLISH: its flags are fixed).
pub(crate) fn header_of(packet_type: PacketType, remaining_length: usize) -> FixedHeader {
    FixedHeader {
        packet_type,
        flags: packet_type.required_flags().unwrap_or(0),
        remaining_length,
    }
}

impl Outgoing for Packet<'_> {
    fn header(&self) -> FixedHeader {
        self.fixed_header()
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        match self {
            Packet::Connect(p) => p.write_body(w),
            Packet::ConnAck(p) => p.write_body(w),
            Packet::Publish(p) => {
                p.write_variable_header(w);
                w.bytes(p.payload);
            }
            Packet::PubAck(id)
            | Packet::PubRec(id)
            | Packet::PubRel(id)
            | Packet::PubComp(id)
            | Packet::UnsubAck(id) => w.u16(*id),
            Packet::Subscribe(p) => p.write_body(w),
            Packet::SubAck(p) => p.write_body(w),
            Packet::Unsubscribe(p) => p.write_body(w),
            Packet::PingReq | Packet::PingResp | Packet::Disconnect => {}
        }
    }

    fn packet(&self) -> Packet<'_> {
        *self
    }
}

impl Outgoing for Connect<'_> {
    fn header(&self) -> FixedHeader {
        header_of(PacketType::Connect, self.remaining_length())
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        Connect::write_body(self, w);
    }

    fn packet(&self) -> Packet<'_> {
        Packet::Connect(*self)
    }
}

impl Outgoing for Subscribe<'_> {
    fn header(&self) -> FixedHeader {
        header_of(PacketType::Subscribe, self.remaining_length())
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        Subscribe::write_body(self, w);
    }

    fn packet(&self) -> Packet<'_> {
        Packet::Subscribe(*self)
    }
}

impl Outgoing for Unsubscribe<'_> {
    fn header(&self) -> FixedHeader {
        header_of(PacketType::Unsubscribe, self.remaining_length())
    }

    fn write_body(&self, w: &mut Writer<'_>) {
        Unsubscribe::write_body(self, w);
    }

    fn packet(&self) -> Packet<'_> {
        Packet::Unsubscribe(*self)
    }
}

/// Fails unless a body of a fixed-size packet is `expected` bytes long.
fn fixed_len(packet: PacketType, len: usize, expected: usize) -> Result<(), DecodeError> {
    if len == expected {
        Ok(())
    } else {
        Err(DecodeError::InvalidLength { packet, len })
    }
}
