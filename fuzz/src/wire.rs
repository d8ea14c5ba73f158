//! What both client targets share: the rig (in-memory stack on virtual time),
//! the chunk delivery of a step, and the check of what the client sent.

use core::net::{IpAddr, Ipv4Addr, SocketAddr};

use umqtt_simple::packet::{Packet, PacketType};
use umqtt_transports::memory::{MemoryStack, VirtualClock, VirtualWait};

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

/// The in-memory network and virtual time a fuzzed client runs on.
pub struct Rig {
    /// The broker's end of the stack.
    pub net: MemoryStack,
    /// Virtual time.
    pub clock: VirtualClock,
    /// The waiter that moves it.
    pub waiter: VirtualWait,
    sent: Vec<u8>,
}

impl Rig {
    /// A fresh rig, the clock at 1 000 ms.
    pub fn new(send_limit: Option<usize>) -> Self {
        let clock = VirtualClock::starting_at(1_000);
        let net = MemoryStack::new();
        net.limit_sends(send_limit);
        Rig {
            net,
            waiter: VirtualWait::new(&clock),
            clock,
            sent: Vec::new(),
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
            _ if step.param & 1 == 0 => Some(0xc0),
            _ => Some(0x40),
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

    /// Takes what the client sent since the last call and checks it: whole,
    /// valid packets of the kinds a client sends. Returns the number of
    /// PUBACKs among them.
    pub fn check_sent(&mut self) -> usize {
        self.sent.extend(self.net.take_sent());
        let mut pubacks = 0;
        let mut at = 0;
        while at < self.sent.len() {
            let rest = &self.sent[at..];
            let (packet, used) = match Packet::decode(rest) {
                Ok(Some(decoded)) => decoded,
                other => {
                    panic!("client sent bytes that are not a packet: {other:?} in {rest:02x?}")
                }
            };
            match packet.packet_type() {
                PacketType::PubAck => pubacks += 1,
                PacketType::Connect
                | PacketType::Publish
                | PacketType::Subscribe
                | PacketType::Unsubscribe
                | PacketType::PingReq
                | PacketType::Disconnect => {}
                other => panic!("client sent a {other}"),
            }
            at += used;
        }
        self.sent.clear();
        pubacks
    }
}
