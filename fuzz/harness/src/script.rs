//! How the `client` and `robust` targets read their input: a configuration
//! header, then steps that each deliver one chunk of broker bytes and make
//! the client do one thing.
//!
//! ```text
//! byte 0   config   bits 0-1 keepalive      [0 s, 1 s, 2 s, 60 s]
//!                   bits 2-3 ping timeout   [default, 0 ms, 250 ms, 3 s]
//!                   bits 4-5 send limit     [whole, 1, 2, 5 bytes per send]
//!                   bit  6   no callback    (messages dropped, subscribe refused)
//!                   bit  7   tx buffer      [48, 24] bytes (CONNECT takes 18)
//! byte 1   buffers  bits 0-5 receive buffer = 16 + value bytes (16 to 79)
//!                   bit  6   friendly reconnects: `client`: after a call that
//!                            lost the connection (not `disconnect`), the
//!                            harness reconnects with a valid CONNACK;
//!                            `robust`: every CONNECT is answered with a
//!                            valid CONNACK (after any scripted answer)
//!                   bit  7   `robust`: give up after 2 failed attempts
//! byte 2   extras   only in the `window` and `outbox` targets' inputs
//!                   (`Script::parse_extended`), absent from `client`'s and
//!                   `robust`'s:
//!                   bits 0-1 QoS 1 window   [none, 1, 2, 4 slots]
//!                   bits 2-3 outbox bytes   [64, 128, 256, 1024] (`outbox`)
//!                   bit  4   outbox full    [refuse, drop the oldest]
//!                   bit  5   outbox takes QoS 0 too (`queue_qos0`)
//! then steps, at most MAX_STEPS:
//!   op      bits 0-3 operation (see Op), bits 4-6 parameter,
//!           bit 7 deliver the chunk as an answer (see Step::as_answer)
//!   len     chunk length
//!   chunk   len bytes from the broker (cut short at the end of the input)
//! ```
//!
//! A missing header byte takes its default (0: keepalive 0 s, 16-byte rx).

/// Most steps one input runs: bounds each execution.
pub const MAX_STEPS: usize = 64;

/// The client's configuration, from the first two bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Config {
    /// Keepalive in seconds.
    pub keepalive_s: u16,
    /// Explicit PINGRESP deadline, or the default.
    pub ping_timeout_ms: Option<u32>,
    /// Bytes the stack accepts per send (`None`: all).
    pub send_limit: Option<usize>,
    /// Whether a message callback is set.
    pub callback: bool,
    /// Transmit buffer size.
    pub tx_len: usize,
    /// Receive buffer size.
    pub rx_len: usize,
    /// Friendly reconnects (see the format above).
    pub friendly: bool,
    /// `robust` only: failed reconnect attempts before giving up.
    pub max_attempts: Option<u32>,
    /// Slots of the QoS 1 window (0: none).
    pub window: usize,
    /// Bytes of the outbox (`outbox` target).
    pub outbox_len: usize,
    /// Whether a full outbox drops its oldest message (else it refuses).
    pub drop_oldest: bool,
    /// Whether the outbox takes QoS 0 messages too.
    pub queue_qos0: bool,
}

impl Config {
    fn parse(config: u8, rx: u8, extras: u8) -> Self {
        Config {
            keepalive_s: [0, 1, 2, 60][usize::from(config & 3)],
            ping_timeout_ms: [None, Some(0), Some(250), Some(3_000)]
                [usize::from((config >> 2) & 3)],
            send_limit: [None, Some(1), Some(2), Some(5)][usize::from((config >> 4) & 3)],
            callback: config & 0x40 == 0,
            tx_len: if config & 0x80 == 0 { 48 } else { 24 },
            rx_len: umqtt_simple::MIN_RX_BUFFER + usize::from(rx & 0x3f),
            friendly: rx & 0x40 != 0,
            max_attempts: (rx & 0x80 != 0).then_some(2),
            window: [0, 1, 2, 4][usize::from(extras & 3)],
            outbox_len: [64, 128, 256, 1024][usize::from((extras >> 2) & 3)],
            drop_oldest: extras & 0x10 != 0,
            queue_qos0: extras & 0x20 != 0,
        }
    }
}

/// What a step makes the client do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// QoS 0 publish of `9 * param` payload bytes to `t/x`.
    PublishQos0,
    /// QoS 1 publish of `9 * param` payload bytes to `t/x`.
    PublishQos1,
    /// Subscribe to `t/#` with QoS `param & 1`.
    Subscribe,
    /// Subscribe to `t/#` and `u/+` in one SUBSCRIBE.
    SubscribeMany,
    /// Unsubscribe from `t/#`.
    Unsubscribe,
    /// `wait_msg_for(WAIT_TIMEOUTS[param])`.
    WaitMsgFor,
    /// `check_msg()`.
    CheckMsg,
    /// `ping()`.
    Ping,
    /// Time passes: the clock moves `700 * param` ms with nobody looking.
    Advance,
    /// The broker's end dies (queued bytes and answers are lost); the chunk
    /// then becomes the answer to the next CONNECT.
    Close,
    /// `connect()`; the chunk is the broker's answer to CONNECT.
    Connect,
    /// `disconnect()`.
    Disconnect,
    /// `republish()` (QoS 1, DUP) with packet id `param + 1`.
    Republish,
    /// `flush()`; an odd `param` first switches the batched QoS 0 mode
    /// (`Options::batch_qos0`) on or off.
    Flush,
}

/// Operation for each value of the op byte's low nibble; waiting and
/// checking are the most common, as in a real program.
const OPS: [Op; 16] = [
    Op::PublishQos0,
    Op::PublishQos1,
    Op::Subscribe,
    Op::SubscribeMany,
    Op::Unsubscribe,
    Op::WaitMsgFor,
    Op::CheckMsg,
    Op::Ping,
    Op::Advance,
    Op::Close,
    Op::Connect,
    Op::Disconnect,
    Op::Republish,
    Op::WaitMsgFor,
    Op::CheckMsg,
    Op::Flush,
];

/// `wait_msg_for` timeouts, by parameter.
pub const WAIT_TIMEOUTS: [u32; 8] = [0, 1, 500, 1_000, 5_000, 30_000, 120_000, u32::MAX];

/// One step.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Step<'d> {
    /// What the client does.
    pub op: Op,
    /// 0 to 7; meaning depends on `op`.
    pub param: u8,
    /// Deliver the chunk when the client sends the packet this step's
    /// operation sends (or, for operations that send nothing, its next
    /// PINGREQ, PUBACK, PUBREC or PUBCOMP for `param & 3` = 0, 1, 2, 3),
    /// instead of before the operation.
    pub as_answer: bool,
    /// Broker bytes.
    pub chunk: &'d [u8],
}

impl core::fmt::Debug for Step<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{:?}({})", self.op, self.param)?;
        if !self.chunk.is_empty() {
            let how = match self.op {
                Op::Close | Op::Connect => "connack",
                _ if self.as_answer => "answer",
                _ => "feed",
            };
            write!(f, " {how} ")?;
            for b in self.chunk {
                write!(f, "{b:02x}")?;
            }
        }
        Ok(())
    }
}

/// A parsed input.
#[derive(Debug, Clone)]
pub struct Script<'d> {
    /// The configuration.
    pub config: Config,
    rest: &'d [u8],
}

impl<'d> Script<'d> {
    /// Reads `data` (two header bytes); never fails.
    pub fn parse(data: &'d [u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        Script {
            config: Config::parse(byte(0), byte(1), 0),
            rest: data.get(2..).unwrap_or_default(),
        }
    }

    /// Reads `data` with the third header byte (extras); never fails.
    pub fn parse_extended(data: &'d [u8]) -> Self {
        let byte = |i: usize| data.get(i).copied().unwrap_or(0);
        Script {
            config: Config::parse(byte(0), byte(1), byte(2)),
            rest: data.get(3..).unwrap_or_default(),
        }
    }

    /// The steps, at most [`MAX_STEPS`].
    pub fn steps(&self) -> impl Iterator<Item = Step<'d>> + 'd {
        let mut rest = self.rest;
        core::iter::from_fn(move || {
            let (&op, tail) = rest.split_first()?;
            let (len, tail) = match tail.split_first() {
                Some((&len, tail)) => (usize::from(len), tail),
                None => (0, tail),
            };
            let (chunk, tail) = tail.split_at(len.min(tail.len()));
            rest = tail;
            Some(Step {
                op: OPS[usize::from(op & 0x0f)],
                param: (op >> 4) & 7,
                as_answer: op & 0x80 != 0,
                chunk,
            })
        })
        .take(MAX_STEPS)
    }
}

/// Builds an input from a config, an rx byte and steps (for seeds and
/// regression tests): each step is (op byte, chunk).
pub fn build(config: u8, rx: u8, steps: &[(u8, &[u8])]) -> Vec<u8> {
    build_header(vec![config, rx], steps)
}

/// Like [`build`], with the extras byte (for [`Script::parse_extended`]).
pub fn build_extended(config: u8, rx: u8, extras: u8, steps: &[(u8, &[u8])]) -> Vec<u8> {
    build_header(vec![config, rx, extras], steps)
}

fn build_header(header: Vec<u8>, steps: &[(u8, &[u8])]) -> Vec<u8> {
    let mut out = header;
    for (op, chunk) in steps {
        let len = u8::try_from(chunk.len()).expect("a chunk is at most 255 bytes");
        out.push(*op);
        out.push(len);
        out.extend_from_slice(chunk);
    }
    out
}
