//! What the client targets share: the rig (in-memory stack on virtual time),
//! the chunk delivery of a step, and the oracle of the exchange: every byte
//! the client read and sent, in order, checked against what MQTT 3.1.1
//! allows a client to send at that point.

use core::cell::RefCell;
use core::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

use embedded_nal::TcpClientStack;
use umqtt_simple::QoS;
use umqtt_simple::packet::Packet;
use umqtt_transports::Wait;
use umqtt_transports::memory::{MemoryError, MemorySocket, MemoryStack, VirtualClock, VirtualWait};

use crate::script::{Op, Step};

/// Where the client connects (nothing listens: the stack is in memory).
pub const BROKER: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883);
/// A valid CONNACK: accepted, no session.
pub const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
/// Connect deadline of the fuzzed clients.
pub const CONNECT_MS: u32 = 4_000;
/// Acknowledgement deadline of the fuzzed clients.
pub const ACK_MS: u32 = 3_000;
/// Send deadline of the fuzzed clients.
pub const SEND_MS: u32 = 2_000;
/// The topic publishes go to.
pub const TOPIC: &[u8] = b"t/x";
/// The filter subscribes use.
pub const FILTER: &[u8] = b"t/#";
/// The second filter of a two-filter subscribe.
pub const FILTER_2: &[u8] = b"u/+";
/// Payload bytes to publish from (a step uses `9 * param` of them).
pub const PAYLOAD: [u8; 63] = [b'p'; 63];

/// What happened on the wire, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Event {
    /// A new connection.
    Connected,
    /// Bytes the client read.
    Received(Vec<u8>),
    /// Bytes the client sent (what the stack took).
    Sent(Vec<u8>),
}

/// A [`MemoryStack`] that records, in order, every connect and every byte
/// the client read and sent, so the oracle sees the exchange as the client
/// did (not as the script queued it: queued bytes may be dropped unread).
#[derive(Clone, Default)]
pub struct Recording {
    inner: MemoryStack,
    log: Rc<RefCell<Vec<Event>>>,
}

impl Recording {
    fn push(&self, event: Event) {
        self.log.borrow_mut().push(event);
    }

    fn take(&self) -> Vec<Event> {
        core::mem::take(&mut *self.log.borrow_mut())
    }
}

impl TcpClientStack for Recording {
    type TcpSocket = MemorySocket;
    type Error = MemoryError;

    fn socket(&mut self) -> Result<MemorySocket, MemoryError> {
        self.inner.socket()
    }

    fn connect(
        &mut self,
        socket: &mut MemorySocket,
        remote: SocketAddr,
    ) -> nb::Result<(), MemoryError> {
        let result = self.inner.connect(socket, remote);
        if result.is_ok() {
            self.push(Event::Connected);
        }
        result
    }

    fn send(&mut self, socket: &mut MemorySocket, buf: &[u8]) -> nb::Result<usize, MemoryError> {
        let result = self.inner.send(socket, buf);
        if let Ok(n) = result {
            self.push(Event::Sent(buf.get(..n).unwrap_or_default().to_vec()));
        }
        result
    }

    fn receive(
        &mut self,
        socket: &mut MemorySocket,
        buf: &mut [u8],
    ) -> nb::Result<usize, MemoryError> {
        let result = self.inner.receive(socket, buf);
        if let Ok(n) = result {
            self.push(Event::Received(buf.get(..n).unwrap_or_default().to_vec()));
        }
        result
    }

    fn close(&mut self, socket: MemorySocket) -> Result<(), MemoryError> {
        self.inner.close(socket)
    }
}

/// [`VirtualWait`] for the [`Recording`] stack.
#[derive(Clone, Debug)]
pub struct RecordingWait(VirtualWait);

impl Wait<Recording> for RecordingWait {
    fn wait_readable(&mut self, stack: &mut Recording, socket: &mut MemorySocket, timeout_ms: u32) {
        self.0.wait_readable(&mut stack.inner, socket, timeout_ms);
    }

    fn idle(&mut self, stack: &mut Recording, timeout_ms: u32) {
        self.0.idle(&mut stack.inner, timeout_ms);
    }

    fn poll(&mut self, stack: &mut Recording) {
        self.0.poll(&mut stack.inner);
    }
}

/// What the client sent in one step, as far as the targets' own checks
/// need it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Sent {
    /// PUBACKs sent.
    pub pubacks: usize,
    /// PUBRECs sent.
    pub pubrecs: usize,
    /// PUBLISH packets sent, first sendings and resends.
    pub publishes: Vec<SentPublish>,
}

/// A PUBLISH the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SentPublish {
    /// Its packet id (0 at QoS 0).
    pub packet_id: u16,
    /// Its DUP flag.
    pub dup: bool,
    /// Its QoS.
    pub qos: QoS,
    /// Its payload.
    pub payload: Vec<u8>,
}

/// The oracle of the exchange. Counts what the broker's packets (as the
/// client read them) entitle the client to send, and fails on anything
/// else:
/// - only whole, valid packets of the kinds a client sends: CONNECT,
///   PUBLISH (QoS 0 or 1; never QoS 2, never DUP on QoS 0), PUBACK, PUBREC,
///   PUBCOMP, SUBSCRIBE, UNSUBSCRIBE, PINGREQ, DISCONNECT; a partly sent
///   packet is never abandoned for a new connection;
/// - a PUBACK only for a QoS 1 PUBLISH of the broker's, a PUBREC only for
///   a QoS 2 one, a PUBCOMP only for a PUBREL, each at most once per
///   packet the broker sent (so not a PUBREC for a QoS 1 PUBLISH, nor a
///   PUBCOMP without a PUBREL);
/// - a first sending of a QoS 1 PUBLISH, a SUBSCRIBE or an UNSUBSCRIBE
///   takes a packet id no packet of the client's still waits on (not
///   acknowledged by the broker); with `client_owns_dup_ids` (the
///   application never picks ids, as with umqtt-robust), a DUP PUBLISH
///   does not take the id of a SUBSCRIBE or UNSUBSCRIBE still waited on
///   (it may resend an id whose first sending never reached the wire: the
///   attempt failed with the connection, and DUP only says "maybe sent");
/// - with `window`, at most that many QoS 1 PUBLISH packets unacknowledged
///   on one connection (their ids all different).
#[derive(Debug, Default)]
pub struct Exchange {
    rx: Vec<u8>,
    rx_broken: bool,
    tx: Vec<u8>,
    owed_puback: HashMap<u16, u32>,
    owed_pubrec: HashMap<u16, u32>,
    owed_pubcomp: HashMap<u16, u32>,
    /// Ids of the client's packets the broker has not acknowledged, with
    /// their kind.
    waiting: HashMap<u16, &'static str>,
    /// Ids of QoS 1 PUBLISH packets unacknowledged on this connection.
    window_used: HashSet<u16>,
    /// Every id a QoS 1 PUBLISH of the client's carried.
    published: HashSet<u16>,
    client_owns_dup_ids: bool,
    window: Option<usize>,
}

impl Exchange {
    /// An oracle; see the type's documentation for the two switches.
    pub fn new(client_owns_dup_ids: bool, window: Option<usize>) -> Self {
        Exchange {
            client_owns_dup_ids,
            window,
            ..Exchange::default()
        }
    }

    /// Whether the client sent a QoS 1 PUBLISH with packet id `id`.
    pub fn has_published(&self, id: u16) -> bool {
        self.published.contains(&id)
    }

    fn received(&mut self, bytes: &[u8]) {
        if self.rx_broken {
            return;
        }
        let mut rx = core::mem::take(&mut self.rx);
        rx.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            match Packet::decode(rx.get(at..).unwrap_or_default()) {
                Ok(Some((packet, used))) => {
                    self.on_broker_packet(&packet);
                    at += used;
                }
                Ok(None) => break,
                // The client drops the connection here; nothing after it
                // on this connection counts.
                Err(_) => {
                    self.rx_broken = true;
                    return;
                }
            }
        }
        rx.drain(..at);
        self.rx = rx;
    }

    fn on_broker_packet(&mut self, packet: &Packet<'_>) {
        let owe = |owed: &mut HashMap<u16, u32>, id| *owed.entry(id).or_default() += 1;
        match packet {
            Packet::Publish(p) => match p.qos {
                QoS::AtMostOnce => {}
                QoS::AtLeastOnce => owe(&mut self.owed_puback, p.packet_id),
                QoS::ExactlyOnce => owe(&mut self.owed_pubrec, p.packet_id),
            },
            Packet::PubRel(id) => owe(&mut self.owed_pubcomp, *id),
            Packet::PubAck(id) => {
                self.waiting.remove(id);
                self.window_used.remove(id);
            }
            Packet::SubAck(s) => {
                self.waiting.remove(&s.packet_id);
            }
            Packet::UnsubAck(id) => {
                self.waiting.remove(id);
            }
            _ => {}
        }
    }

    fn on_client_packet(&mut self, packet: &Packet<'_>, sent: &mut Sent) {
        fn pay(owed: &mut HashMap<u16, u32>, id: u16, what: &str) {
            match owed.get_mut(&id) {
                Some(n) if *n > 0 => *n -= 1,
                _ => panic!("client sent {what} {id}, which no packet of the broker's asked for"),
            }
        }
        match packet {
            Packet::PubAck(id) => {
                pay(&mut self.owed_puback, *id, "PUBACK");
                sent.pubacks += 1;
            }
            Packet::PubRec(id) => {
                pay(&mut self.owed_pubrec, *id, "PUBREC");
                sent.pubrecs += 1;
            }
            Packet::PubComp(id) => pay(&mut self.owed_pubcomp, *id, "PUBCOMP"),
            Packet::Publish(p) => match p.qos {
                QoS::AtMostOnce => {
                    assert!(!p.dup, "client sent a QoS 0 PUBLISH with DUP");
                    sent.publishes.push(SentPublish {
                        packet_id: 0,
                        dup: false,
                        qos: p.qos,
                        payload: p.payload.to_vec(),
                    });
                }
                QoS::ExactlyOnce => panic!("client sent a QoS 2 PUBLISH"),
                QoS::AtLeastOnce => {
                    let id = p.packet_id;
                    if p.dup {
                        if self.client_owns_dup_ids
                            && let Some(other) = self.waiting.insert(id, "PUBLISH")
                        {
                            assert_eq!(
                                other, "PUBLISH",
                                "client resent (DUP) a PUBLISH with id {id}, which its {other} still waits on"
                            );
                        }
                    } else {
                        self.first_use(id, "PUBLISH");
                    }
                    if !p.dup || self.client_owns_dup_ids {
                        self.window_used.insert(id);
                        if let Some(window) = self.window {
                            assert!(
                                self.window_used.len() <= window.max(1),
                                "{} QoS 1 messages unacknowledged on one connection, window {window}",
                                self.window_used.len()
                            );
                        }
                    }
                    self.published.insert(id);
                    sent.publishes.push(SentPublish {
                        packet_id: id,
                        dup: p.dup,
                        qos: p.qos,
                        payload: p.payload.to_vec(),
                    });
                }
            },
            Packet::Subscribe(s) => self.first_use(s.packet_id, "SUBSCRIBE"),
            Packet::Unsubscribe(u) => self.first_use(u.packet_id, "UNSUBSCRIBE"),
            Packet::Connect(_) | Packet::PingReq | Packet::Disconnect => {}
            other => panic!("client sent a {}", other.packet_type()),
        }
    }

    fn first_use(&mut self, id: u16, what: &'static str) {
        if let Some(other) = self.waiting.insert(id, what) {
            panic!("client sent {what} with id {id}, which its {other} still waits on");
        }
    }

    fn sent(&mut self, bytes: &[u8], sent: &mut Sent) {
        let mut tx = core::mem::take(&mut self.tx);
        tx.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            let rest = tx.get(at..).unwrap_or_default();
            match Packet::decode(rest) {
                Ok(Some((packet, used))) => {
                    self.on_client_packet(&packet, sent);
                    at += used;
                }
                Ok(None) => break,
                Err(e) => panic!("client sent bytes that are not a packet: {e:?} in {rest:02x?}"),
            }
        }
        tx.drain(..at);
        self.tx = tx;
    }

    fn connected(&mut self) {
        assert!(
            self.tx.is_empty(),
            "client left a packet half sent ({:02x?}) and connected again",
            self.tx
        );
        self.rx.clear();
        self.rx_broken = false;
        self.window_used.clear();
    }

    fn end_of_step(&self) {
        if let Ok(Some(_)) | Err(_) = Packet::decode(&self.tx) {
            unreachable!("whole packets are taken as they come");
        }
        assert!(
            self.tx.is_empty(),
            "client ended a call with a packet half sent: {:02x?}",
            self.tx
        );
    }
}

/// The in-memory network and virtual time a fuzzed client runs on.
pub struct Rig {
    /// The broker's end of the stack.
    pub net: MemoryStack,
    /// The client's end, which records the exchange.
    pub stack: Recording,
    /// Virtual time.
    pub clock: VirtualClock,
    /// The waiter that moves it.
    pub waiter: RecordingWait,
    /// The oracle.
    pub exchange: Exchange,
}

impl Rig {
    /// A fresh rig, the clock at 1 000 ms; `exchange` checks the traffic.
    pub fn new(send_limit: Option<usize>, exchange: Exchange) -> Self {
        let clock = VirtualClock::starting_at(1_000);
        let net = MemoryStack::new();
        net.limit_sends(send_limit);
        Rig {
            stack: Recording {
                inner: net.clone(),
                log: Rc::default(),
            },
            net,
            waiter: RecordingWait(VirtualWait::new(&clock)),
            clock,
            exchange,
        }
    }

    /// Delivers a step's chunk: now, or as the answer to a packet the client
    /// will send (see [`Step::as_answer`]).
    pub fn deliver(&self, step: &Step<'_>) {
        if step.chunk.is_empty() {
            return;
        }
        let key = match step.op {
            // Delivered by the step itself, after the connection died.
            Op::Close => return,
            // connect() starts a new connection, which drops queued bytes.
            Op::Connect => Some(0x10),
            _ if !step.as_answer => None,
            Op::PublishQos0 => Some(0x30),
            Op::PublishQos1 => Some(0x32),
            Op::Republish => Some(0x3a),
            Op::Subscribe | Op::SubscribeMany => Some(0x82),
            Op::Unsubscribe => Some(0xa2),
            Op::Ping => Some(0xc0),
            Op::Disconnect => Some(0xe0),
            // Operations that send nothing of their own: the answer waits
            // for a PINGREQ, a PUBACK, a PUBREC or a PUBCOMP.
            _ => Some([0xc0, 0x40, 0x50, 0x70][usize::from(step.param & 3)]),
        };
        match key {
            Some(first_byte) => self.net.answer(first_byte, step.chunk),
            None => self.net.feed(step.chunk),
        }
    }

    /// The broker's end dies; `connack` answers the next CONNECT.
    pub fn close(&self, connack: &[u8]) {
        self.net.close_connection();
        if !connack.is_empty() {
            self.net.answer(0x10, connack);
        }
    }

    /// Runs the oracle over what the client read and sent since the last
    /// call (panics on a violation) and returns what it sent.
    pub fn check_sent(&mut self) -> Sent {
        let mut sent = Sent::default();
        for event in self.stack.take() {
            match event {
                Event::Connected => self.exchange.connected(),
                Event::Received(bytes) => self.exchange.received(&bytes),
                Event::Sent(bytes) => self.exchange.sent(&bytes, &mut sent),
            }
        }
        self.exchange.end_of_step();
        sent
    }
}
