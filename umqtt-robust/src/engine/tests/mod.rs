//! The engine's decisions, driven through the blocking front-end on
//! virtual time: an in-memory stack whose far end is scripted, refused
//! connects and dead connections injected by the test, and a clock that
//! moves only through the client's own waits. Split by behaviour:
//! `reconnect.rs` (reconnecting, backoff, resending, resubscribing, call
//! deadlines during an outage), `half_broken.rs` (brokers that accept a
//! connection and then fail it), `outbox.rs` (the outbox on a connection
//! that comes and goes).

use core::cell::RefCell;
use core::net::SocketAddr;
use std::vec::Vec;

use umqtt_simple::{Client, Error, Message, Options, QoS, Waiting};
use umqtt_transports::Clock;
use umqtt_transports::memory::{MemoryStack, VirtualClock, VirtualWait};

use crate::{Backoff, Event, RobustClient, RobustError, RobustOptions};

const CONNACK: &[u8] = &[0x20, 0x02, 0x00, 0x00];
const CONNACK_SESSION: &[u8] = &[0x20, 0x02, 0x01, 0x00];

const PINGRESP: &[u8] = &[0xd0, 0x00];

fn broker() -> SocketAddr {
    "127.0.0.1:1883".parse().unwrap()
}

struct Rig {
    net: MemoryStack,
    clock: VirtualClock,
    waiter: VirtualWait,
}

type Robust<'a> = RobustClient<'a, MemoryStack, VirtualClock, VirtualWait>;

impl Rig {
    fn new() -> Self {
        let clock = VirtualClock::starting_at(10_000);
        Rig {
            net: MemoryStack::new(),
            waiter: VirtualWait::new(&clock),
            clock,
        }
    }

    fn client<'a>(&self, tx: &'a mut [u8], rx: &'a mut [u8], options: Options<'a>) -> Robust<'a> {
        let inner = Client::new(self.net.clone(), self.clock.clone(), tx, rx, options)
            .with_waiter(self.waiter.clone());
        let mut client = RobustClient::from_client(inner);
        client.set_robust_options(RobustOptions {
            backoff: Backoff {
                min_ms: 100,
                max_ms: 1_600,
                max_attempts: None,
            },
            call_timeout_ms: 60_000,
        });
        client
    }

    /// A client connected to the broker (the CONNACK answered) whose
    /// connection has shown it works (a PINGRESP came), so that losing it
    /// is an ordinary loss, not a failed attempt.
    fn connected<'a>(
        &self,
        tx: &'a mut [u8],
        rx: &'a mut [u8],
        options: Options<'a>,
    ) -> Robust<'a> {
        self.net.answer(0x10, CONNACK);
        let mut client = self.client(tx, rx, options);
        client.connect(broker()).unwrap();
        self.establish(&mut client);
        client
    }

    /// Lets the broker answer something on the client's connection.
    fn establish(&self, client: &mut Robust<'_>) {
        self.net.feed(PINGRESP);
        assert_eq!(client.check_msg(), Ok(true));
    }
}

/// Packets the client sent, split by the fixed header.
fn packets(bytes: &[u8]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut rest = bytes;
    while let Ok(Some((_, n))) = umqtt_simple::packet::Packet::decode(rest) {
        out.push(rest[..n].to_vec());
        rest = &rest[n..];
    }
    out
}

mod half_broken;
mod outbox;
mod reconnect;
