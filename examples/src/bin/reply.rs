//! Request and reply: a responder answers every request with a QoS 1 reply.
//!
//! The original's README warns that publishing from inside the message
//! callback can recurse without bound. Here the callback cannot reach the
//! client at all (the client borrows it, so the compiler refuses), and the
//! pattern is: the callback copies the request into a fixed-size queue, and
//! the loop publishes the replies after `wait_msg_for` returns. No heap, no
//! recursion, and a request that arrives while a reply waits for its PUBACK
//! simply joins the queue. The queue has a fixed size, so the requester keeps
//! at most that many requests unanswered (a request the callback could not
//! keep would be acknowledged and lost, and the example says so).
//!
//! ```text
//! cargo run -p umqtt-examples --bin reply                      # in-process broker
//! cargo run -p umqtt-examples --bin reply -- --host HOST --count 10
//! ```

use std::cell::{Cell, RefCell};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use heapless::{Deque, Vec};
use umqtt_examples::broker::broker_or_local;
use umqtt_examples::{Args, Context, main_with_args, py_bytes, std_client};
use umqtt_simple::{Message, Options, QoS};

const USAGE: &str = "\
Usage: reply [--host H] [--port P] [--topic T] [--count N]

A responder and a requester in one program: the requester publishes N
requests to T/request, the responder answers each with a QoS 1 reply to
T/reply, published from its main loop (never from the message callback).
Without --host it starts a broker (rumqttd) inside this process.

  --host H     use the broker at H (default: start one in this process)
  --port P     the broker's port (default 1883; without --host, the local
               broker's port)
  --topic T    topic prefix (default umqtt/rpc)
  --count N    how many requests (default 3)
  -h, --help   print this help
";

/// The longest request the responder keeps; longer ones are cut.
const MAX_REQUEST: usize = 64;
/// How many requests may wait for their reply.
const QUEUE: usize = 8;

type Request = Vec<u8, MAX_REQUEST>;

fn main() -> ExitCode {
    main_with_args(USAGE, &["host", "port", "topic", "count"], run)
}

fn run(args: &Args) -> Result<(), String> {
    let (host, port) = broker_or_local(args)?;
    let prefix = args.topic.as_deref().unwrap_or("umqtt/rpc");
    let request_topic = format!("{prefix}/request");
    let reply_topic = format!("{prefix}/reply");
    let count = args.count.unwrap_or(3);

    // The responder's callback only queues: it borrows the queue, the client
    // borrows the callback, and the loop below publishes.
    let pending: RefCell<Deque<Request, QUEUE>> = RefCell::new(Deque::new());
    let overflowed = Cell::new(0u32);
    let mut on_request = |msg: Message<'_>| {
        let len = msg.payload.len().min(MAX_REQUEST);
        let request =
            Request::from_slice(msg.payload.get(..len).unwrap_or_default()).unwrap_or_default();
        if pending.borrow_mut().push_back(request).is_err() {
            overflowed.set(overflowed.get() + 1);
        }
    };
    let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
    let mut responder = std_client(&mut tx, &mut rx, Options::new("umqtt_responder"));
    responder.set_callback(&mut on_request);
    responder
        .connect_host(&host, port)
        .context(format_args!("responder: connect to {host}:{port}"))?;
    responder
        .subscribe(request_topic.as_bytes(), QoS::AtLeastOnce)
        .context("responder: subscribe")?;

    let replies = Cell::new(0u64);
    let mut on_reply = |msg: Message<'_>| {
        println!("  requester <- {}", py_bytes(msg.payload));
        replies.set(replies.get() + 1);
    };
    let (mut tx2, mut rx2) = ([0u8; 512], [0u8; 512]);
    let mut requester = std_client(&mut tx2, &mut rx2, Options::new("umqtt_requester"));
    requester.set_callback(&mut on_reply);
    requester
        .connect_host(&host, port)
        .context(format_args!("requester: connect to {host}:{port}"))?;
    requester
        .subscribe(reply_topic.as_bytes(), QoS::AtLeastOnce)
        .context("requester: subscribe")?;
    println!("Responder listens on {request_topic:?}, requester on {reply_topic:?}");

    let deadline = Instant::now() + Duration::from_secs(5);
    let (mut sent, mut answered) = (0u64, 0u64);
    while replies.get() < count {
        if Instant::now() >= deadline {
            return Err(format!(
                "{} of {count} replies arrived within 5 s",
                replies.get()
            ));
        }
        // The requester keeps at most QUEUE requests unanswered, so the
        // responder's queue never overflows: a QoS 1 request the callback
        // could not keep would be acknowledged and lost.
        while sent < count && sent - replies.get() < QUEUE as u64 {
            sent += 1;
            let request = format!("request {sent}");
            println!("  requester -> {}", py_bytes(request.as_bytes()));
            requester
                .publish(
                    request_topic.as_bytes(),
                    request.as_bytes(),
                    false,
                    QoS::AtLeastOnce,
                )
                .context("requester: publish")?;
        }
        // One packet (or none within 20 ms) for the responder...
        responder
            .wait_msg_for(20)
            .context("responder: wait for requests")?;
        // ...then its replies, outside the callback. A request arriving while
        // a reply waits for its PUBACK is queued by the callback meanwhile.
        loop {
            let Some(request) = pending.borrow_mut().pop_front() else {
                break;
            };
            let mut reply = b"reply to ".to_vec();
            reply.extend_from_slice(&request);
            responder
                .publish(reply_topic.as_bytes(), &reply, false, QoS::AtLeastOnce)
                .context("responder: publish reply")?;
            answered += 1;
        }
        requester
            .wait_msg_for(20)
            .context("requester: wait for replies")?;
        if overflowed.get() > 0 {
            return Err(format!(
                "{} requests found the responder's queue full and were lost",
                overflowed.get()
            ));
        }
    }
    responder.disconnect().context("responder: disconnect")?;
    requester.disconnect().context("requester: disconnect")?;
    println!("All {count} requests answered ({answered} replies sent). Disconnected.");
    Ok(())
}
