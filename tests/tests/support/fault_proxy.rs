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
//! A slow link: [`FaultProxy::slow_link`] holds every packet for a fixed
//! delay in each direction (25 ms each way is a 50 ms round trip), as netem
//! would, which this kernel lacks. Packets read meanwhile are not held up by
//! it: each is forwarded its delay after it was read, so several can be on
//! the way at once, as on a real link. [`FaultProxy::start_on`] also picks
//! the listening address (inside a network namespace, say).
//!
//! Every forwarded packet is recorded with its direction and when it was
//! forwarded ([`Record::at`]), so a test reads from the record what was on
//! the wire, and in which order: e.g. how many PUBLISH packets left before
//! the first PUBACK came back.
//!
//! Only for tests: errors end the affected connection, never the test.

// Each test file uses its own subset of the controls.
#![allow(dead_code)]

use std::io::{ErrorKind, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

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
    /// When it was forwarded, from the proxy's start.
    pub at: Duration,
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
        .filter(|r| r.dir == Direction::ToBroker && r.is(kind))
        .collect()
}

/// What the wire shows of a QoS 1 window: the PUBLISH packets forwarded to
/// the broker, how many of them before the first PUBACK came back (`None`:
/// none came), and the most forwarded and not yet answered at any point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WireWindow {
    pub sent: usize,
    pub before_first_ack: Option<usize>,
    pub most: usize,
}

/// Reads [`WireWindow`] off the proxy's `records`.
pub fn window_on_the_wire(records: &[Record]) -> WireWindow {
    let mut w = WireWindow {
        sent: 0,
        before_first_ack: None,
        most: 0,
    };
    let mut in_flight = 0usize;
    for r in records {
        if r.dir == Direction::ToBroker && r.is(PUBLISH) {
            w.sent += 1;
            in_flight += 1;
            w.most = w.most.max(in_flight);
        } else if r.dir == Direction::ToClient && r.is(PUBACK) {
            w.before_first_ack.get_or_insert(w.sent);
            in_flight = in_flight.saturating_sub(1);
        }
    }
    w
}

impl Record {
    /// Whether the packet is of type `kind` ([`PUBLISH`], [`PUBACK`], ...).
    pub fn is(&self, kind: u8) -> bool {
        self.packet.first().is_some_and(|&b| packet_type(b) == kind)
    }

    /// The packet id of a QoS 1 or 2 PUBLISH or of a PUBACK; `None` for
    /// other packets (and cut ones).
    pub fn packet_id(&self) -> Option<u16> {
        let p = &self.packet;
        let first = *p.first()?;
        let body = match packet_type(first) {
            PUBACK => p.get(2..)?,
            PUBLISH if first & 0x06 != 0 => {
                // The body starts after the remaining length; the id
                // follows the topic.
                let header = 1 + p.iter().skip(1).position(|b| b & 0x80 == 0)? + 1;
                let topic_len =
                    usize::from(u16::from_be_bytes([*p.get(header)?, *p.get(header + 1)?]));
                p.get(header + 2 + topic_len..)?
            }
            _ => return None,
        };
        Some(u16::from_be_bytes([*body.first()?, *body.get(1)?]))
    }
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
    /// How long every packet is held in each direction (zero: not at all).
    delay: Duration,
    /// The time 0 of [`Record::at`].
    started: Option<Instant>,
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
        Self::slow_link(broker, Duration::ZERO)
    }

    /// Starts a proxy in front of the broker at `broker` that holds every
    /// packet for `delay` in each direction: a link with a round trip of
    /// twice `delay`.
    pub fn slow_link(broker: SocketAddr, delay: Duration) -> Self {
        Self::start_on(SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), broker, delay)
    }

    /// Starts a proxy listening on `listen` (port 0: any free one) in front
    /// of the broker at `broker`, holding every packet for `delay` in each
    /// direction.
    pub fn start_on(listen: SocketAddr, broker: SocketAddr, delay: Duration) -> Self {
        let listener = TcpListener::bind(listen).expect("bind the proxy");
        let addr = listener.local_addr().expect("proxy address");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let shared = Arc::new(Shared {
            delay,
            started: Some(Instant::now()),
            ..Shared::default()
        });
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

/// What a pump reads: a packet, or the end of the stream.
enum Item {
    Packet(Vec<u8>),
    End,
}

/// Copies `from` to `to` packet by packet, applying the faults; with a
/// delay, through a delay line: this thread reads and stamps each packet,
/// a second one forwards it once its delay has passed.
fn pump(
    shared: &Shared,
    conn: &Conn,
    index: usize,
    dir: Direction,
    from: TcpStream,
    mut to: TcpStream,
) {
    let mut deliver = move |item: Item| match item {
        Item::Packet(packet) => forward(shared, conn, index, dir, &packet, &mut to),
        Item::End => {
            let _ = to.shutdown(Shutdown::Write);
            false
        }
    };
    if shared.delay.is_zero() {
        read_packets(from, deliver);
        return;
    }
    let (line, out) = mpsc::channel::<(Instant, Item)>();
    thread::scope(|scope| {
        scope.spawn(move || {
            for (due, item) in out {
                let now = Instant::now();
                if due > now {
                    thread::sleep(due - now);
                }
                if !deliver(item) {
                    return;
                }
            }
        });
        read_packets(from, |item| {
            line.send((Instant::now() + shared.delay, item)).is_ok()
        });
        drop(line);
    });
}

/// Reads `from`, cutting the stream into packets, and hands each to `emit`
/// (while it returns true); at the end of the stream, what is left (a
/// partial packet), then [`Item::End`].
fn read_packets(mut from: TcpStream, mut emit: impl FnMut(Item) -> bool) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        while let Some(len) = whole_packet_len(&buf) {
            let packet: Vec<u8> = buf.drain(..len).collect();
            if !emit(Item::Packet(packet)) {
                return;
            }
        }
        match from.read(&mut chunk) {
            Ok(0) | Err(_) => {
                if !buf.is_empty() {
                    emit(Item::Packet(std::mem::take(&mut buf)));
                }
                emit(Item::End);
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
        let mut records = shared.records.lock().unwrap();
        let at = shared.started.map_or(Duration::ZERO, |t| t.elapsed());
        records.push(Record {
            conn: index,
            dir,
            packet: bytes.to_vec(),
            at,
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
