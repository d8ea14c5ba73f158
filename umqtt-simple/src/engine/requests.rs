//! The request kinds: each a type the front-ends make and the engine runs
//! ([`Request`]). A program links the code of the kinds it uses only.

use core::net::SocketAddr;

use super::checks::{
    checked_subscribe, checked_unsubscribe, connack, earlier_unreported, granted, handled_msg,
    unsolicited,
};
use super::receive::{Got, Listen};
use super::request::{AckPhase, Request};
use super::{Engine, Io, Out, Owed};
use crate::error::{CoreError, Error, Waiting};
use crate::packet::{QoS, SubscribeFilters, UnsubscribeFilters};

pub use super::publish::Publish;

/// CONNECT on the connection the front-end just opened, then CONNACK, all
/// before the connect deadline; answers "session present". Made by
/// `Engine::connect`, which checks and encodes CONNECT before the
/// front-end touches the network.
pub struct Connect {
    addr: SocketAddr,
    /// The encoded CONNECT's length.
    len: usize,
    deadline: u64,
    sent: bool,
    listen: Listen,
}

impl Connect {
    pub(super) fn new(addr: SocketAddr, len: usize, deadline: u64) -> Self {
        Connect {
            addr,
            len,
            deadline,
            sent: false,
            listen: Listen::default(),
        }
    }
}

impl Request for Connect {
    fn send_deadline(&self) -> Option<u64> {
        Some(self.deadline)
    }

    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        if !core::mem::replace(&mut self.sent, true) {
            engine.begin()?;
            engine.session.opened(now);
            engine.open = true;
            engine.send(self.len, Out::Buffer);
            self.listen = engine.listen(Some(self.deadline), true);
            return Ok(None);
        }
        match self.listen.take() {
            Some(Got::Packet(handled)) => {
                let present = connack(Some(handled))?;
                log::info!("connected to {} (session present: {present})", self.addr);
                Ok(Some(Io::Done(Ok(present))))
            }
            Some(Got::Nothing) => Err(Error::Timeout(Waiting::ConnAck)),
            None => engine.receive(&mut self.listen, now),
        }
    }
}

/// SUBSCRIBE to several filters; the QoS granted for each goes into
/// `granted` (`None`: refused, and the request fails with
/// [`Error::SubscribeRefused`] for the first refused filter).
pub struct Subscribe<'p> {
    filters: &'p [(&'p [u8], QoS)],
    granted: &'p mut [Option<QoS>],
    packet_id: u16,
    phase: AckPhase,
    listen: Listen,
}

impl<'p> Subscribe<'p> {
    /// Subscribes to `filters`, the granted QoS into `granted`.
    pub fn new(filters: &'p [(&'p [u8], QoS)], granted: &'p mut [Option<QoS>]) -> Self {
        Subscribe {
            filters,
            granted,
            packet_id: 0,
            phase: AckPhase::Start,
            listen: Listen::default(),
        }
    }
}

impl Request for Subscribe<'_> {
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        match self.phase {
            AckPhase::Start => {
                engine.begin()?;
                checked_subscribe(self.filters, self.granted, &engine.callbacks)?;
                engine.connected()?;
                self.packet_id = engine.session.take_packet_id();
                self.phase = AckPhase::Encode;
            }
            AckPhase::Encode => {
                let packet = crate::packet::Subscribe {
                    packet_id: self.packet_id,
                    filters: SubscribeFilters::List(self.filters),
                };
                if engine.encode_request(&packet)? {
                    self.phase = AckPhase::Sent;
                }
            }
            AckPhase::Sent | AckPhase::Waiting => {
                return engine.await_ack(
                    &mut self.listen,
                    &mut self.phase,
                    Waiting::SubAck,
                    self.packet_id,
                    now,
                );
            }
            AckPhase::Arrived => {
                granted(&engine.session, self.filters.len(), self.granted)?;
                return Ok(Some(Io::Done(Ok(false))));
            }
        }
        Ok(None)
    }
}

/// UNSUBSCRIBE from one filter, until its UNSUBACK.
pub struct Unsubscribe<'p> {
    filter: [&'p [u8]; 1],
    packet_id: u16,
    phase: AckPhase,
    listen: Listen,
}

impl<'p> Unsubscribe<'p> {
    /// Unsubscribes from `filter`.
    pub fn new(filter: &'p [u8]) -> Self {
        Unsubscribe {
            filter: [filter],
            packet_id: 0,
            phase: AckPhase::Start,
            listen: Listen::default(),
        }
    }
}

impl Request for Unsubscribe<'_> {
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        match self.phase {
            AckPhase::Start => {
                engine.begin()?;
                checked_unsubscribe(&self.filter)?;
                engine.connected()?;
                self.packet_id = engine.session.take_packet_id();
                self.phase = AckPhase::Encode;
            }
            AckPhase::Encode => {
                let packet = crate::packet::Unsubscribe {
                    packet_id: self.packet_id,
                    filters: UnsubscribeFilters::List(&self.filter),
                };
                if engine.encode_request(&packet)? {
                    self.phase = AckPhase::Sent;
                }
            }
            AckPhase::Sent | AckPhase::Waiting => {
                return engine.await_ack(
                    &mut self.listen,
                    &mut self.phase,
                    Waiting::UnsubAck,
                    self.packet_id,
                    now,
                );
            }
            AckPhase::Arrived => return Ok(Some(Io::Done(Ok(false)))),
        }
        Ok(None)
    }
}

/// A packet that is sent and not answered (PINGREQ: its PINGRESP is
/// handled by later calls; DISCONNECT), or only the batched QoS 0 messages.
pub struct Control {
    packet: Option<Owed>,
    started: bool,
}

impl Control {
    /// PINGREQ now (the client also pings by itself when keepalive is due).
    pub fn ping() -> Self {
        Control::new(Some(Owed::PING))
    }

    /// DISCONNECT (behind the batch, in the same send); the front-end closes
    /// the connection after it.
    pub fn disconnect() -> Self {
        Control::new(Some(Owed::DISCONNECT))
    }

    /// The batched QoS 0 messages, sent.
    pub fn flush() -> Self {
        Control::new(None)
    }

    fn new(packet: Option<Owed>) -> Self {
        Control {
            packet,
            started: false,
        }
    }
}

impl Request for Control {
    fn advance(&mut self, engine: &mut Engine<'_>, _now: u64) -> Result<Option<Io>, CoreError> {
        if core::mem::replace(&mut self.started, true) {
            return Ok(Some(Io::Done(Ok(false))));
        }
        engine.begin()?;
        match self.packet {
            // DISCONNECT goes out while CONNACK is still awaited too.
            Some(Owed::DISCONNECT) if !engine.open => return Err(Error::NotConnected),
            Some(Owed::DISCONNECT) => {}
            _ => engine.connected()?,
        }
        match self.packet {
            Some(packet) => engine.owed = Some(packet),
            None => engine.flush_batch(),
        }
        Ok(None)
    }
}

/// One packet nothing waits for (`wait_msg_for`, `check_msg`); answers
/// whether one was handled.
pub struct Receive {
    /// How long it may wait (`None`: only what has arrived).
    timeout_ms: Option<u32>,
    started: bool,
    listen: Listen,
}

impl Receive {
    /// One packet, waiting for at most `timeout_ms` (`None`: not at all).
    pub fn one(timeout_ms: Option<u32>) -> Self {
        Receive {
            timeout_ms,
            started: false,
            listen: Listen::default(),
        }
    }
}

impl Request for Receive {
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        if !core::mem::replace(&mut self.started, true) {
            self.listen = engine.begin_receiving(self.timeout_ms, now, true)?;
            return Ok(None);
        }
        match self.listen.take() {
            Some(Got::Packet(handled)) => {
                let handled = handled_msg(&mut engine.session, Some(handled))?;
                Ok(Some(Io::Done(Ok(handled))))
            }
            Some(Got::Nothing) => Ok(Some(Io::Done(Ok(false)))),
            None => engine.receive(&mut self.listen, now),
        }
    }
}

/// The batched QoS 0 messages sent, then every windowed message
/// acknowledged, for at most `timeout_ms` (`flush_for`); answers whether
/// all were.
pub struct FlushFor {
    timeout_ms: u32,
    started: bool,
    listen: Listen,
}

impl FlushFor {
    /// Waits for at most `timeout_ms`.
    pub fn new(timeout_ms: u32) -> Self {
        FlushFor {
            timeout_ms,
            started: false,
            listen: Listen::default(),
        }
    }
}

impl Request for FlushFor {
    fn advance(&mut self, engine: &mut Engine<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        if !core::mem::replace(&mut self.started, true) {
            self.listen = engine.begin_receiving(Some(self.timeout_ms), now, false)?;
            return Ok(None);
        }
        // What the last wait came to first: a packet handled is checked
        // before the count is looked at again.
        match self.listen.take() {
            Some(Got::Packet(handled)) => {
                unsolicited(&mut engine.session, handled)?;
                Ok(None)
            }
            Some(Got::Nothing) => Ok(Some(Io::Done(Ok(false)))),
            None if engine.session.in_flight() == 0 => Ok(Some(Io::Done(Ok(true)))),
            None => engine.receive(&mut self.listen, now),
        }
    }
}

impl Engine<'_> {
    /// How `Receive` and `FlushFor` begin: connected, the batch sent first,
    /// then packets for at most `timeout_ms` (`None`: only what has
    /// arrived); with `report_earlier`, a message skipped inside another
    /// call is reported first.
    fn begin_receiving(
        &mut self,
        timeout_ms: Option<u32>,
        now: u64,
        report_earlier: bool,
    ) -> Result<Listen, CoreError> {
        self.begin()?;
        let deadline = timeout_ms.map(|ms| self.wait_deadline(now, ms));
        self.connected()?;
        if report_earlier {
            earlier_unreported(&mut self.session)?;
        }
        self.flush_batch();
        Ok(self.listen(deadline, false))
    }
}
