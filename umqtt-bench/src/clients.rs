//! The three clients measured and one call per test that hands the test to
//! the client's own module ([`raw`], [`umqtt`], [`rumq`]).

use std::net::SocketAddr;
use std::time::Duration;

use crate::common::{IdleResult, Res, topic};
use crate::{heap_count, raw, rumq, umqtt};

/// A client the bench measures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Who {
    /// The raw-socket limit.
    Raw,
    /// umqtt-simple over the std transport.
    Umqtt,
    /// rumqttc's synchronous client.
    Rumqttc,
}

/// Every client, in the order of the table's columns.
pub const CLIENTS: [Who; 3] = [Who::Raw, Who::Umqtt, Who::Rumqttc];

impl Who {
    /// The name on the command line, in progress lines and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            Who::Raw => "raw",
            Who::Umqtt => "umqtt-simple",
            Who::Rumqttc => "rumqttc",
        }
    }

    /// The heading of the client's column in the table.
    pub fn column(self) -> &'static str {
        match self {
            Who::Raw => "raw limit",
            Who::Umqtt => "umqtt-simple (std)",
            Who::Rumqttc => "rumqttc (sync)",
        }
    }
}

/// How a client publishes in the QoS 0 test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Qos0Mode {
    /// Its usual way: the raw limit writes about 64 KiB per write, the
    /// clients send each message as it is published.
    Usual,
    /// The raw limit with one packet per write.
    OneWritePerMessage,
    /// umqtt-simple with `Options::batch_qos0` and a transmit buffer of
    /// `tx` bytes.
    Batched {
        /// Bytes of the transmit buffer.
        tx: usize,
    },
}

impl Qos0Mode {
    /// How progress lines name the pass.
    pub fn describe(self) -> String {
        match self {
            Qos0Mode::Usual => "QoS 0".to_string(),
            Qos0Mode::OneWritePerMessage => "QoS 0 one write per message".into(),
            Qos0Mode::Batched { tx } => format!("QoS 0 batched, {tx}-byte tx"),
        }
    }
}

/// One QoS 0 pass of a client: the mode and the ids of the two metrics
/// (msg/s, publisher CPU) its figures go to.
pub type Qos0Pass = (Qos0Mode, &'static str, &'static str);

/// Every client's usual QoS 0 pass.
pub const QOS0_USUAL: [Qos0Pass; 1] = [(Qos0Mode::Usual, "qos0_throughput", "qos0_publisher_cpu")];

/// The QoS 0 passes besides each client's usual one.
pub fn qos0_extra_passes(who: Who) -> &'static [Qos0Pass] {
    match who {
        Who::Raw => &[(
            Qos0Mode::OneWritePerMessage,
            "qos0_throughput_unbatched",
            "qos0_publisher_cpu_unbatched",
        )],
        Who::Umqtt => &[
            (
                Qos0Mode::Batched { tx: 1024 },
                "qos0_throughput_batched_1k",
                "qos0_publisher_cpu_batched_1k",
            ),
            (
                Qos0Mode::Batched { tx: 16 * 1024 },
                "qos0_throughput_batched_16k",
                "qos0_publisher_cpu_batched_16k",
            ),
        ],
        Who::Rumqttc => &[],
    }
}

/// The QoS 0 test: `who` publishes `n` messages, a raw subscriber counts them.
/// Returns msg/s end to end and the publisher's CPU seconds per 100 000
/// messages.
pub fn qos0_once(
    who: Who,
    addr: SocketAddr,
    n: usize,
    run: usize,
    mode: Qos0Mode,
) -> Res<(f64, Option<f64>)> {
    let topic = topic("q0", run);
    let counter = raw::Counter::start(addr, &topic, n, Duration::from_secs(5))?;
    let (publish, rumq) = match who {
        Who::Raw => {
            let batched = mode != Qos0Mode::OneWritePerMessage;
            (raw::publish_qos0(addr, topic.as_bytes(), n, batched)?, None)
        }
        Who::Umqtt => {
            let batch_tx = match mode {
                Qos0Mode::Batched { tx } => Some(tx),
                _ => None,
            };
            let publish = umqtt::publish_qos0(addr, topic.as_bytes(), n, batch_tx)?;
            (publish, None)
        }
        Who::Rumqttc => {
            let (publish, rumq) = rumq::publish_qos0(addr, topic.as_bytes(), n)?;
            (publish, Some(rumq))
        }
    };
    let (last, received) = counter.join()?;
    let mut cpu = publish.publisher_cpu;
    if let Some(rumq) = rumq {
        // The connection thread does the writing: its CPU counts too.
        let connection_cpu = rumq.finish()?;
        cpu = cpu.zip(connection_cpu).map(|(a, b)| a + b);
    }
    if received < n {
        return Err(format!(
            "the subscriber received {received} of {n} messages (the broker dropped some)"
        ));
    }
    let elapsed = last.saturating_duration_since(publish.start).as_secs_f64();
    // Per 100 000 messages, whatever the count.
    let cpu_per_100k = cpu.map(|c| c.as_secs_f64() * 100_000.0 / n as f64);
    Ok((n as f64 / elapsed, cpu_per_100k))
}

/// Untimed operations before `n` timed ones.
pub fn warmup(n: usize) -> usize {
    (n / 20).max(10)
}

/// `n` QoS 1 publishes one after the other (after `n / 20` untimed ones);
/// returns the time they took.
pub fn qos1_once(who: Who, addr: SocketAddr, n: usize, run: usize) -> Res<Duration> {
    let topic = topic("q1", run);
    let warmup = warmup(n);
    match who {
        Who::Raw => raw::qos1(addr, topic.as_bytes(), warmup, n),
        Who::Umqtt => umqtt::qos1(addr, topic.as_bytes(), warmup, n),
        Who::Rumqttc => rumq::qos1(addr, topic.as_bytes(), warmup, n),
    }
}

/// `n` QoS 1 publishes with a window of `window` messages in flight (after
/// `n / 20` untimed ones); returns the time from the first publish to the
/// last PUBACK.
pub fn qos1_window_once(
    who: Who,
    addr: SocketAddr,
    window: usize,
    n: usize,
    run: usize,
) -> Res<Duration> {
    let topic = topic("qw", run);
    let (topic, warmup) = (topic.as_bytes(), warmup(n));
    match who {
        Who::Raw => raw::qos1_window(addr, topic, window, warmup, n),
        Who::Umqtt => umqtt::qos1_window(addr, topic, window, warmup, n),
        Who::Rumqttc => rumq::qos1_window(addr, topic, window, warmup, n),
    }
}

/// `n` round trips (after `n / 20` untimed ones); `samples` gets their times.
pub fn rtt_once(
    who: Who,
    addr: SocketAddr,
    n: usize,
    run: usize,
    samples: &mut Vec<Duration>,
) -> Res<()> {
    let topic = topic("rt", run);
    let warmup = warmup(n);
    samples.reserve(n);
    match who {
        Who::Raw => raw::round_trip(addr, topic.as_bytes(), warmup, samples, n),
        Who::Umqtt => umqtt::round_trip(addr, topic.as_bytes(), warmup, samples, n),
        Who::Rumqttc => rumq::round_trip(addr, topic.as_bytes(), warmup, samples, n),
    }
}

/// Allocation counts of one client over the heap workload: 1 000 QoS 0
/// publishes, 1 000 QoS 1 publishes (each with its PUBACK), 1 000 round trips
/// (umqtt-simple also 1 000 `check_msg` calls), after connect and subscribe.
/// Returns allocations (and reallocations) and bytes allocated.
pub fn heap_once(who: Who, addr: SocketAddr) -> Res<(usize, usize)> {
    let (topic, own) = (topic("hp", 0), topic("hq", who as usize));
    let mut before = None;
    let mut after = None;
    let mut begin = || before = Some(heap_count::stats());
    let mut end = || after = Some(heap_count::stats());
    let (topic, own) = (topic.as_bytes(), own.as_bytes());
    match who {
        Who::Raw => raw::heap(addr, topic, own, &mut begin, &mut end)?,
        Who::Umqtt => umqtt::heap(addr, topic, own, &mut begin, &mut end)?,
        Who::Rumqttc => rumq::heap(addr, topic, own, &mut begin, &mut end)?,
    }
    let (Some(before), Some(after)) = (before, after) else {
        return Err("heap window not reached".into());
    };
    let change = after - before;
    Ok((
        change.allocations + change.reallocations,
        change.bytes_allocated,
    ))
}

/// Bytes a connected client holds: its own size, the buffers it borrows, and
/// the heap it holds once connected (measured by the counting allocator
/// around construction and connect).
pub fn memory_once(who: Who, addr: SocketAddr) -> Res<(usize, usize, usize)> {
    match who {
        Who::Raw => Ok((size_of::<std::net::TcpStream>(), 0, 0)),
        Who::Umqtt => umqtt::memory(addr),
        Who::Rumqttc => rumq::memory(addr),
    }
}

/// The idle test of one client: subscribes to its wake-up topic, calls
/// `ready`, and waits (keepalive `keepalive_s`) for the wake-up message.
pub fn idle_once(
    who: Who,
    addr: SocketAddr,
    keepalive_s: u16,
    ready: impl FnOnce(),
) -> Res<IdleResult> {
    let wake = idle_topic(who);
    let wake = wake.as_bytes();
    match who {
        Who::Raw => raw::idle(addr, wake, keepalive_s, ready),
        Who::Umqtt => umqtt::idle(addr, wake, keepalive_s, ready),
        Who::Rumqttc => rumq::idle(addr, wake, keepalive_s, ready),
    }
}

/// The topic `who` waits for its wake-up message on in the idle test.
pub fn idle_topic(who: Who) -> String {
    topic("id", who as usize)
}
