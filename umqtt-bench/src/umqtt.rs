//! umqtt-simple over the std transport (`StdTcpStack`, `StdClock`, `StdWait`),
//! used the way its README shows: borrowed buffers, a borrowed callback.

use std::cell::Cell;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use umqtt_simple::{Callback, Message, Options, QoS};
use umqtt_tests::{StdClient, std_client};

use crate::common::{
    Ctx, HEAP_OPS, IDLE_LIMIT, IdleResult, PAYLOAD, Qos0Publish, Res, client_id, time_after_warmup,
    time_each,
};
use crate::cpu::CpuStopwatch;
use crate::heap_count;

/// The buffers of the "typical configuration" (the README's example): one
/// outgoing and one incoming packet of up to 1 KiB each.
pub const TX_BUFFER: usize = 1024;
/// See [`TX_BUFFER`].
pub const RX_BUFFER: usize = 1024;

/// How long one wait for a message may take before the test fails.
const WAIT_MS: u32 = 10_000;

fn connect(client: &mut StdClient<'_>, addr: SocketAddr) -> Res<()> {
    client.connect(addr).ctx("umqtt-simple: connect")?;
    Ok(())
}

/// A client over `tx` and `rx` whose callback is `on_message`, connected and
/// subscribed at QoS 0 to `topic`.
fn subscribed<'a>(
    tx: &'a mut [u8],
    rx: &'a mut [u8],
    options: Options<'a>,
    on_message: Callback<'a>,
    addr: SocketAddr,
    topic: &[u8],
) -> Res<StdClient<'a>> {
    let mut client = std_client(tx, rx, options);
    client.set_callback(on_message);
    connect(&mut client, addr)?;
    client
        .subscribe(topic, QoS::AtMostOnce)
        .ctx("umqtt-simple: subscribe")?;
    Ok(client)
}

/// QoS 0: `n` publishes, one `publish` call each; with `batch_tx`, in the
/// batched mode with a transmit buffer of that many bytes, flushed at the end.
pub fn publish_qos0(
    addr: SocketAddr,
    topic: &[u8],
    n: usize,
    batch_tx: Option<usize>,
) -> Res<Qos0Publish> {
    let mut tx = vec![0u8; batch_tx.unwrap_or(TX_BUFFER)];
    let mut rx = [0u8; RX_BUFFER];
    let id = client_id("umqtt-q0");
    let options = Options::new(&id).batch_qos0(batch_tx.is_some());
    let mut client = std_client(&mut tx, &mut rx, options);
    connect(&mut client, addr)?;
    let cpu = CpuStopwatch::start();
    let start = Instant::now();
    for _ in 0..n {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtMostOnce)
            .ctx("umqtt-simple: publish")?;
    }
    client.flush().ctx("umqtt-simple: flush")?;
    let publisher_cpu = cpu.elapsed();
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(Qos0Publish {
        start,
        publisher_cpu,
    })
}

/// QoS 1: `n` publishes one after the other, each returning after its PUBACK.
pub fn qos1(addr: SocketAddr, topic: &[u8], warmup: usize, n: usize) -> Res<Duration> {
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let id = client_id("umqtt-q1");
    let mut client = std_client(&mut tx, &mut rx, Options::new(&id));
    connect(&mut client, addr)?;
    let elapsed = time_after_warmup(warmup, n, || {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtLeastOnce)
            .ctx("umqtt-simple: publish")
    })?;
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(elapsed)
}

/// QoS 1 with a window of `window` slots: `publish` returns once the
/// message is sent, waiting only while the window is full; `flush_for` waits
/// for the last PUBACKs. `warmup` messages (all acknowledged) first; returns
/// the time from the first of the `n` timed publishes to the last PUBACK.
pub fn qos1_window(
    addr: SocketAddr,
    topic: &[u8],
    window: usize,
    warmup: usize,
    n: usize,
) -> Res<Duration> {
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let mut slots = vec![0u16; window];
    let id = client_id("umqtt-qw");
    let mut client = std_client(&mut tx, &mut rx, Options::new(&id));
    client.set_window(&mut slots);
    connect(&mut client, addr)?;
    let stream_of = |client: &mut StdClient<'_>, count: usize| -> Res<()> {
        for _ in 0..count {
            client
                .publish(topic, &PAYLOAD, false, QoS::AtLeastOnce)
                .ctx("umqtt-simple: publish")?;
        }
        match client.flush_for(WAIT_MS).ctx("umqtt-simple: flush_for")? {
            true => Ok(()),
            false => Err("umqtt-simple: PUBACKs missing after 10 s".into()),
        }
    };
    stream_of(&mut client, warmup)?;
    let start = Instant::now();
    stream_of(&mut client, n)?;
    let elapsed = start.elapsed();
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(elapsed)
}

/// Waits until the callback has counted `target` messages.
fn wait_for(client: &mut StdClient<'_>, received: &Cell<usize>, target: usize) -> Res<()> {
    while received.get() < target {
        if !client.wait_msg_for(WAIT_MS).ctx("umqtt-simple: wait_msg")? {
            return Err("umqtt-simple: no message within 10 s".into());
        }
    }
    Ok(())
}

/// Round trip: publish QoS 0 to the own subscription, `wait_msg` until the
/// callback has it.
pub fn round_trip(
    addr: SocketAddr,
    topic: &[u8],
    warmup: usize,
    samples: &mut Vec<Duration>,
    n: usize,
) -> Res<()> {
    let received = Cell::new(0usize);
    let mut on_message = |_: Message<'_>| received.set(received.get() + 1);
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let id = client_id("umqtt-rtt");
    let options = Options::new(&id);
    let mut client = subscribed(&mut tx, &mut rx, options, &mut on_message, addr, topic)?;
    let one = |i| {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtMostOnce)
            .ctx("umqtt-simple: publish")?;
        wait_for(&mut client, &received, i + 1)
    };
    time_each(warmup, n, samples, one, |()| Ok(()))?;
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(())
}

/// Heap: connects and subscribes, then runs [`HEAP_OPS`] operations of each kind between
/// `begin` and `end` (which read the allocation counters).
pub fn heap(
    addr: SocketAddr,
    topic: &[u8],
    own_topic: &[u8],
    begin: &mut dyn FnMut(),
    end: &mut dyn FnMut(),
) -> Res<()> {
    let received = Cell::new(0usize);
    let mut on_message = |_: Message<'_>| received.set(received.get() + 1);
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let id = client_id("umqtt-heap");
    let options = Options::new(&id);
    let mut client = subscribed(&mut tx, &mut rx, options, &mut on_message, addr, own_topic)?;
    begin();
    for _ in 0..HEAP_OPS {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtMostOnce)
            .ctx("umqtt-simple: publish")?;
    }
    for _ in 0..HEAP_OPS {
        client
            .publish(topic, &PAYLOAD, false, QoS::AtLeastOnce)
            .ctx("umqtt-simple: publish")?;
    }
    for i in 0..HEAP_OPS {
        client
            .publish(own_topic, &PAYLOAD, false, QoS::AtMostOnce)
            .ctx("umqtt-simple: publish")?;
        wait_for(&mut client, &received, i + 1)?;
    }
    for _ in 0..HEAP_OPS {
        client.check_msg().ctx("umqtt-simple: check_msg")?;
    }
    end();
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(())
}

/// Memory: the client's size, the buffers it borrows and the heap it holds
/// once connected (counted around construction and connect).
pub fn memory(addr: SocketAddr) -> Res<(usize, usize, usize)> {
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let id = client_id("umqtt-mem");
    let before = heap_count::stats();
    let mut client = std_client(&mut tx, &mut rx, Options::new(&id));
    client.connect(addr).ctx("umqtt-simple: connect")?;
    let after = heap_count::stats();
    let size = size_of_val(&client);
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    let live = heap_count::live_bytes(before, after);
    Ok((size, TX_BUFFER + RX_BUFFER, live))
}

/// Idle: blocked in `wait_msg` (keepalive `keepalive_s`) until a message
/// arrives on `wake_topic`.
pub fn idle(
    addr: SocketAddr,
    wake_topic: &[u8],
    keepalive_s: u16,
    ready: impl FnOnce(),
) -> Res<IdleResult> {
    let received = Cell::new(0usize);
    let mut on_message = |_: Message<'_>| received.set(received.get() + 1);
    let (mut tx, mut rx) = ([0u8; TX_BUFFER], [0u8; RX_BUFFER]);
    let id = client_id("umqtt-idle");
    let options = Options::new(&id).keepalive(keepalive_s);
    let mut client = subscribed(&mut tx, &mut rx, options, &mut on_message, addr, wake_topic)?;
    ready();
    let cpu = CpuStopwatch::start();
    let start = Instant::now();
    // wait_msg returns after each packet it handled: PINGRESPs, then the
    // wake-up message.
    let mut handled = 0;
    while received.get() == 0 {
        client.wait_msg().ctx("umqtt-simple: wait_msg")?;
        handled += 1;
        if start.elapsed() > IDLE_LIMIT {
            return Err("umqtt-simple: the wake-up message never came".into());
        }
    }
    let result = IdleResult {
        wall: start.elapsed(),
        cpu: cpu.elapsed(),
        pings: Some(handled - 1),
    };
    client.disconnect().ctx("umqtt-simple: disconnect")?;
    Ok(result)
}
