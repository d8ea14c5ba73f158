//! `umqtt pub`: publish one message, or one per line of stdin, then
//! disconnect.
//!
//! `-l` at QoS 1 keeps up to `--max-inflight` messages in flight (the
//! reconnecting client's QoS 1 window) and every line it accepted in an
//! outbox until its PUBACK: in memory ([`RAM_OUTBOX`] bytes; when full,
//! reading stdin waits), or in the `--outbox` file. After a lost connection
//! the unacknowledged lines go again (DUP, same packet id), oldest first; at
//! the end of stdin umqtt waits (up to `-W`) until the broker has them all,
//! and exits 1 saying how many it has not, rather than pretending they
//! arrived.

use std::io::{self, BufRead, Read};
use std::sync::mpsc::{self, RecvTimeoutError, TryRecvError};
use std::thread;
use std::time::{Duration, Instant};

use umqtt_robust::RobustError;
use umqtt_robust::outbox::{
    FileOutbox, FileOutboxOptions, FsyncPolicy, Outbox, OutboxOptions, WhenFull,
};
use umqtt_simple::QoS;

use crate::args::{PubArgs, Source};
use crate::interrupt;
use crate::session::{self, Buffers, Mqtt};

/// The most a `--outbox` file holds (messages accepted and not yet
/// acknowledged).
const OUTBOX_CAPACITY: usize = 256 * 1024 * 1024;

/// The memory `-l -q 1` keeps accepted lines in until their PUBACK (without
/// `--outbox`); when it is full, reading stdin waits for PUBACKs.
const RAM_OUTBOX: usize = 16 * 1024 * 1024;

/// Lines read ahead of the publisher.
const LINE_QUEUE: usize = 1024;

/// How long `-l` waits for a line before it lets the client look after the
/// connection (keepalive, noticing a lost link).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// With lines not yet acknowledged and none to read, how long `-l` waits for
/// a packet (a PUBACK moves the window on) before it looks at stdin again.
const ACK_POLL_MS: u32 = 2;

/// Runs `umqtt pub`; `Err` is the one-line reason for exit status 1.
pub fn run(args: &PubArgs) -> Result<(), String> {
    // Read what can fail locally before touching the network.
    let message = match &args.source {
        Source::Message(m) => Some(m.clone().into_bytes()),
        Source::Null => Some(Vec::new()),
        Source::Stdin => {
            let mut all = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut all)
                .map_err(|e| format!("reading stdin: {e}"))?;
            Some(all)
        }
        Source::File(path) => {
            Some(std::fs::read(path).map_err(|e| format!("reading {}: {e}", path.display()))?)
        }
        Source::Lines => None,
    };

    // -W counts from the start: a single message must be out by then.
    let started = Instant::now();
    let limit = Duration::from_secs(u64::from(args.timeout_s));
    let connection = &args.connection;
    let addr = session::resolve(&connection.host, connection.port)?;
    let client_id = connection
        .client_id
        .clone()
        .unwrap_or_else(|| session::default_client_id("pub"));
    crate::logger::name_client(&client_id);
    let mut outbox = args.outbox.as_deref().map(open_outbox).transpose()?;
    let mut buffers = Buffers::new();
    // The QoS 1 window of `-l` (or of the outbox): its slots, and storage
    // for its messages until their PUBACK.
    let windowed =
        args.qos == QoS::AtLeastOnce && (args.source == Source::Lines || outbox.is_some());
    let mut slots = vec![
        0u16;
        if windowed {
            args.max_inflight.into()
        } else {
            0
        }
    ];
    let mut ram = if windowed && outbox.is_none() {
        vec![0u8; RAM_OUTBOX]
    } else {
        Vec::new()
    };
    let mut on_event = session::report_event;
    let mut options = session::options(connection, &client_id);
    if args.source == Source::Lines && args.qos == QoS::AtMostOnce {
        // A stream of lines: many messages per send. Flushed whenever stdin
        // has no line ready, so interactive lines still go out at once.
        options = options.batch_qos0(true);
    }
    let mut client = session::client(&mut buffers, options);
    client.set_event_callback(&mut on_event);
    if let Some(outbox) = outbox.as_mut() {
        let options = OutboxOptions {
            queue_qos0: true,
            when_full: WhenFull::Wait,
        };
        client.set_outbox(outbox, options);
        client.set_window(&mut slots);
    } else if windowed {
        client.set_window_in_ram(&mut slots, &mut ram);
    }
    session::limit_calls(&mut client, Some(started + limit));
    // What an earlier run left in the outbox goes out first, on connect.
    session::connect(&mut client, connection, addr)?;

    let sent = match message {
        Some(message) => publish_repeated(&mut client, args, &message, started + limit),
        None => publish_lines(&mut client, args, limit),
    };
    let sent = sent.and_then(|()| drain_outbox(&mut client, args));
    // Say goodbye either way, so the broker discards the will.
    session::limit_calls(&mut client, None);
    let closed = client.disconnect();
    sent?;
    closed
        .or_else(ignore_offline)
        .map_err(|e| format!("disconnect: {}", session::describe(&e)))
}

/// Publishes one message, giving up at `until`.
fn publish(
    client: &mut Mqtt<'_>,
    args: &PubArgs,
    payload: &[u8],
    until: Instant,
) -> Result<(), String> {
    session::limit_calls(client, Some(until));
    if client.outbox().is_some() {
        let seq = client
            .queue(args.topic.as_bytes(), payload, args.retain, args.qos)
            .map_err(|e| format!("publish: {}", session::describe(&e)))?;
        log::info!("queued message {seq}");
        return Ok(());
    }
    client
        .publish(args.topic.as_bytes(), payload, args.retain, args.qos)
        .map_err(|e| match e {
            RobustError::TimedOut { .. } | RobustError::Offline { .. } => format!(
                "publish: gave up after {} s: {}",
                args.timeout_s,
                session::describe(&e)
            ),
            e => format!("publish: {}", session::describe(&e)),
        })
}

/// Publishes one message `--repeat` times, `--repeat-delay` apart; the first
/// by `until`, each later one within `-W` of its start.
fn publish_repeated(
    client: &mut Mqtt<'_>,
    args: &PubArgs,
    payload: &[u8],
    until: Instant,
) -> Result<(), String> {
    publish(client, args, payload, until)?;
    let limit = Duration::from_secs(u64::from(args.timeout_s));
    for _ in 1..args.repeat {
        pause(client, args.repeat_delay)?;
        publish(client, args, payload, Instant::now() + limit)?;
    }
    Ok(())
}

/// Waits `delay` while the client looks after the connection (keepalive, a
/// reconnect); an outage is no failure here, the next publish rides it out.
fn pause(client: &mut Mqtt<'_>, delay: Duration) -> Result<(), String> {
    let end = Instant::now() + delay;
    loop {
        let left = end.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX).max(1);
        match client.wait_msg_for(ms) {
            Ok(_) | Err(RobustError::Offline { .. }) => {}
            Err(e) => return Err(session::describe(&e)),
        }
    }
}

/// `-l`: a thread reads stdin, so the connection is looked after while no
/// line comes (an interactive terminal, a slow producer). At QoS 1 the
/// lines wait in the outbox until their PUBACK ([`drain_outbox`] at the
/// end).
fn publish_lines(client: &mut Mqtt<'_>, args: &PubArgs, limit: Duration) -> Result<(), String> {
    let (lines_tx, lines) = mpsc::sync_channel::<io::Result<Vec<u8>>>(LINE_QUEUE);
    thread::spawn(move || {
        let mut stdin = io::stdin().lock();
        loop {
            let mut line = Vec::new();
            let read = match stdin.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => Ok(trim_line(line)),
                Err(e) => Err(e),
            };
            let failed = read.is_err();
            if matches!(&read, Ok(line) if line.is_empty()) {
                continue;
            }
            if lines_tx.send(read).is_err() || failed {
                return;
            }
        }
    });
    loop {
        if interrupt::requested() {
            return flush_batch(client, args);
        }
        let next = match lines.try_recv() {
            Ok(line) => Ok(line),
            Err(TryRecvError::Empty) if awaiting_acks(client) => {
                // Lines in flight or behind a full window: handle a PUBACK
                // as soon as it comes, then look at stdin again.
                match client.wait_msg_for(ACK_POLL_MS) {
                    Ok(_) | Err(RobustError::Offline { .. }) => continue,
                    Err(e) => return Err(session::describe(&e)),
                }
            }
            Err(TryRecvError::Empty) => {
                // Nothing ready: send the batch before waiting.
                flush_batch(client, args)?;
                lines.recv_timeout(IDLE_POLL)
            }
            Err(TryRecvError::Disconnected) => Err(RecvTimeoutError::Disconnected),
        };
        match next {
            Ok(Ok(line)) => publish(client, args, &line, Instant::now() + limit)?,
            Ok(Err(e)) => return Err(format!("reading stdin: {e}")),
            Err(RecvTimeoutError::Timeout) => {
                client.check_msg().map_err(|e| session::describe(&e))?;
            }
            Err(RecvTimeoutError::Disconnected) => return flush_batch(client, args),
        }
    }
}

/// Whether accepted messages wait for their PUBACK (or for room in the
/// window) while connected: then the client, not stdin, has news next.
fn awaiting_acks(client: &Mqtt<'_>) -> bool {
    client.is_connected() && client.outbox().is_some_and(|o| !o.is_empty())
}

/// Opens (or creates) the `--outbox` file; says so when an earlier run left
/// messages in it, or a record torn by a crash was dropped.
fn open_outbox(path: &std::path::Path) -> Result<FileOutbox, String> {
    let options = FileOutboxOptions {
        capacity_bytes: OUTBOX_CAPACITY,
        fsync: FsyncPolicy::EveryRecord,
    };
    let outbox =
        FileOutbox::open(path, options).map_err(|e| format!("--outbox {}: {e}", path.display()))?;
    if let Some(torn) = outbox.open_report().torn {
        eprintln!(
            "--outbox {}: dropped a record cut short by a crash ({torn:?})",
            path.display()
        );
    }
    if !outbox.is_empty() {
        log::info!(
            "--outbox {}: {} message(s) left by an earlier run go first",
            path.display(),
            outbox.len()
        );
    }
    Ok(outbox)
}

/// With an outbox (`-l -q 1`, `--outbox`): waits (up to `-W`) until the
/// broker has every message; what is left stays in an `--outbox` file for
/// the next run, and is reported either way.
fn drain_outbox(client: &mut Mqtt<'_>, args: &PubArgs) -> Result<(), String> {
    if client.outbox().is_none() {
        return Ok(());
    }
    let limit = Duration::from_secs(u64::from(args.timeout_s));
    session::limit_calls(client, Some(Instant::now() + limit));
    let drained = client.flush();
    let left = client.outbox().map_or(0, |o| o.len());
    if left == 0 {
        return Ok(());
    }
    let why = match drained {
        Err(e) => format!(" ({})", session::describe(&e)),
        Ok(()) => String::new(),
    };
    if args.outbox.is_none() {
        return Err(format!(
            "publish: gave up after {} s: {left} message(s) not acknowledged by the broker \
             (they may not have arrived){why}",
            args.timeout_s
        ));
    }
    Err(format!(
        "publish: {left} message(s) not yet acknowledged stay in the outbox{why}; \
         the next `umqtt pub --outbox` sends them"
    ))
}

/// Sends the batched QoS 0 lines, if any (`-l -q 0`). At QoS 1 nothing is
/// batched: the lines are in the outbox, sent as the window allows, and
/// [`drain_outbox`] waits for their PUBACKs at the end.
fn flush_batch(client: &mut Mqtt<'_>, args: &PubArgs) -> Result<(), String> {
    if args.qos == QoS::AtLeastOnce {
        return Ok(());
    }
    client
        .flush()
        .map_err(|e| format!("publish: {}", session::describe(&e)))
}

/// A line without its `\n` (or `\r\n`).
fn trim_line(mut line: Vec<u8>) -> Vec<u8> {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    line
}

/// `disconnect` while the connection is down has nothing to say goodbye to.
fn ignore_offline(e: session::MqttError) -> Result<(), session::MqttError> {
    match e {
        RobustError::Client(umqtt_simple::Error::NotConnected) => Ok(()),
        e => Err(e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_lose_their_line_ending_only() {
        assert_eq!(trim_line(b"a b\n".to_vec()), b"a b");
        assert_eq!(trim_line(b"a\r\n".to_vec()), b"a");
        assert_eq!(trim_line(b"last".to_vec()), b"last");
        assert_eq!(trim_line(b" x \r\r\n".to_vec()), b" x \r");
        assert_eq!(trim_line(b"\n".to_vec()), b"");
    }
}
