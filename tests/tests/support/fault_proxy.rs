//! A loopback TCP proxy that injects network faults between an MQTT client
//! and a real broker (std threads, no dependencies).
//!
//! The proxy listens on `127.0.0.1:0`; every accepted connection gets its own
//! connection to the broker and two pump threads, one per direction. The pumps
//! cut the byte streams into MQTT packets (fixed header: type byte, remaining
//! length) and forward whole packets, so faults land on packet boundaries and
//! every forwarded packet is recorded ([`FaultProxy::records`]).
//!
//! Faults:
//! - [`FaultProxy::cut_all`]: shut every open connection down now (both sides
//!   see end of file).
//! - [`FaultProxy::cut_after_publish`]: the next PUBLISH from a client reaches
//!   the broker, and the connection it came on is cut when the broker's PUBACK
//!   would be forwarded to the client: the broker has the message, the client
//!   never hears so.
//! - [`FaultProxy::set_black_hole`]: nothing is forwarded in either direction,
//!   but every socket stays open (a dead link). Packets read meanwhile are
//!   held and forwarded in order once the black hole is lifted. Connections
//!   accepted during the black hole never reach the broker (like a SYN that
//!   gets no answer) and are closed when it is lifted.
//! - [`FaultProxy::set_refusing`]: new connections are accepted and closed at
//!   once (the client's connect fails right after the TCP handshake).
//! - [`FaultProxy::truncate_next`]: only the first `n` bytes of the next packet
//!   in one direction are forwarded, then that connection is cut.
//!
//! Only for tests: errors end the affected connection, never the test.

// Each test file uses its own subset of the controls.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

/// Which way a packet travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// From the client to the broker.
    ToBroker,
    /// From the broker to the client.
    ToClient,
}

/// A packet the proxy forwarded (or the part of it forwarded before a cut).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Index of the connection (in the order accepted, from 0).
    pub conn: usize,
    /// Which way it went.
    pub dir: Direction,
    /// The bytes forwarded.
    pub packet: Vec<u8>,
}

/// The packet type of a first header byte ([`PUBLISH`], [`PUBACK`], ...).
pub fn packet_type(first_byte: u8) -> u8 {
    first_byte >> 4
}

/// Packet type of CONNECT.
pub const CONNECT: u8 = 1;
/// Packet type of PUBLISH.
pub const PUBLISH: u8 = 3;
/// Packet type of PUBACK.
pub const PUBACK: u8 = 4;

/// The packets of type `kind` (see [`packet_type`]) a client sent through the
/// proxy, from [`FaultProxy::records`].
pub fn to_broker(records: &[Record], kind: u8) -> Vec<&Record> {
    records
        .iter()
        .filter(|r| r.dir == Direction::ToBroker && packet_type(r.packet[0]) == kind)
        .collect()
}

/// One proxied connection: clones of both sockets, so any thread can cut it.
struct Conn {
    client: TcpStream,
    broker: TcpStream,
    cut: AtomicBool,
    /// Armed by `cut_after_publish`: a PUBLISH passed to the broker, so the
    /// next PUBACK to the client cuts the connection instead.
    publish_passed: AtomicBool,
}

impl Conn {
    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.broker.shutdown(Shutdown::Both);
    }
}

#[derive(Default)]
struct Shared {
    stop: AtomicBool,
    black_hole: AtomicBool,
    refusing: AtomicBool,
    cut_after_publish: AtomicBool,
    truncate: Mutex<Option<(Direction, usize)>>,
    conns: Mutex<Vec<Arc<Conn>>>,
    accepted: AtomicUsize,
    refused: AtomicUsize,
    publish_cuts: AtomicUsize,
    records: Mutex<Vec<Record>>,
}

/// The proxy; stops (and cuts everything) when dropped.
pub struct FaultProxy {
    /// Where clients connect.
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    acceptor: Option<JoinHandle<()>>,
}

impl FaultProxy {
    /// Starts a proxy in front of the broker at `broker`.
    pub fn start(broker: SocketAddr) -> Self {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared::default());
        let acceptor = {
            let shared = Arc::clone(&shared);
            thread::spawn(move || accept_loop(&listener, broker, &shared))
        };
        FaultProxy {
            addr,
            shared,
            acceptor: Some(acceptor),
        }
    }

    /// Cuts every open connection now.
    pub fn cut_all(&self) {
        for conn in self.shared.conns.lock().unwrap().iter() {
            conn.cut();
        }
    }

    /// Arms a one-shot cut: the next PUBLISH from a client is forwarded, and
    /// its connection is cut instead of forwarding the broker's next PUBACK.
    pub fn cut_after_publish(&self) {
        self.shared.cut_after_publish.store(true, Ordering::SeqCst);
    }

    /// How many connections were cut by [`FaultProxy::cut_after_publish`].
    pub fn publish_cuts(&self) -> usize {
        self.shared.publish_cuts.load(Ordering::SeqCst)
    }

    /// Starts (`true`) or lifts (`false`) a black hole.
    pub fn set_black_hole(&self, on: bool) {
        self.shared.black_hole.store(on, Ordering::SeqCst);
    }

    /// Starts (`true`) or stops (`false`) refusing new connections.
    pub fn set_refusing(&self, on: bool) {
        self.shared.refusing.store(on, Ordering::SeqCst);
    }

    /// Forwards only the first `n` bytes of the next packet going `dir`, then
    /// cuts that connection (one-shot).
    pub fn truncate_next(&self, dir: Direction, n: usize) {
        *self.shared.truncate.lock().unwrap() = Some((dir, n));
    }

    /// Whether an armed truncation is still waiting for its packet.
    pub fn truncate_pending(&self) -> bool {
        self.shared.truncate.lock().unwrap().is_some()
    }

    /// Connections accepted and forwarded (not counting refused ones).
    pub fn accepted(&self) -> usize {
        self.shared.accepted.load(Ordering::SeqCst)
    }

    /// Connections accepted and closed at once while refusing.
    pub fn refused(&self) -> usize {
        self.shared.refused.load(Ordering::SeqCst)
    }

    /// Every packet forwarded so far, in the order forwarded.
    pub fn records(&self) -> Vec<Record> {
        self.shared.records.lock().unwrap().clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        self.shared.black_hole.store(false, Ordering::SeqCst);
        self.cut_all();
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, broker: SocketAddr, shared: &Arc<Shared>) {
    while !shared.stop.load(Ordering::SeqCst) {
        let client = match listener.accept() {
            Ok((client, _)) => client,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                thread::sleep(Duration::from_millis(2));
                continue;
            }
            Err(_) => continue,
        };
        if shared.refusing.load(Ordering::SeqCst) {
            shared.refused.fetch_add(1, Ordering::SeqCst);
            drop(client);
            continue;
        }
        let _ = client.set_nonblocking(false);
        let _ = client.set_nodelay(true);
        if shared.black_hole.load(Ordering::SeqCst) {
            // Never reaches the broker; closed once the black hole is lifted.
            let shared = Arc::clone(shared);
            thread::spawn(move || {
                while shared.black_hole.load(Ordering::SeqCst)
                    && !shared.stop.load(Ordering::SeqCst)
                {
                    thread::sleep(Duration::from_millis(5));
                }
                let _ = client.shutdown(Shutdown::Both);
            });
            continue;
        }
        let Ok(upstream) = TcpStream::connect(broker) else {
            continue; // the broker is down: the client sees the connection close
        };
        let _ = upstream.set_nodelay(true);
        let (Ok(client2), Ok(upstream2)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        let (Ok(client3), Ok(upstream3)) = (client.try_clone(), upstream.try_clone()) else {
            continue;
        };
        let conn = Arc::new(Conn {
            client: client3,
            broker: upstream3,
            cut: AtomicBool::new(false),
            publish_passed: AtomicBool::new(false),
        });
        let index = {
            let mut conns = shared.conns.lock().unwrap();
            conns.push(Arc::clone(&conn));
            conns.len() - 1
        };
        shared.accepted.fetch_add(1, Ordering::SeqCst);
        for (dir, from, to) in [
            (Direction::ToBroker, client, upstream),
            (Direction::ToClient, upstream2, client2),
        ] {
            let (shared, conn) = (Arc::clone(shared), Arc::clone(&conn));
            thread::spawn(move || pump(&shared, &conn, index, dir, from, to));
        }
    }
}

/// The length of the whole packet at the start of `buf`, once it is all there.
/// A malformed length field makes the rest of the buffer one "packet".
fn whole_packet_len(buf: &[u8]) -> Option<usize> {
    let mut remaining = 0usize;
    for i in 0..4 {
        let byte = *buf.get(1 + i)?;
        remaining |= usize::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            let total = 2 + i + remaining;
            return (buf.len() >= total).then_some(total);
        }
    }
    Some(buf.len())
}

/// Copies `from` to `to` packet by packet, applying the faults.
fn pump(
    shared: &Shared,
    conn: &Conn,
    index: usize,
    dir: Direction,
    mut from: TcpStream,
    mut to: TcpStream,
) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(len) = whole_packet_len(&buf) {
            let packet: Vec<u8> = buf.drain(..len).collect();
            if !forward(shared, conn, index, dir, &packet, &mut to) {
                return;
            }
        }
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => {
                // Pass on what is left (a partial packet) and the end of file.
                if !buf.is_empty() {
                    forward(shared, conn, index, dir, &buf, &mut to);
                }
                let _ = to.shutdown(Shutdown::Write);
                return;
            }
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

/// Forwards one packet, or cuts the connection; returns whether to go on.
fn forward(
    shared: &Shared,
    conn: &Conn,
    index: usize,
    dir: Direction,
    packet: &[u8],
    to: &mut TcpStream,
) -> bool {
    while shared.black_hole.load(Ordering::SeqCst) && !conn.cut.load(Ordering::SeqCst) {
        thread::sleep(Duration::from_millis(5));
    }
    if conn.cut.load(Ordering::SeqCst) {
        return false;
    }
    let record = |bytes: &[u8]| {
        shared.records.lock().unwrap().push(Record {
            conn: index,
            dir,
            packet: bytes.to_vec(),
        });
    };
    let truncate = {
        let mut armed = shared.truncate.lock().unwrap();
        match *armed {
            Some((d, n)) if d == dir => {
                *armed = None;
                Some(n)
            }
            _ => None,
        }
    };
    if let Some(n) = truncate {
        let part = &packet[..n.min(packet.len())];
        let _ = to.write_all(part);
        let _ = to.flush();
        record(part);
        // Give the partial packet a moment to leave before the end of file.
        thread::sleep(Duration::from_millis(20));
        conn.cut();
        return false;
    }
    let kind = packet_type(packet[0]);
    if dir == Direction::ToClient && kind == PUBACK && conn.publish_passed.load(Ordering::SeqCst) {
        shared.publish_cuts.fetch_add(1, Ordering::SeqCst);
        conn.cut();
        return false;
    }
    if dir == Direction::ToBroker
        && kind == PUBLISH
        && shared.cut_after_publish.swap(false, Ordering::SeqCst)
    {
        conn.publish_passed.store(true, Ordering::SeqCst);
    }
    record(packet);
    if to.write_all(packet).is_err() {
        conn.cut();
        return false;
    }
    true
}
