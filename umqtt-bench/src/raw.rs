//! The raw limit: precomputed MQTT packets written with `std::net::TcpStream`
//! (TCP_NODELAY), replies read with exact-length blocking reads. No parsing,
//! no state, no checks beyond the first byte: what any client pays at least.
//! Also the counting subscriber that every QoS 0 test shares.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::common::{
    Ctx, HEAP_OPS, IDLE_LIMIT, IdleResult, PAYLOAD, Qos0Publish, Res, client_id, time_after_warmup,
    time_each,
};
use crate::cpu::CpuStopwatch;

/// Bytes per write in the batched QoS 0 mode: about 64 KiB of whole packets.
const BATCH_BYTES: usize = 64 * 1024;

fn put_remaining_length(out: &mut Vec<u8>, mut n: usize) {
    loop {
        let mut byte = (n % 128) as u8;
        n /= 128;
        if n > 0 {
            byte |= 0x80;
        }
        out.push(byte);
        if n == 0 {
            return;
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    out.extend_from_slice(&(s.len() as u16).to_be_bytes());
    out.extend_from_slice(s);
}

fn packet(first: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![first];
    put_remaining_length(&mut out, body.len());
    out.extend_from_slice(body);
    out
}

/// CONNECT, MQTT 3.1.1, clean session.
pub fn connect_packet(client_id: &str, keepalive_s: u16) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, b"MQTT");
    body.push(4);
    body.push(0x02);
    body.extend_from_slice(&keepalive_s.to_be_bytes());
    put_str(&mut body, client_id.as_bytes());
    packet(0x10, &body)
}

/// SUBSCRIBE to one filter.
pub fn subscribe_packet(packet_id: u16, filter: &[u8], qos: u8) -> Vec<u8> {
    let mut body = packet_id.to_be_bytes().to_vec();
    put_str(&mut body, filter);
    body.push(qos);
    packet(0x82, &body)
}

/// PUBLISH at QoS 0 (`packet_id` None) or QoS 1.
pub fn publish_packet(topic: &[u8], payload: &[u8], packet_id: Option<u16>) -> Vec<u8> {
    let mut body = Vec::new();
    put_str(&mut body, topic);
    let first = match packet_id {
        Some(id) => {
            body.extend_from_slice(&id.to_be_bytes());
            0x32
        }
        None => 0x30,
    };
    body.extend_from_slice(payload);
    packet(first, &body)
}

const PINGREQ: [u8; 2] = [0xc0, 0x00];
const DISCONNECT: [u8; 2] = [0xe0, 0x00];

/// A connected raw client.
pub struct RawConn {
    stream: TcpStream,
    next_id: u16,
}

impl RawConn {
    /// Connects with TCP_NODELAY and waits for CONNACK.
    pub fn connect(addr: SocketAddr, client_id: &str, keepalive_s: u16) -> Res<Self> {
        let mut stream = TcpStream::connect(addr).ctx("raw: connect")?;
        stream.set_nodelay(true).ctx("raw: TCP_NODELAY")?;
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .ctx("raw: read timeout")?;
        stream
            .write_all(&connect_packet(client_id, keepalive_s))
            .ctx("raw: CONNECT")?;
        let mut connack = [0u8; 4];
        stream.read_exact(&mut connack).ctx("raw: CONNACK")?;
        if connack != [0x20, 0x02, 0x00, 0x00] {
            return Err(format!("raw: connection refused: {connack:02x?}"));
        }
        Ok(RawConn { stream, next_id: 1 })
    }

    fn packet_id(&mut self) -> u16 {
        let id = self.next_id;
        self.next_id = if id == u16::MAX { 1 } else { id + 1 };
        id
    }

    /// Subscribes to `filter` and waits for the SUBACK.
    pub fn subscribe(&mut self, filter: &[u8], qos: u8) -> Res<()> {
        let id = self.packet_id();
        self.stream
            .write_all(&subscribe_packet(id, filter, qos))
            .ctx("raw: SUBSCRIBE")?;
        let mut suback = [0u8; 5];
        self.stream.read_exact(&mut suback).ctx("raw: SUBACK")?;
        if suback[0] != 0x90 || suback[4] > 2 {
            return Err(format!("raw: subscribe refused: {suback:02x?}"));
        }
        Ok(())
    }

    /// Writes `bytes` (whole packets).
    pub fn send(&mut self, bytes: &[u8]) -> Res<()> {
        self.stream.write_all(bytes).ctx("raw: write")
    }

    /// Sends DISCONNECT and closes.
    pub fn disconnect(mut self) {
        let _ = self.stream.write_all(&DISCONNECT);
    }
}

/// QoS 0: `n` precomputed PUBLISH packets, written about 64 KiB per write
/// when `batched`, else one packet per write (what a client without a batched
/// mode cannot go below).
pub fn publish_qos0(addr: SocketAddr, topic: &[u8], n: usize, batched: bool) -> Res<Qos0Publish> {
    let mut conn = RawConn::connect(addr, &client_id("raw-q0"), 60)?;
    let one = publish_packet(topic, &PAYLOAD, None);
    let per_batch = if batched {
        (BATCH_BYTES / one.len()).max(1)
    } else {
        1
    };
    let batch: Vec<u8> = one.repeat(per_batch);
    let cpu = CpuStopwatch::start();
    let start = Instant::now();
    let mut left = n;
    while left > 0 {
        let k = left.min(per_batch);
        conn.stream
            .write_all(&batch[..k * one.len()])
            .ctx("raw: PUBLISH")?;
        left -= k;
    }
    let publisher_cpu = cpu.elapsed();
    conn.disconnect();
    Ok(Qos0Publish {
        start,
        publisher_cpu,
    })
}

/// QoS 1: `n` publishes one after the other, each waiting for its PUBACK.
/// Returns the time the `n` took (after `warmup` untimed ones).
pub fn qos1(addr: SocketAddr, topic: &[u8], warmup: usize, n: usize) -> Res<Duration> {
    let mut conn = RawConn::connect(addr, &client_id("raw-q1"), 60)?;
    let mut packet = publish_packet(topic, &PAYLOAD, Some(1));
    // The packet id sits right after the topic.
    let id_at = packet.len() - PAYLOAD.len() - 2;
    let elapsed = time_after_warmup(warmup, n, || {
        let id = conn.packet_id();
        packet[id_at..id_at + 2].copy_from_slice(&id.to_be_bytes());
        conn.stream.write_all(&packet).ctx("raw: PUBLISH")?;
        let mut puback = [0u8; 4];
        conn.stream.read_exact(&mut puback).ctx("raw: PUBACK")?;
        if puback[0] != 0x40 || puback[2..4] != id.to_be_bytes() {
            return Err(format!("raw: unexpected reply {puback:02x?}"));
        }
        Ok(())
    })?;
    conn.disconnect();
    Ok(elapsed)
}

/// QoS 1 with a window: up to `window` PUBLISH packets unacknowledged, one
/// write per message; while the window is full, one read takes in every
/// PUBACK that has arrived. `warmup` messages (all acknowledged) first;
/// returns the time from the first of the `n` timed publishes to the last
/// PUBACK.
pub fn qos1_window(
    addr: SocketAddr,
    topic: &[u8],
    window: usize,
    warmup: usize,
    n: usize,
) -> Res<Duration> {
    let mut conn = RawConn::connect(addr, &client_id("raw-qw"), 60)?;
    let mut packet = publish_packet(topic, &PAYLOAD, Some(1));
    let id_at = packet.len() - PAYLOAD.len() - 2;
    let mut acks = Acks::default();
    let mut stream_of = |conn: &mut RawConn, count: usize| -> Res<()> {
        let mut in_flight = 0;
        for _ in 0..count {
            while in_flight >= window {
                in_flight -= acks.read(&mut conn.stream)?;
            }
            let id = conn.packet_id();
            packet[id_at..id_at + 2].copy_from_slice(&id.to_be_bytes());
            conn.stream.write_all(&packet).ctx("raw: PUBLISH")?;
            in_flight += 1;
        }
        while in_flight > 0 {
            in_flight = in_flight.saturating_sub(acks.read(&mut conn.stream)?);
        }
        Ok(())
    };
    stream_of(&mut conn, warmup)?;
    let start = Instant::now();
    stream_of(&mut conn, n)?;
    let elapsed = start.elapsed();
    conn.disconnect();
    Ok(elapsed)
}

/// Reads PUBACKs (4 bytes each) as many at a time as have arrived, keeping a
/// partial one for the next read.
struct Acks {
    buf: [u8; 4096],
    /// Bytes of a partial PUBACK at the start of `buf`.
    partial: usize,
}

impl Default for Acks {
    fn default() -> Self {
        Acks {
            buf: [0; 4096],
            partial: 0,
        }
    }
}

impl Acks {
    /// Blocks for one read; returns how many whole PUBACKs it completed.
    fn read(&mut self, stream: &mut TcpStream) -> Res<usize> {
        let n = stream
            .read(&mut self.buf[self.partial..])
            .ctx("raw: read PUBACK")?;
        if n == 0 {
            return Err("raw: the broker closed the connection".into());
        }
        let total = self.partial + n;
        let whole = total / 4;
        if let Some(bad) = (0..whole).map(|i| self.buf[4 * i]).find(|&b| b != 0x40) {
            return Err(format!("raw: {bad:02x} instead of PUBACK"));
        }
        self.partial = total % 4;
        self.buf.copy_within(4 * whole..total, 0);
        Ok(whole)
    }
}

/// Round trip: publish QoS 0 to one's own subscription and read it back;
/// `samples` gets one duration per message after `warmup` untimed ones.
pub fn round_trip(
    addr: SocketAddr,
    topic: &[u8],
    warmup: usize,
    samples: &mut Vec<Duration>,
    n: usize,
) -> Res<()> {
    let mut conn = RawConn::connect(addr, &client_id("raw-rtt"), 60)?;
    conn.subscribe(topic, 0)?;
    let packet = publish_packet(topic, &PAYLOAD, None);
    let mut back = vec![0u8; packet.len()];
    let stream = &mut conn.stream;
    let one = |_| {
        stream.write_all(&packet).ctx("raw: PUBLISH")?;
        stream.read_exact(&mut back).ctx("raw: read PUBLISH")?;
        Ok(back[0])
    };
    time_each(warmup, n, samples, one, |first| match first {
        0x30 => Ok(()),
        other => Err(format!("raw: unexpected packet type {other:02x}")),
    })?;
    conn.disconnect();
    Ok(())
}

/// The heap test's workload over the raw socket (see [`heap`]): QoS 0
/// publishes, QoS 1 publishes with their PUBACK, round trips.
pub struct RawHeap {
    conn: RawConn,
    q0: Vec<u8>,
    q1: Vec<u8>,
    own: Vec<u8>,
    back: Vec<u8>,
}

impl RawHeap {
    /// Connects and subscribes to `own_topic` (outside the counted window).
    pub fn setup(addr: SocketAddr, topic: &[u8], own_topic: &[u8]) -> Res<Self> {
        let mut conn = RawConn::connect(addr, &client_id("raw-heap"), 60)?;
        conn.subscribe(own_topic, 0)?;
        let own = publish_packet(own_topic, &PAYLOAD, None);
        Ok(RawHeap {
            conn,
            q0: publish_packet(topic, &PAYLOAD, None),
            q1: publish_packet(topic, &PAYLOAD, Some(1)),
            back: vec![0u8; own.len()],
            own,
        })
    }

    /// One QoS 0 publish.
    pub fn qos0(&mut self) -> Res<()> {
        self.conn.stream.write_all(&self.q0).ctx("raw: PUBLISH")
    }

    /// One QoS 1 publish and its PUBACK.
    pub fn qos1(&mut self) -> Res<()> {
        let id = self.conn.packet_id();
        let at = self.q1.len() - PAYLOAD.len() - 2;
        self.q1[at..at + 2].copy_from_slice(&id.to_be_bytes());
        self.conn.stream.write_all(&self.q1).ctx("raw: PUBLISH")?;
        let mut puback = [0u8; 4];
        self.conn.stream.read_exact(&mut puback).ctx("raw: PUBACK")
    }

    /// One round trip through the own subscription.
    pub fn round_trip(&mut self) -> Res<()> {
        self.conn.stream.write_all(&self.own).ctx("raw: PUBLISH")?;
        self.conn
            .stream
            .read_exact(&mut self.back)
            .ctx("raw: read PUBLISH")
    }

    /// Disconnects.
    pub fn finish(self) {
        self.conn.disconnect();
    }
}

/// Heap: connects and subscribes, then runs [`HEAP_OPS`] operations of each
/// kind between `begin` and `end` (which read the allocation counters).
pub fn heap(
    addr: SocketAddr,
    topic: &[u8],
    own_topic: &[u8],
    begin: &mut dyn FnMut(),
    end: &mut dyn FnMut(),
) -> Res<()> {
    let mut conn = RawHeap::setup(addr, topic, own_topic)?;
    begin();
    for _ in 0..HEAP_OPS {
        conn.qos0()?;
    }
    for _ in 0..HEAP_OPS {
        conn.qos1()?;
    }
    for _ in 0..HEAP_OPS {
        conn.round_trip()?;
    }
    end();
    conn.finish();
    Ok(())
}

/// Idle: blocked in a read with keepalive, sending PINGREQ when it is due,
/// until a message arrives on `wake_topic`. `ready` is called once subscribed.
pub fn idle(
    addr: SocketAddr,
    wake_topic: &[u8],
    keepalive_s: u16,
    ready: impl FnOnce(),
) -> Res<IdleResult> {
    let mut conn = RawConn::connect(addr, &client_id("raw-idle"), keepalive_s)?;
    conn.subscribe(wake_topic, 0)?;
    let keepalive = Duration::from_secs(keepalive_s.into());
    ready();
    let cpu = CpuStopwatch::start();
    let start = Instant::now();
    let mut last_sent = Instant::now();
    let mut pings = 0;
    loop {
        if start.elapsed() > IDLE_LIMIT {
            return Err("raw: the wake-up message never came".into());
        }
        let due = (last_sent + keepalive).saturating_duration_since(Instant::now());
        conn.stream
            .set_read_timeout(Some(due.max(Duration::from_millis(1))))
            .ctx("raw: read timeout")?;
        let mut first = [0u8; 2];
        match conn.stream.read_exact(&mut first) {
            Ok(()) => {
                let len = usize::from(first[1]);
                let mut body = vec![0u8; len];
                conn.stream.read_exact(&mut body).ctx("raw: read")?;
                if first[0] & 0xf0 == 0x30 {
                    break;
                }
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                conn.stream.write_all(&PINGREQ).ctx("raw: PINGREQ")?;
                last_sent = Instant::now();
                pings += 1;
            }
            Err(e) => return Err(format!("raw: idle read: {e}")),
        }
    }
    let result = IdleResult {
        wall: start.elapsed(),
        cpu: cpu.elapsed(),
        pings: Some(pings),
    };
    conn.disconnect();
    Ok(result)
}

/// The subscriber every QoS 0 test shares: a raw connection subscribed to
/// `topic` that counts whole PUBLISH packets until it has `expected` of them,
/// or nothing arrived for `silence`.
pub struct Counter {
    handle: JoinHandle<Res<(Instant, usize)>>,
}

impl Counter {
    /// Connects and subscribes; returns once the subscription is in place.
    pub fn start(addr: SocketAddr, topic: &str, expected: usize, silence: Duration) -> Res<Self> {
        let mut conn = RawConn::connect(addr, &client_id("counter"), 60)?;
        conn.subscribe(topic.as_bytes(), 0)?;
        conn.stream
            .set_read_timeout(Some(silence))
            .ctx("counter: read timeout")?;
        let handle = thread::Builder::new()
            .name("counter".into())
            .spawn(move || count(conn, expected))
            .ctx("spawn the counter")?;
        Ok(Counter { handle })
    }

    /// When the last message arrived, and how many did.
    pub fn join(self) -> Res<(Instant, usize)> {
        self.handle
            .join()
            .map_err(|_| "the counter panicked".to_string())?
    }
}

fn count(mut conn: RawConn, expected: usize) -> Res<(Instant, usize)> {
    let mut buf = vec![0u8; 256 * 1024];
    let mut have = 0;
    // Bytes of the current packet's body still to come, and its type.
    let mut body_left = 0usize;
    let mut in_publish = false;
    let mut count = 0;
    let mut last = Instant::now();
    while count < expected {
        let n = match conn.stream.read(&mut buf[have..]) {
            Ok(0) => return Err("counter: broker closed the connection".into()),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => return Err(format!("counter: read: {e}")),
        };
        have += n;
        let mut pos = 0;
        loop {
            if body_left > 0 {
                let take = body_left.min(have - pos);
                pos += take;
                body_left -= take;
                if body_left > 0 {
                    break;
                }
            }
            if in_publish {
                in_publish = false;
                count += 1;
                last = Instant::now();
            }
            // The next fixed header, if it is all in.
            let Some((first, header_len, remaining)) = fixed_header(&buf[pos..have]) else {
                break;
            };
            pos += header_len;
            body_left = remaining;
            in_publish = first & 0xf0 == 0x30;
            if body_left == 0 && in_publish {
                in_publish = false;
                count += 1;
                last = Instant::now();
            }
        }
        buf.copy_within(pos..have, 0);
        have -= pos;
    }
    conn.disconnect();
    Ok((last, count))
}

/// First byte, header length and remaining length of the packet at the
/// start of `bytes`, if its fixed header is complete.
fn fixed_header(bytes: &[u8]) -> Option<(u8, usize, usize)> {
    let first = *bytes.first()?;
    let mut len = 0usize;
    for i in 0..4 {
        let b = *bytes.get(1 + i)?;
        len |= usize::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            return Some((first, 2 + i, len));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_match_the_wire_vectors() {
        // From shared/wire-vectors.md.
        assert_eq!(
            connect_packet("umqtt_client", 0),
            crate::common::hex("101800044d51545404020000000c756d7174745f636c69656e74")
        );
        assert_eq!(
            subscribe_packet(1, b"foo_topic", 0),
            crate::common::hex("820e00010009666f6f5f746f70696300")
        );
        assert_eq!(
            publish_packet(b"foo_topic", b"hello", Some(1)),
            crate::common::hex("32120009666f6f5f746f706963000168656c6c6f")
        );
        assert_eq!(
            publish_packet(b"t", &[0x78; 200], None)[..5],
            crate::common::hex("30cb010001")[..]
        );
    }

    #[test]
    fn fixed_header_waits_for_all_length_bytes() {
        assert_eq!(fixed_header(&[0x30]), None);
        assert_eq!(fixed_header(&[0x30, 0xcb]), None);
        assert_eq!(fixed_header(&[0x30, 0xcb, 0x01]), Some((0x30, 3, 203)));
        assert_eq!(fixed_header(&[0xd0, 0x00]), Some((0xd0, 2, 0)));
    }
}
