//! PUBLISH at QoS 0 or 1: through the window or waiting for its PUBACK.

use super::checks::check_publish;
use super::checks::unsolicited;
use super::receive::Got;
use super::receive::Listen;
use super::request::{AckPhase, Request};
use super::{Engine, Io, Out};
use crate::error::{CoreError, Error, Waiting};
use crate::packet::{self, QoS};
use crate::session::Encoded;

/// PUBLISH at QoS 0 or 1 (QoS 2 is refused); answers nothing.
///
/// QoS 0 returns once the connection took the packet (or it is batched);
/// QoS 1 through the window once it is sent, waiting only for room; QoS 1
/// without a window once its PUBACK arrived.
pub struct Publish<'p> {
    publish: packet::Publish<'p>,
    /// The caller chose the packet id (`publish_with_id`, `republish`).
    given: bool,
    phase: Phase,
    listen: Listen,
}

/// Where a publish stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    /// Handling packets nothing waits for first; then `Drained` says what.
    Draining(Drained),
    Encode,
    /// A windowed publish went out: in flight now.
    InFlight,
    Ack(AckPhase),
    Done,
}

/// Why a publish handles packets before it is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// A windowed publish waits for room, until the ack timeout.
    Room,
    /// A windowed publish first handles what is buffered, so that a PUBACK
    /// the broker sent before it saw the message cannot match it.
    Buffered,
    /// It first takes in what has arrived, when nothing was read for a
    /// while: a PINGRESP is seen, a closed connection noticed before a
    /// message goes into it.
    ReadFirst,
}

impl<'p> Publish<'p> {
    /// `payload` to `topic` at `qos`, a packet id taken when it is sent.
    pub fn new(topic: &'p [u8], payload: &'p [u8], retain: bool, qos: QoS) -> Self {
        Publish {
            publish: packet::Publish::new(topic, payload, qos).with_retain(retain),
            given: false,
            phase: Phase::Start,
            listen: Listen::default(),
        }
    }

    /// At QoS 1 with the caller's `packet_id`; `dup` for a message sent
    /// before (after a reconnect).
    pub fn with_id(
        topic: &'p [u8],
        payload: &'p [u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Self {
        let mut publish = packet::Publish::new(topic, payload, QoS::AtLeastOnce)
            .with_retain(retain)
            .with_packet_id(packet_id);
        publish.dup = dup;
        Publish {
            publish,
            given: true,
            phase: Phase::Start,
            listen: Listen::default(),
        }
    }

    fn start(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<(), CoreError> {
        engine.begin()?;
        check_publish(&mut self.publish, self.given)?;
        engine.connected()?;
        if self.publish.qos == QoS::AtLeastOnce && engine.session.window_capacity() > 0 {
            let timeout = engine.session.options().ack_timeout_ms;
            self.listen = engine.listen(Some(engine.wait_deadline(now, timeout)), false);
            self.phase = Phase::Draining(Drained::Room);
            return Ok(());
        }
        if self.publish.qos == QoS::AtLeastOnce && !self.given {
            self.publish.packet_id = engine.session.take_packet_id();
        }
        self.read_first(engine, now);
        Ok(())
    }

    /// Reads first if nothing was read for a while, then encodes.
    // Out of line for code size: called from three phases of a publish.
    #[inline(never)]
    fn read_first(&mut self, engine: &mut Engine<'_>, now: u64) {
        self.phase = if engine.session.read_due(now) {
            self.listen = engine.listen(None, false);
            Phase::Draining(Drained::ReadFirst)
        } else {
            Phase::Encode
        };
    }

    /// Whether the window takes the message now (with the caller's id, a
    /// copy of one still in flight goes out again).
    fn room(&mut self, engine: &mut Engine<'_>) -> bool {
        let session = &mut engine.session;
        let ready = session.window_room() > 0
            || (self.given && session.is_in_flight(self.publish.packet_id));
        if ready && !self.given {
            // The id is taken once there is room: never one in flight.
            self.publish.packet_id = session.take_packet_id();
        }
        ready
    }

    fn encode(&mut self, engine: &mut Engine<'_>) -> Result<(), CoreError> {
        let next = match self.publish.qos {
            QoS::AtMostOnce => Phase::Done,
            _ if engine.session.window_capacity() > 0 => Phase::InFlight,
            _ => Phase::Ack(AckPhase::Sent),
        };
        match engine.session.encode_publish(&self.publish)? {
            Encoded::FlushFirst(len) => engine.send(len, Out::Buffer),
            Encoded::Batched => self.phase = next,
            Encoded::Send(len) => {
                engine.send(len, Out::Buffer);
                self.phase = next;
            }
            Encoded::SendWithPayload(len) => {
                engine.send(len, Out::WithPayload);
                self.phase = next;
            }
        }
        Ok(())
    }
}

impl Request for Publish<'_> {
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        let phase = self.phase;
        match phase {
            Phase::Start => self.start(engine, now)?,
            Phase::Draining(drained) => match self.listen.take() {
                Some(Got::Packet(handled)) => unsolicited(&mut engine.session, handled)?,
                Some(Got::Nothing) => match drained {
                    Drained::Room => return Err(Error::Timeout(Waiting::PubAck)),
                    Drained::Buffered => self.read_first(engine, now),
                    Drained::ReadFirst => self.phase = Phase::Encode,
                },
                None if drained == Drained::Room && self.room(engine) => {
                    self.listen = engine.listen_buffered();
                    self.phase = Phase::Draining(Drained::Buffered);
                }
                None => return engine.receive(&mut self.listen, now),
            },
            Phase::Encode => self.encode(engine)?,
            Phase::InFlight => {
                engine.session.send_windowed(self.publish.packet_id);
                self.phase = Phase::Done;
            }
            Phase::Ack(AckPhase::Arrived) => self.phase = Phase::Done,
            Phase::Ack(_) => {
                if let Phase::Ack(ack) = &mut self.phase {
                    return engine.await_ack(
                        &mut self.listen,
                        ack,
                        Waiting::PubAck,
                        self.publish.packet_id,
                        now,
                    );
                }
            }
            Phase::Done => return Ok(Some(Io::Done(Ok(false)))),
        }
        Ok(None)
    }

    fn payload(&self) -> &[u8] {
        self.publish.payload
    }
}
