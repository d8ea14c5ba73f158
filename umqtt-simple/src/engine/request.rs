//! The requests, each a small state machine the engine advances: checked
//! before anything is sent, then encoded, sent and acknowledged within its
//! deadline.

use core::net::SocketAddr;

use super::checks::{
    checked_publish, checked_publish_with_id, checked_subscribe, checked_unsubscribe, connack,
    earlier_unreported, granted, handled_msg, unsolicited,
};
use super::receive::{Poll, Receive};
use super::{Engine, Io};
use crate::error::{CoreError, Error, Waiting};
use crate::packet::{Packet, Publish, QoS, Subscribe, Unsubscribe, UnsubscribeFilters};
use crate::session::Encoded;

/// One call of a client, as the [`Engine`] runs it: made by a front-end's
/// public method, pumped with [`Engine::step`] until it is done.
pub struct Request<'p> {
    kind: Kind<'p>,
    phase: Phase,
}

/// What is asked, with the caller's borrowed arguments.
enum Kind<'p> {
    /// CONNECT (already encoded, `len` bytes) on a fresh connection, then
    /// CONNACK, all before `deadline`.
    Connect {
        addr: SocketAddr,
        len: usize,
        deadline: u64,
    },
    /// A PUBLISH; `given` says the caller chose the packet id.
    Publish {
        publish: Publish<'p>,
        given: bool,
    },
    Subscribe {
        filters: &'p [(&'p [u8], QoS)],
        granted: &'p mut [Option<QoS>],
        packet_id: u16,
    },
    Unsubscribe {
        filter: [&'p [u8]; 1],
        packet_id: u16,
    },
    Ping,
    Disconnect,
    /// The batched QoS 0 messages.
    Flush,
    /// The batch, then every windowed PUBACK, for at most `timeout_ms`.
    FlushFor {
        timeout_ms: u32,
    },
    /// One packet nothing waits for (`wait_msg_for`, `check_msg`: `None`).
    Receive {
        timeout_ms: Option<u32>,
    },
}

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Start,
    /// A windowed publish waits for room, until the ack timeout.
    Room,
    /// A windowed publish first handles what is buffered, so that a PUBACK
    /// the broker sent before it saw the message cannot match it.
    Buffered,
    /// A publish first takes in what has arrived, when nothing was read for
    /// a while: a PINGRESP is seen, a closed connection noticed.
    ReadFirst,
    /// Encoding the request's packet (again, after the batch went first).
    Encode,
    /// A windowed publish went out: in flight now.
    InFlight,
    /// Waiting for the acknowledgement (`started`: deadline set).
    Ack {
        waiting: Waiting,
        started: bool,
    },
    /// Waiting for CONNACK.
    ConnAck,
    /// Handling packets until the request's condition holds.
    Receive,
    /// Settled with this answer (or failed).
    Done(Option<bool>),
}

impl<'p> Request<'p> {
    fn new(kind: Kind<'p>) -> Self {
        Request {
            kind,
            phase: Phase::Start,
        }
    }

    /// CONNECT, encoded (`len` bytes), on the connection to `addr` the
    /// front-end just opened (see [`Engine::connect`]).
    pub(super) fn connect(addr: SocketAddr, len: usize, deadline: u64) -> Self {
        Request::new(Kind::Connect {
            addr,
            len,
            deadline,
        })
    }

    /// PUBLISH at QoS 0 or 1 (QoS 2 is refused); answers nothing.
    pub fn publish(topic: &'p [u8], payload: &'p [u8], retain: bool, qos: QoS) -> Self {
        let publish = Publish::new(topic, payload, qos).with_retain(retain);
        Request::new(Kind::Publish {
            publish,
            given: false,
        })
    }

    /// PUBLISH at QoS 1 with the caller's packet id; `dup` for a message
    /// sent before.
    pub fn publish_with_id(
        topic: &'p [u8],
        payload: &'p [u8],
        retain: bool,
        packet_id: u16,
        dup: bool,
    ) -> Self {
        let mut publish = Publish::new(topic, payload, QoS::AtLeastOnce)
            .with_retain(retain)
            .with_packet_id(packet_id);
        publish.dup = dup;
        Request::new(Kind::Publish {
            publish,
            given: true,
        })
    }

    /// SUBSCRIBE; the granted QoS go into `granted`.
    pub fn subscribe(filters: &'p [(&'p [u8], QoS)], granted: &'p mut [Option<QoS>]) -> Self {
        Request::new(Kind::Subscribe {
            filters,
            granted,
            packet_id: 0,
        })
    }

    /// UNSUBSCRIBE from one filter.
    pub fn unsubscribe(filter: &'p [u8]) -> Self {
        Request::new(Kind::Unsubscribe {
            filter: [filter],
            packet_id: 0,
        })
    }

    /// PINGREQ (its PINGRESP is handled by later calls).
    pub fn ping() -> Self {
        Request::new(Kind::Ping)
    }

    /// DISCONNECT (the front-end closes the connection after it).
    pub fn disconnect() -> Self {
        Request::new(Kind::Disconnect)
    }

    /// The batched QoS 0 messages, sent.
    pub fn flush() -> Self {
        Request::new(Kind::Flush)
    }

    /// The batch sent, then every windowed message acknowledged, for at
    /// most `timeout_ms`; answers whether all were.
    pub fn flush_for(timeout_ms: u32) -> Self {
        Request::new(Kind::FlushFor { timeout_ms })
    }

    /// One packet nothing waits for, for at most `timeout_ms` (`None`: only
    /// what has arrived); answers whether one was handled.
    pub fn receive(timeout_ms: Option<u32>) -> Self {
        Request::new(Kind::Receive { timeout_ms })
    }

    /// The payload a send may take as it is (after its header).
    pub(super) fn payload(&self) -> &[u8] {
        match &self.kind {
            Kind::Publish { publish, .. } => publish.payload,
            _ => &[],
        }
    }

    /// The packet id the request's acknowledgement carries.
    fn packet_id(&self) -> u16 {
        match &self.kind {
            Kind::Publish { publish, .. } => publish.packet_id,
            Kind::Subscribe { packet_id, .. } | Kind::Unsubscribe { packet_id, .. } => *packet_id,
            _ => 0,
        }
    }

    pub(super) fn settle(&mut self, result: Result<bool, CoreError>) {
        self.phase = Phase::Done(result.ok());
    }
}

impl Engine<'_> {
    /// Moves `request` on; `Some` when the front-end has I/O to do or the
    /// request is done, `None` when something was queued to send first.
    pub(super) fn advance_request(
        &mut self,
        request: &mut Request<'_>,
        now: u64,
    ) -> Result<Option<Io>, CoreError> {
        match request.phase {
            Phase::Start => self.start(request, now).map(|()| None),
            Phase::Room => self.room(request, now),
            Phase::Buffered => match self.receive(now)? {
                Poll::Packet(handled) => unsolicited(&mut self.session, handled).map(|()| None),
                Poll::Nothing => {
                    self.before_publish(request, now);
                    Ok(None)
                }
                Poll::Again => Ok(None),
                Poll::Io(io) => Ok(Some(io)),
            },
            Phase::ReadFirst => match self.receive(now)? {
                Poll::Packet(handled) => unsolicited(&mut self.session, handled).map(|()| None),
                Poll::Nothing => {
                    request.phase = Phase::Encode;
                    Ok(None)
                }
                Poll::Again => Ok(None),
                Poll::Io(io) => Ok(Some(io)),
            },
            Phase::Encode => self.encode(request, now).map(|()| None),
            Phase::InFlight => {
                if let Kind::Publish { publish, .. } = &request.kind {
                    self.session.send_windowed(publish.packet_id);
                }
                Ok(Some(self.done(request, false)))
            }
            Phase::Ack { waiting, started } => self.await_ack(request, waiting, started, now),
            Phase::ConnAck => match self.receive(now)? {
                Poll::Packet(handled) => {
                    let present = connack(Some(handled))?;
                    if let Kind::Connect { addr, .. } = request.kind {
                        log::info!("connected to {addr} (session present: {present})");
                    }
                    Ok(Some(self.done(request, present)))
                }
                Poll::Nothing => Err(Error::Timeout(Waiting::ConnAck)),
                Poll::Again => Ok(None),
                Poll::Io(io) => Ok(Some(io)),
            },
            Phase::Receive => self.receive_for(request, now),
            Phase::Done(answer) => Ok(Some(Io::Done(answer.ok_or(Error::NotConnected)))),
        }
    }

    fn done(&mut self, request: &mut Request<'_>, answer: bool) -> Io {
        request.phase = Phase::Done(Some(answer));
        Io::Done(Ok(answer))
    }

    /// Checks the request and sets it off.
    fn start(&mut self, request: &mut Request<'_>, now: u64) -> Result<(), CoreError> {
        if core::mem::take(&mut self.sending) {
            // A cancelled call left half a packet: the stream is broken.
            return Err(Error::Timeout(Waiting::Send));
        }
        self.handled = None;
        self.session.expect(None);
        match &mut request.kind {
            Kind::Connect { len, deadline, .. } => {
                self.session.opened(now);
                self.open = true;
                let send_timeout = self.session.options().send_timeout_ms;
                let send_deadline = now.saturating_add(u64::from(send_timeout));
                self.out = Some(super::Out {
                    len: *len,
                    with_payload: false,
                    deadline: (*deadline).min(send_deadline),
                    ping: false,
                });
                self.rx = Receive::until(Some(*deadline), true);
                request.phase = Phase::ConnAck;
            }
            Kind::Publish { publish, given } => {
                let checked = if *given {
                    checked_publish_with_id(
                        publish.topic,
                        publish.payload,
                        publish.retain,
                        publish.packet_id,
                        publish.dup,
                    )?
                } else {
                    checked_publish(publish.topic, publish.payload, publish.retain, publish.qos)?
                };
                *publish = checked;
                self.connected()?;
                if publish.qos == QoS::AtMostOnce {
                    self.before_publish(request, now);
                } else if self.session.window_capacity() > 0 {
                    let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
                    self.rx = Receive::until(Some(deadline), false);
                    request.phase = Phase::Room;
                } else {
                    if !*given {
                        publish.packet_id = self.session.take_packet_id();
                    }
                    self.before_publish(request, now);
                }
            }
            Kind::Subscribe {
                filters,
                granted,
                packet_id,
            } => {
                checked_subscribe(filters, granted, &self.callbacks)?;
                self.connected()?;
                *packet_id = self.session.take_packet_id();
                request.phase = Phase::Encode;
            }
            Kind::Unsubscribe { filter, packet_id } => {
                checked_unsubscribe(filter)?;
                self.connected()?;
                *packet_id = self.session.take_packet_id();
                request.phase = Phase::Encode;
            }
            Kind::Ping => {
                self.connected()?;
                self.owed = Some(Packet::PingReq);
                request.phase = Phase::Done(Some(false));
            }
            Kind::Disconnect => {
                if !self.open {
                    return Err(Error::NotConnected);
                }
                self.owed = Some(Packet::Disconnect);
                request.phase = Phase::Done(Some(false));
            }
            Kind::Flush => {
                self.connected()?;
                self.flush_batch(now);
                request.phase = Phase::Done(Some(false));
            }
            Kind::FlushFor { timeout_ms } => {
                let deadline = self.wait_deadline(now, *timeout_ms);
                self.connected()?;
                self.flush_batch(now);
                self.rx = Receive::until(Some(deadline), false);
                request.phase = Phase::Receive;
            }
            Kind::Receive { timeout_ms } => {
                let deadline = timeout_ms.map(|ms| self.wait_deadline(now, ms));
                self.connected()?;
                // A message skipped inside another call is reported first.
                earlier_unreported(&mut self.session)?;
                self.flush_batch(now);
                self.rx = Receive::until(deadline, false);
                request.phase = Phase::Receive;
            }
        }
        Ok(())
    }

    /// A windowed QoS 1 publish waits for room (or, with the caller's id,
    /// for that id to be in flight already: a copy goes out again).
    fn room(&mut self, request: &mut Request<'_>, now: u64) -> Result<Option<Io>, CoreError> {
        let Kind::Publish { publish, given } = &mut request.kind else {
            return Err(Error::NotConnected);
        };
        let ready = self.session.window_room() > 0
            || (*given && self.session.is_in_flight(publish.packet_id));
        if ready {
            if !*given {
                // The id is taken once there is room: never one in flight.
                publish.packet_id = self.session.take_packet_id();
            }
            self.rx = Receive::buffered();
            request.phase = Phase::Buffered;
            return Ok(None);
        }
        match self.receive(now)? {
            Poll::Packet(handled) => unsolicited(&mut self.session, handled).map(|()| None),
            Poll::Nothing => Err(Error::Timeout(Waiting::PubAck)),
            Poll::Again => Ok(None),
            Poll::Io(io) => Ok(Some(io)),
        }
    }

    /// A publish reads first if nothing was read for a while, then encodes.
    fn before_publish(&mut self, request: &mut Request<'_>, now: u64) {
        if self.session.read_due(now) {
            self.rx = Receive::until(None, false);
            request.phase = Phase::ReadFirst;
        } else {
            request.phase = Phase::Encode;
        }
    }

    /// Encodes the request's packet behind the batch; the batch goes alone
    /// first when both do not fit.
    fn encode(&mut self, request: &mut Request<'_>, now: u64) -> Result<(), CoreError> {
        let (encoded, next) = match &mut request.kind {
            Kind::Publish { publish, .. } => {
                let next = match publish.qos {
                    QoS::AtMostOnce => Phase::Done(Some(false)),
                    _ if self.session.window_capacity() > 0 => Phase::InFlight,
                    _ => Phase::Ack {
                        waiting: Waiting::PubAck,
                        started: false,
                    },
                };
                (self.session.encode_publish(publish)?, next)
            }
            Kind::Subscribe {
                filters, packet_id, ..
            } => {
                let packet = Packet::Subscribe(Subscribe {
                    packet_id: *packet_id,
                    filters: crate::packet::SubscribeFilters::List(filters),
                });
                let ack = Phase::Ack {
                    waiting: Waiting::SubAck,
                    started: false,
                };
                (self.session.encode(&packet)?, ack)
            }
            Kind::Unsubscribe { filter, packet_id } => {
                let packet = Packet::Unsubscribe(Unsubscribe {
                    packet_id: *packet_id,
                    filters: UnsubscribeFilters::List(filter),
                });
                let ack = Phase::Ack {
                    waiting: Waiting::UnsubAck,
                    started: false,
                };
                (self.session.encode(&packet)?, ack)
            }
            _ => return Err(Error::NotConnected),
        };
        match encoded {
            Encoded::FlushFirst(len) => self.send(len, now, false, false),
            Encoded::Batched => request.phase = next,
            Encoded::Send(len) => {
                self.send(len, now, false, false);
                request.phase = next;
            }
            Encoded::SendWithPayload(len) => {
                self.send(len, now, true, false);
                request.phase = next;
            }
        }
        Ok(())
    }

    /// Waits for the acknowledgement of the request's packet.
    fn await_ack(
        &mut self,
        request: &mut Request<'_>,
        waiting: Waiting,
        started: bool,
        now: u64,
    ) -> Result<Option<Io>, CoreError> {
        let id = request.packet_id();
        if !started {
            // Counted from after the send, which may have waited for room:
            // the whole ack timeout is left for the answer.
            let deadline = self.wait_deadline(now, self.session.options().ack_timeout_ms);
            self.session.expect(Some((waiting, id)));
            self.rx = Receive::until(Some(deadline), true);
            request.phase = Phase::Ack {
                waiting,
                started: true,
            };
        }
        match self.receive(now)? {
            Poll::Packet(super::callbacks::Handled::Acked) => {
                self.session.expect(None);
                if let Kind::Subscribe {
                    filters,
                    granted: slots,
                    ..
                } = &mut request.kind
                {
                    granted(&self.session, filters.len(), slots)?;
                }
                Ok(Some(self.done(request, false)))
            }
            Poll::Packet(other) => unsolicited(&mut self.session, other).map(|()| None),
            Poll::Nothing => Err(Error::Timeout(waiting)),
            Poll::Again => Ok(None),
            Poll::Io(io) => Ok(Some(io)),
        }
    }

    /// `wait_msg_for`/`check_msg` (one packet) and `flush_for` (until the
    /// window is empty).
    fn receive_for(
        &mut self,
        request: &mut Request<'_>,
        now: u64,
    ) -> Result<Option<Io>, CoreError> {
        let flush_for = matches!(request.kind, Kind::FlushFor { .. });
        if flush_for && self.session.in_flight() == 0 {
            return Ok(Some(self.done(request, true)));
        }
        match self.receive(now)? {
            Poll::Packet(handled) if flush_for => {
                unsolicited(&mut self.session, handled).map(|()| None)
            }
            Poll::Packet(handled) => {
                let answer = handled_msg(&mut self.session, Some(handled))?;
                Ok(Some(self.done(request, answer)))
            }
            Poll::Nothing => Ok(Some(self.done(request, false))),
            Poll::Again => Ok(None),
            Poll::Io(io) => Ok(Some(io)),
        }
    }
}
