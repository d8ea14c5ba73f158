//! rumqttc's synchronous client, used the usual way: `Client::new(options, 10)`
//! and a thread iterating `connection.iter()`. That thread forwards the events
//! a test waits for (CONNACK, SUBACK, PUBACK, incoming PUBLISH) over a bounded
//! channel made before anything is counted.
//!
//! rumqttc leaves TCP_NODELAY off by default; the bench turns it on, the best
//! case for rumqttc and the same socket setting as the other clients.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rumqttc::{Client, Event, MqttOptions, Outgoing, Packet, QoS};

use crate::common::{
    Ctx, HEAP_OPS, IDLE_LIMIT, IdleResult, PAYLOAD, Qos0Publish, Res, client_id, time_after_warmup,
    time_each,
};
use crate::cpu::{CpuStopwatch, thread_cpu};
use crate::heap_count;

/// The request channel capacity: 10 as in rumqttc's README examples, or
/// `--rumqttc-cap N`.
pub static REQUEST_CAPACITY: AtomicUsize = AtomicUsize::new(10);

/// How long a test waits for one event.
const WAIT: Duration = Duration::from_secs(10);

/// What the connection thread forwards.
#[derive(Debug)]
pub enum Ev {
    /// CONNACK received.
    ConnAck,
    /// SUBACK received.
    SubAck,
    /// PUBACK received.
    PubAck,
    /// A PUBLISH received.
    Publish,
    /// A PINGREQ sent.
    PingReq,
    /// The connection failed: rumqttc's error.
    Failed(String),
}

/// An event and, when asked for, the connection thread's CPU time then.
pub type Forwarded = (Ev, Option<Duration>);

/// The channel the connection thread forwards events over.
pub fn channel() -> (SyncSender<Forwarded>, Receiver<Forwarded>) {
    sync_channel(4096)
}

/// A connected rumqttc client and its connection thread.
pub struct Rumq {
    /// The client the tests publish and subscribe with.
    pub client: Client,
    /// Events forwarded by the connection thread.
    events: Receiver<Forwarded>,
    /// The connection thread; returns its CPU time since CONNACK.
    thread: JoinHandle<Option<Duration>>,
}

impl Rumq {
    /// Connects (keepalive `keepalive_s`) and waits for CONNACK. With
    /// `track_cpu`, every forwarded event carries the connection thread's CPU
    /// time.
    pub fn connect(
        addr: SocketAddr,
        tag: &str,
        keepalive_s: u64,
        track_cpu: bool,
        (tx, rx): (SyncSender<Forwarded>, Receiver<Forwarded>),
    ) -> Res<Self> {
        let mut options = MqttOptions::new(client_id(tag), addr.ip().to_string(), addr.port());
        options.set_keep_alive(Duration::from_secs(keepalive_s));
        Self::connect_with(options, track_cpu, (tx, rx))
    }

    /// Connects with `options` (TCP or TLS; `TCP_NODELAY` turned on here) and
    /// waits for CONNACK; see [`Rumq::connect`].
    pub fn connect_with(
        options: MqttOptions,
        track_cpu: bool,
        (tx, rx): (SyncSender<Forwarded>, Receiver<Forwarded>),
    ) -> Res<Self> {
        let capacity = REQUEST_CAPACITY.load(Ordering::Relaxed);
        let (client, mut connection) = Client::new(options, capacity);
        let mut network = connection.eventloop.network_options();
        network.set_tcp_nodelay(true);
        connection.eventloop.set_network_options(network);
        let thread = thread::Builder::new()
            .name("rumqttc".into())
            .spawn(move || {
                let mut since_connack = None;
                for event in connection.iter() {
                    let ev = match event {
                        Ok(Event::Incoming(Packet::ConnAck(_))) => {
                            since_connack = Some(CpuStopwatch::start());
                            Ev::ConnAck
                        }
                        Ok(Event::Incoming(Packet::SubAck(_))) => Ev::SubAck,
                        Ok(Event::Incoming(Packet::PubAck(_))) => Ev::PubAck,
                        Ok(Event::Incoming(Packet::Publish(_))) => Ev::Publish,
                        Ok(Event::Outgoing(Outgoing::PingReq)) => Ev::PingReq,
                        Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                        Ok(_) => continue,
                        Err(e) => Ev::Failed(e.to_string()),
                    };
                    let failed = matches!(ev, Ev::Failed(_));
                    let cpu = if track_cpu { thread_cpu() } else { None };
                    if tx.send((ev, cpu)).is_err() || failed {
                        break;
                    }
                }
                since_connack.and_then(|s: CpuStopwatch| s.elapsed())
            })
            .ctx("spawn the rumqttc connection thread")?;
        let mut this = Rumq {
            client,
            events: rx,
            thread,
        };
        this.expect(|e| matches!(e, Ev::ConnAck), "CONNACK")?;
        Ok(this)
    }

    /// Waits for the next forwarded event that `wanted` accepts (skipping
    /// pings); returns the connection thread's CPU time then, if tracked.
    pub fn expect(&mut self, wanted: impl Fn(&Ev) -> bool, what: &str) -> Res<Option<Duration>> {
        loop {
            let (ev, cpu) = self
                .events
                .recv_timeout(WAIT)
                .map_err(|e| format!("rumqttc: waiting for {what}: {e}"))?;
            if wanted(&ev) {
                return Ok(cpu);
            }
            match ev {
                Ev::PingReq => continue,
                Ev::Failed(e) => return Err(format!("rumqttc: {e} (waiting for {what})")),
                other => return Err(format!("rumqttc: {other:?} while waiting for {what}")),
            }
        }
    }

    /// Counts the PUBACKs forwarded so far, without waiting (skipping
    /// pings).
    pub fn pubacks_so_far(&mut self) -> Res<usize> {
        let mut acks = 0;
        while let Ok((ev, _)) = self.events.try_recv() {
            match ev {
                Ev::PubAck => acks += 1,
                Ev::PingReq => {}
                Ev::Failed(e) => return Err(format!("rumqttc: {e} (waiting for PUBACKs)")),
                other => return Err(format!("rumqttc: {other:?} while waiting for PUBACKs")),
            }
        }
        Ok(acks)
    }

    /// Subscribes at QoS 0 and waits for the SUBACK.
    pub fn subscribe(&mut self, topic: &str) -> Res<Option<Duration>> {
        self.client
            .subscribe(topic, QoS::AtMostOnce)
            .ctx("rumqttc: subscribe")?;
        self.expect(|e| matches!(e, Ev::SubAck), "SUBACK")
    }

    /// Disconnects and returns the connection thread's CPU time since CONNACK.
    pub fn finish(self) -> Res<Option<Duration>> {
        self.client.disconnect().ctx("rumqttc: disconnect")?;
        let cpu = self
            .thread
            .join()
            .map_err(|_| "the rumqttc thread panicked".to_string())?;
        Ok(cpu)
    }
}

/// A topic as rumqttc takes it.
fn topic_str(topic: &[u8]) -> Res<&str> {
    std::str::from_utf8(topic).ctx("topic")
}

/// QoS 0: `n` publishes; the publisher's CPU is the calling thread's while it
/// publishes plus the connection thread's from CONNACK to DISCONNECT.
pub fn publish_qos0(addr: SocketAddr, topic: &[u8], n: usize) -> Res<(Qos0Publish, Rumq)> {
    let topic = topic_str(topic)?;
    let rumq = Rumq::connect(addr, "rumqttc-q0", 60, false, channel())?;
    let cpu = CpuStopwatch::start();
    let start = Instant::now();
    for _ in 0..n {
        rumq.client
            .publish(topic, QoS::AtMostOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
    }
    let publisher_cpu = cpu.elapsed();
    Ok((
        Qos0Publish {
            start,
            publisher_cpu,
        },
        rumq,
    ))
}

/// QoS 1: `n` publishes one after the other, each waiting for its PUBACK.
pub fn qos1(addr: SocketAddr, topic: &[u8], warmup: usize, n: usize) -> Res<Duration> {
    let topic = topic_str(topic)?;
    let mut rumq = Rumq::connect(addr, "rumqttc-q1", 60, false, channel())?;
    let elapsed = time_after_warmup(warmup, n, || {
        rumq.client
            .publish(topic, QoS::AtLeastOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
        rumq.expect(|e| matches!(e, Ev::PubAck), "PUBACK")?;
        Ok(())
    })?;
    rumq.finish()?;
    Ok(elapsed)
}

/// QoS 1 with rumqttc's window (`MqttOptions::set_inflight(window)`): the
/// eventloop sends while fewer than `window` messages are unacknowledged,
/// `publish` returns once the request is queued (waiting while the request
/// channel is full). `warmup` messages (all acknowledged) first; returns
/// the time from the first of the `n` timed publishes to the last PUBACK
/// event.
pub fn qos1_window(
    addr: SocketAddr,
    topic: &[u8],
    window: usize,
    warmup: usize,
    n: usize,
) -> Res<Duration> {
    let topic = topic_str(topic)?;
    let mut options = MqttOptions::new(client_id("rumqttc-qw"), addr.ip().to_string(), addr.port());
    options.set_keep_alive(Duration::from_secs(60));
    options.set_inflight(u16::try_from(window).ctx("rumqttc: window")?);
    let mut rumq = Rumq::connect_with(options, false, channel())?;
    let stream_of = |rumq: &mut Rumq, count: usize| -> Res<()> {
        // The PUBACK events are taken as they come: the event channel must
        // not fill up while the requests do.
        let mut acked = 0;
        for _ in 0..count {
            rumq.client
                .publish(topic, QoS::AtLeastOnce, false, &PAYLOAD[..])
                .ctx("rumqttc: publish")?;
            acked += rumq.pubacks_so_far()?;
        }
        while acked < count {
            rumq.expect(|e| matches!(e, Ev::PubAck), "PUBACK")?;
            acked += 1;
        }
        Ok(())
    };
    stream_of(&mut rumq, warmup)?;
    let start = Instant::now();
    stream_of(&mut rumq, n)?;
    let elapsed = start.elapsed();
    rumq.finish()?;
    Ok(elapsed)
}

/// Round trip: publish QoS 0 to the own subscription and wait for the
/// incoming PUBLISH event.
pub fn round_trip(
    addr: SocketAddr,
    topic: &[u8],
    warmup: usize,
    samples: &mut Vec<Duration>,
    n: usize,
) -> Res<()> {
    let topic = topic_str(topic)?;
    let mut rumq = Rumq::connect(addr, "rumqttc-rtt", 60, false, channel())?;
    rumq.subscribe(topic)?;
    let one = |_| {
        rumq.client
            .publish(topic, QoS::AtMostOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
        rumq.expect(|e| matches!(e, Ev::Publish), "PUBLISH")?;
        Ok(())
    };
    time_each(warmup, n, samples, one, |()| Ok(()))?;
    rumq.finish()?;
    Ok(())
}

/// Heap: the same workload as the other clients (see `HEAP_OPS`).
pub fn heap(
    addr: SocketAddr,
    topic: &[u8],
    own_topic: &[u8],
    begin: &mut dyn FnMut(),
    end: &mut dyn FnMut(),
) -> Res<()> {
    let topic = topic_str(topic)?;
    let own_topic = topic_str(own_topic)?;
    let mut rumq = Rumq::connect(addr, "rumqttc-heap", 60, false, channel())?;
    rumq.subscribe(own_topic)?;
    begin();
    for _ in 0..HEAP_OPS {
        rumq.client
            .publish(topic, QoS::AtMostOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
    }
    for _ in 0..HEAP_OPS {
        rumq.client
            .publish(topic, QoS::AtLeastOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
        rumq.expect(|e| matches!(e, Ev::PubAck), "PUBACK")?;
    }
    for _ in 0..HEAP_OPS {
        rumq.client
            .publish(own_topic, QoS::AtMostOnce, false, &PAYLOAD[..])
            .ctx("rumqttc: publish")?;
        rumq.expect(|e| matches!(e, Ev::Publish), "PUBLISH")?;
    }
    end();
    rumq.finish()?;
    Ok(())
}

/// Memory: the size of `Client` and `Connection` and the heap they hold once
/// connected (counted around construction and connect); rumqttc borrows no
/// buffers.
pub fn memory(addr: SocketAddr) -> Res<(usize, usize, usize)> {
    let channel = channel();
    let before = heap_count::stats();
    let rumq = Rumq::connect(addr, "rumqttc-mem", 60, false, channel)?;
    let after = heap_count::stats();
    rumq.finish()?;
    let live = heap_count::live_bytes(before, after);
    let size = size_of::<Client>() + size_of::<rumqttc::Connection>();
    Ok((size, 0, live))
}

/// Idle: the connection thread blocked in `connection.iter()` (keepalive
/// `keepalive_s`) until a message arrives on `wake_topic`.
pub fn idle(
    addr: SocketAddr,
    wake_topic: &[u8],
    keepalive_s: u16,
    ready: impl FnOnce(),
) -> Res<IdleResult> {
    let wake_topic = topic_str(wake_topic)?;
    let mut rumq = Rumq::connect(addr, "rumqttc-idle", keepalive_s.into(), true, channel())?;
    let cpu_start = rumq.subscribe(wake_topic)?;
    let start = Instant::now();
    ready();
    let mut pings = 0;
    let cpu_end = loop {
        let (ev, cpu) = rumq
            .events
            .recv_timeout(IDLE_LIMIT)
            .map_err(|e| format!("rumqttc: idle: {e}"))?;
        match ev {
            Ev::Publish => break cpu,
            Ev::PingReq => pings += 1,
            Ev::Failed(e) => return Err(format!("rumqttc: idle: {e}")),
            _ => {}
        }
    };
    let result = IdleResult {
        wall: start.elapsed(),
        cpu: cpu_end.zip(cpu_start).map(|(b, a)| b.saturating_sub(a)),
        pings: Some(pings),
    };
    rumq.finish()?;
    Ok(result)
}
