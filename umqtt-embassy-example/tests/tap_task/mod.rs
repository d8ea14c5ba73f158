//! What the TAP tests of this crate share (`over_tap.rs`, `tls_over_tap.rs`):
//! the embassy executor on a thread of the test process running one client
//! task, which tells the test thread what to do to the broker through
//! [`Note`]s, and the test thread serving them within [`TASK_LIMIT`].

#![allow(
    dead_code,
    reason = "each test file uses its own part of this module, compiled into each"
)]

use std::cell::RefCell;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use embassy_net::Stack;
use umqtt_embassy_example::{TapConfig, start};
use umqtt_simple::{Options, QoS};
use umqtt_tests::netns::{Mosquitto, STACK_IP, TAP, broker};

/// How long a test waits for something that must happen.
pub const WAIT: Duration = Duration::from_secs(10);
/// How long a client task may take from start to end.
pub const TASK_LIMIT: Duration = Duration::from_secs(120);
/// How long the broker stays down when a task asks for a restart.
pub const DOWN: Duration = Duration::from_secs(1);

/// The TAP device's side: the stack's address on the namespace's TAP.
pub fn tap_config() -> TapConfig {
    TapConfig::new(TAP, STACK_IP, 24)
}

/// What a callback received: topic, payload, QoS.
pub type Inbox = RefCell<Vec<(Vec<u8>, Vec<u8>, QoS)>>;

/// Whether `inbox` holds a message with `topic` and `payload`.
pub fn has(inbox: &Inbox, topic: &[u8], payload: &[u8]) -> bool {
    inbox
        .borrow()
        .iter()
        .any(|(t, p, _)| t == topic && p == payload)
}

/// What a client task tells the test thread.
#[derive(Debug)]
pub enum Note {
    /// Publish `payload` on `topic` from the kernel's TCP (a std client).
    PublishFromKernel(&'static str, &'static str),
    /// Kill mosquitto, and start it again (same address and port) after
    /// [`DOWN`].
    RestartBroker,
    /// The task ended: how.
    Done(Result<(), String>),
}

/// Starts the stack and the client task that `spawn` spawns, then serves
/// the task's notes until it is done, within [`TASK_LIMIT`]. Panics with
/// the task's error, if it had one.
pub fn run_task(
    mosquitto: &mut Mosquitto,
    spawn: impl FnOnce(
        embassy_executor::Spawner,
        Stack<'static>,
        mpsc::Sender<Note>,
    ) -> Result<(), embassy_executor::SpawnError>
    + Send
    + 'static,
) {
    let (notes, inbox) = mpsc::channel();
    start(tap_config(), move |spawner, stack| {
        spawn(spawner, stack, notes)
    })
    .expect("start embassy-net on the TAP device");
    let started = Instant::now();
    loop {
        let left = TASK_LIMIT.saturating_sub(started.elapsed());
        let note = inbox.recv_timeout(left).unwrap_or_else(|e| {
            panic!(
                "the client task did not finish within {TASK_LIMIT:?} ({e}); broker log:\n{}",
                mosquitto.log()
            )
        });
        println!("{:>6} ms: {note:?}", started.elapsed().as_millis());
        match note {
            Note::PublishFromKernel(topic, payload) => publish_from_kernel(topic, payload),
            Note::RestartBroker => {
                mosquitto.kill();
                std::thread::sleep(DOWN);
                mosquitto.restart();
                println!("{:>6} ms: mosquitto is back", started.elapsed().as_millis());
            }
            Note::Done(Ok(())) => return,
            Note::Done(Err(e)) => panic!("{e}; broker log:\n{}", mosquitto.log()),
        }
    }
}

/// A std client (the kernel's TCP, inside the namespace) that publishes one
/// QoS 1 message.
fn publish_from_kernel(topic: &str, payload: &str) {
    let (mut tx, mut rx) = ([0u8; 512], [0u8; 512]);
    let mut publisher = umqtt_tests::std_client(&mut tx, &mut rx, Options::new("kernel-publisher"));
    publisher.connect(broker()).expect("kernel client connects");
    publisher
        .publish(
            topic.as_bytes(),
            payload.as_bytes(),
            false,
            QoS::AtLeastOnce,
        )
        .expect("kernel client publishes");
    publisher.disconnect().expect("kernel client disconnects");
}
