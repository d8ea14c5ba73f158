//! `umqtt sub`: subscribe and print each message on its own line, riding out
//! broker restarts, until `-C` messages or `-W` seconds.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io::{self, BufWriter, Write};
use std::time::{Duration, Instant};

use umqtt_robust::RobustError;
use umqtt_simple::{Error, Message, QoS};

use crate::args::SubArgs;
use crate::session::{self, Buffers, Mqtt};
use crate::{interrupt, topic_filter};

/// The longest single wait for a message; the loop goes round again after it
/// (a broker outage is waited out call by call, however long it lasts), and
/// sees a Ctrl-C within it.
const WAIT_SLICE: Duration = Duration::from_millis(250);

/// What the message callback shares with the loop.
#[derive(Default)]
struct Shared {
    /// Messages printed so far (for `-C`).
    printed: Cell<u64>,
    /// The first failure to write to stdout.
    output_error: RefCell<Option<io::Error>>,
    /// `--remove-retained`: topics of retained messages not cleared yet.
    to_clear: RefCell<VecDeque<Vec<u8>>>,
}

/// Runs `umqtt sub`; `Err` is the one-line reason for exit status 1.
pub fn run(args: &SubArgs) -> Result<(), String> {
    let started = Instant::now();
    let until = args
        .timeout_s
        .map(|s| started + Duration::from_secs(u64::from(s)));
    let connection = &args.connection;
    let addr = session::resolve(&connection.host, connection.port)?;
    let client_id = connection
        .client_id
        .clone()
        .unwrap_or_else(|| session::default_client_id("sub"));
    crate::logger::name_client(&client_id);

    let shared = Shared::default();
    // One write per message, whatever the payload holds.
    let mut stdout = BufWriter::with_capacity(64 * 1024, io::stdout().lock());
    let mut on_message = |message: Message<'_>| {
        let done = args.count.is_some_and(|n| shared.printed.get() >= n);
        if done || shared.output_error.borrow().is_some() {
            // Not taken, so not acknowledged: the broker keeps it for the
            // next session (-c), and -C N acknowledges exactly N.
            message.decline();
            return;
        }
        if hidden(&message, args) {
            // Taken (acknowledged) but not printed, nor counted by -C; not
            // cleared either (-R, -T), as in mosquitto_sub 2.0.
            return;
        }
        if args.remove_retained && message.retain {
            // Cleared by the loop: the client is busy delivering this one.
            let topic = message.topic.to_vec();
            shared.to_clear.borrow_mut().push_back(topic);
        }
        match print(&mut stdout, &message, args) {
            Ok(()) => shared.printed.set(shared.printed.get() + 1),
            Err(e) => *shared.output_error.borrow_mut() = Some(e),
        }
    };
    let mut on_event = session::report_event;
    let mut buffers = Buffers::new();
    let mut client = session::client(&mut buffers, session::options(connection, &client_id));
    client.set_callback(&mut on_message);
    client.set_event_callback(&mut on_event);
    // -W counts from the start: connecting and subscribing spend it too.
    session::limit_calls(&mut client, until);
    session::connect(&mut client, connection, addr)?;

    let result = subscribe_all(&mut client, args, until)
        .and_then(|()| unsubscribe_all(&mut client, args, until))
        .and_then(|()| clear_retained(&mut client, until, &shared))
        .and_then(|()| {
            // -U alone is done once unsubscribed, as in mosquitto_sub.
            if args.exit_on_subscribed || args.topics.is_empty() {
                return Ok(());
            }
            receive(&mut client, args, until, &shared)
        });
    // Say goodbye, so the broker discards the will; offline there is no one
    // to say it to.
    let _ = client.disconnect();
    result
}

/// Subscribes to every `-t` filter; a refusal is a warning, unless every
/// one is refused.
fn subscribe_all(
    client: &mut Mqtt<'_>,
    args: &SubArgs,
    until: Option<Instant>,
) -> Result<(), String> {
    let mut refused = 0;
    for topic in &args.topics {
        session::limit_calls(client, until);
        match client.subscribe(topic.as_bytes(), args.qos) {
            Ok(granted) => log::info!("subscribed to `{topic}` (granted QoS {})", granted as u8),
            Err(RobustError::Client(Error::SubscribeRefused { .. })) => {
                eprintln!("warning: the broker refused the subscription to `{topic}`");
                refused += 1;
            }
            Err(e) => return Err(format!("subscribe to `{topic}`: {}", session::describe(&e))),
        }
    }
    if refused > 0 && refused == args.topics.len() {
        return Err("the broker refused every subscription".into());
    }
    Ok(())
}

/// Unsubscribes from every `-U` filter (after subscribing, as mosquitto_sub
/// does).
fn unsubscribe_all(
    client: &mut Mqtt<'_>,
    args: &SubArgs,
    until: Option<Instant>,
) -> Result<(), String> {
    for filter in &args.unsubscribe {
        session::limit_calls(client, until);
        client
            .unsubscribe(filter.as_bytes())
            .map_err(|e| format!("unsubscribe from `{filter}`: {}", session::describe(&e)))?;
        log::info!("unsubscribed from `{filter}`");
    }
    Ok(())
}

/// Waits for messages until `-C` of them are printed, `-W` has passed or
/// stdout fails.
fn receive(
    client: &mut Mqtt<'_>,
    args: &SubArgs,
    until: Option<Instant>,
    shared: &Shared,
) -> Result<(), String> {
    loop {
        clear_retained(client, until, shared)?;
        if args.count.is_some_and(|n| shared.printed.get() >= n) || interrupt::requested() {
            return Ok(());
        }
        if let Some(e) = shared.output_error.borrow_mut().take() {
            // `umqtt sub | head -1`: the reader is gone, which is no failure.
            return if e.kind() == io::ErrorKind::BrokenPipe {
                Ok(())
            } else {
                Err(format!("writing to stdout: {e}"))
            };
        }
        let slice = match until {
            Some(until) => match until.checked_duration_since(Instant::now()) {
                Some(left) if !left.is_zero() => left.min(WAIT_SLICE),
                _ => return Ok(()),
            },
            None => WAIT_SLICE,
        };
        let ms = u32::try_from(slice.as_millis()).unwrap_or(u32::MAX).max(1);
        match client.wait_msg_for(ms) {
            Ok(_) => {}
            // Still offline: keep waiting, the client keeps trying.
            Err(RobustError::Offline { .. }) => {}
            Err(RobustError::Client(e @ Error::MessageTooLarge { .. })) => {
                eprintln!("warning: {e}");
            }
            Err(e) => return Err(session::describe(&e)),
        }
    }
}

/// `--remove-retained`: publishes an empty retained message (QoS 1, as
/// mosquitto_sub does) to the topic of each retained message received, which
/// clears it from the broker.
fn clear_retained(
    client: &mut Mqtt<'_>,
    until: Option<Instant>,
    shared: &Shared,
) -> Result<(), String> {
    loop {
        // Not borrowed across the publish: messages arrive meanwhile.
        let Some(topic) = shared.to_clear.borrow_mut().pop_front() else {
            return Ok(());
        };
        session::limit_calls(client, until);
        client
            .publish(&topic, b"", true, QoS::AtLeastOnce)
            .map_err(|e| {
                let topic = String::from_utf8_lossy(&topic);
                format!(
                    "clearing the retained message of `{topic}`: {}",
                    session::describe(&e)
                )
            })?;
        log::info!(
            "cleared the retained message of `{}`",
            String::from_utf8_lossy(&topic)
        );
    }
}

/// Whether a message is left unprinted: a stale retained one with `-R`, or
/// one whose topic a `-T` filter matches.
fn hidden(message: &Message<'_>, args: &SubArgs) -> bool {
    (args.skip_retained && message.retain)
        || args
            .filter_out
            .iter()
            .any(|filter| topic_filter::matches(filter.as_bytes(), message.topic))
}

/// Prints one message the way mosquitto_sub does: the payload, or with `-v`
/// "topic payload" ("topic (null)" for an empty payload); an empty payload
/// without `-v` prints nothing; with `-F`, the format. Each ends with a
/// newline unless `-N`.
/// Flushed at once, so a pipe sees each message as it arrives.
fn print(out: &mut impl Write, message: &Message<'_>, args: &SubArgs) -> io::Result<()> {
    if let Some(format) = &args.format {
        format.write(out, message, std::time::SystemTime::now())?;
    } else if args.verbose {
        out.write_all(message.topic)?;
        if message.payload.is_empty() {
            out.write_all(b" (null)")?;
        } else {
            out.write_all(b" ")?;
            out.write_all(message.payload)?;
        }
    } else if !message.payload.is_empty() {
        out.write_all(message.payload)?;
    } else {
        return Ok(());
    }
    if !args.no_newline {
        out.write_all(b"\n")?;
    }
    out.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sub_args(extra: &[&str]) -> SubArgs {
        let all = ["sub", "-t", "#"]
            .iter()
            .chain(extra)
            .map(|s| s.to_string());
        match crate::args::parse(all) {
            Ok(crate::args::Parsed::Run(crate::args::Command::Sub(a))) => a,
            other => panic!("{extra:?}: {other:?}"),
        }
    }

    fn printed(topic: &[u8], payload: &[u8], verbose: bool) -> Vec<u8> {
        printed_with(topic, payload, if verbose { &["-v"] } else { &[] })
    }

    fn printed_with(topic: &[u8], payload: &[u8], extra: &[&str]) -> Vec<u8> {
        let message = Message::new(topic, payload, QoS::AtMostOnce);
        let mut out = Vec::new();
        print(&mut out, &message, &sub_args(extra)).unwrap();
        out
    }

    #[test]
    fn prints_like_mosquitto_sub() {
        assert_eq!(printed(b"a/b", b"hi there", false), b"hi there\n");
        assert_eq!(printed(b"a/b", b"hi there", true), b"a/b hi there\n");
        assert_eq!(printed(b"a/b", b"", true), b"a/b (null)\n");
        assert_eq!(printed(b"a/b", b"", false), b"");
        // Bytes pass through untouched.
        assert_eq!(printed(b"t", b"\xff\x00\n", false), b"\xff\x00\n\n");
    }

    #[test]
    fn no_newline_leaves_the_payloads_joined() {
        assert_eq!(printed_with(b"a/b", b"hi", &["-N"]), b"hi");
        assert_eq!(printed_with(b"a/b", b"hi", &["-N", "-v"]), b"a/b hi");
        assert_eq!(printed_with(b"a/b", b"", &["-N", "-v"]), b"a/b (null)");
        assert_eq!(printed_with(b"a/b", b"", &["-N"]), b"");
    }

    #[test]
    fn skip_retained_hides_only_retained_messages() {
        let mut message = Message::new(b"a", b"x", QoS::AtMostOnce);
        assert!(!hidden(&message, &sub_args(&["-R"])));
        message.retain = true;
        assert!(hidden(&message, &sub_args(&["-R"])));
        assert!(!hidden(&message, &sub_args(&[])));
    }

    #[test]
    fn filter_out_hides_matching_topics() {
        let args = sub_args(&["-T", "a/+/x", "-T", "b/#"]);
        let hides = |topic: &[u8]| hidden(&Message::new(topic, b"p", QoS::AtMostOnce), &args);
        assert!(hides(b"a/1/x"));
        assert!(hides(b"b"));
        assert!(hides(b"b/c/d"));
        assert!(!hides(b"a/1/y"));
        assert!(!hides(b"c"));
    }
}
