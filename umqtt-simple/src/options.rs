//! Connection options: who the client is and how long it waits.

use crate::packet::LastWill;

/// Keepalive the client asks for unless told otherwise: 60 s.
///
/// The original's 0 is refused by some mosquitto versions; since the client
/// sends PINGREQ by itself, a non-zero default costs nothing.
pub const DEFAULT_KEEPALIVE_S: u16 = 60;
/// Default deadline for TCP connect plus CONNACK: 10 s.
pub const DEFAULT_CONNECT_TIMEOUT_MS: u32 = 10_000;
/// Default deadline for PUBACK, SUBACK and UNSUBACK: 10 s.
pub const DEFAULT_ACK_TIMEOUT_MS: u32 = 10_000;
/// Default deadline for the stack to accept a whole packet: 10 s.
pub const DEFAULT_SEND_TIMEOUT_MS: u32 = 10_000;
/// Upper bound of the default PINGRESP deadline: 10 s.
pub const MAX_DEFAULT_PING_TIMEOUT_MS: u32 = 10_000;

/// How the client connects: identity, session, credentials, will and deadlines.
///
/// Every value has a documented default; set what differs with the builder
/// methods.
///
/// ```
/// use umqtt_simple::{Options, QoS};
///
/// let options = Options::new("sensor-17")
///     .keepalive(30)
///     .clean_session(false)
///     .user("alice")
///     .password(b"secret")
///     .last_will(b"sensors/17/status", b"offline", true, QoS::AtLeastOnce)
///     .ack_timeout_ms(5_000);
/// assert_eq!(options.keepalive_s(), 30);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options<'a> {
    pub(crate) client_id: &'a str,
    pub(crate) keepalive_s: u16,
    pub(crate) clean_session: bool,
    pub(crate) username: Option<&'a str>,
    pub(crate) password: Option<&'a [u8]>,
    pub(crate) will: Option<LastWill<'a>>,
    pub(crate) connect_timeout_ms: u32,
    pub(crate) ack_timeout_ms: u32,
    pub(crate) send_timeout_ms: u32,
    pub(crate) ping_timeout_ms: Option<u32>,
    pub(crate) batch_qos0: bool,
    pub(crate) acknowledge_undelivered: bool,
}

impl<'a> Options<'a> {
    /// Options for `client_id` with every default: keepalive 60 s, clean
    /// session, no credentials, no will, 10 s deadlines.
    pub const fn new(client_id: &'a str) -> Self {
        Options {
            client_id,
            keepalive_s: DEFAULT_KEEPALIVE_S,
            clean_session: true,
            username: None,
            password: None,
            will: None,
            connect_timeout_ms: DEFAULT_CONNECT_TIMEOUT_MS,
            ack_timeout_ms: DEFAULT_ACK_TIMEOUT_MS,
            send_timeout_ms: DEFAULT_SEND_TIMEOUT_MS,
            ping_timeout_ms: None,
            batch_qos0: false,
            acknowledge_undelivered: true,
        }
    }

    /// Keepalive in seconds (default 60); 0 turns keepalive off. The client
    /// sends PINGREQ by itself when nothing was sent for this long.
    pub const fn keepalive(mut self, seconds: u16) -> Self {
        self.keepalive_s = seconds;
        self
    }

    /// Whether the broker starts a new session on connect (default `true`).
    /// With `false`, subscriptions and queued QoS 1 messages survive a
    /// disconnect.
    pub const fn clean_session(mut self, clean: bool) -> Self {
        self.clean_session = clean;
        self
    }

    /// The user name (alone, or with [`Options::password`]).
    pub const fn user(mut self, username: &'a str) -> Self {
        self.username = Some(username);
        self
    }

    /// The password; MQTT 3.1.1 requires a user name with it, and `connect`
    /// refuses a password alone before sending anything.
    pub const fn password(mut self, password: &'a [u8]) -> Self {
        self.password = Some(password);
        self
    }

    /// The message the broker publishes if this client vanishes without
    /// DISCONNECT. Checked when connecting.
    pub const fn last_will(
        mut self,
        topic: &'a [u8],
        message: &'a [u8],
        retain: bool,
        qos: crate::QoS,
    ) -> Self {
        self.will = Some(LastWill {
            topic,
            message,
            qos,
            retain,
        });
        self
    }

    /// Deadline for TCP connect plus CONNACK, in ms (default 10 000).
    pub const fn connect_timeout_ms(mut self, ms: u32) -> Self {
        self.connect_timeout_ms = ms;
        self
    }

    /// Deadline for PUBACK, SUBACK and UNSUBACK, in ms (default 10 000).
    pub const fn ack_timeout_ms(mut self, ms: u32) -> Self {
        self.ack_timeout_ms = ms;
        self
    }

    /// Deadline for the stack to accept a whole packet, in ms (default 10 000).
    pub const fn send_timeout_ms(mut self, ms: u32) -> Self {
        self.send_timeout_ms = ms;
        self
    }

    /// Deadline for PINGRESP after PINGREQ, in ms. Default: half the
    /// keepalive, at most 10 s, so a half-open link is found within 1.5 ×
    /// keepalive.
    pub const fn ping_timeout_ms(mut self, ms: u32) -> Self {
        self.ping_timeout_ms = Some(ms);
        self
    }

    /// Whether a QoS 1 or 2 message too large for the receive buffer is
    /// acknowledged after it was skipped (default `true`).
    ///
    /// Either way it is reported, never dropped unseen: to the
    /// [undelivered callback](crate::Engine::set_undelivered_callback) if
    /// one is set, else as [`Error::MessageTooLarge`](crate::Error::MessageTooLarge)
    /// from the next `wait_msg`, `wait_msg_for` or `check_msg`.
    ///
    /// - `true`: the broker is told the client has it, and drops it. A
    ///   message this device can never take does not come back after every
    ///   reconnect of a persistent session, and does not hold one of the
    ///   broker's in-flight slots (mosquitto: 20), which would stop QoS 1
    ///   delivery to this client once they are all taken.
    /// - `false`: the broker keeps it and sends it again after the next
    ///   reconnect (persistent session), e.g. for a device that grows its
    ///   buffer or hands the topic to another client.
    pub const fn acknowledge_undelivered(mut self, acknowledge: bool) -> Self {
        self.acknowledge_undelivered = acknowledge;
        self
    }

    /// Gathers QoS 0 publishes in the transmit buffer instead of sending
    /// each at once (default `false`: one send per publish).
    ///
    /// A batched QoS 0 `publish` copies the message behind those already
    /// waiting and returns; the batch leaves in one send when the next packet
    /// would not fit the transmit buffer, with the next packet of any other
    /// kind (QoS 1 publish, subscribe, ping, disconnect, an acknowledgement),
    /// when `wait_msg`, `wait_msg_for` or `check_msg` is called, or on
    /// [`Client::flush`](crate::Client::flush). A 1 KiB transmit buffer holds
    /// eleven 64-byte messages to a 20-byte topic, so a stream of them costs
    /// the network stack one send in eleven.
    ///
    /// The price: a message may wait in the buffer until one of those calls,
    /// and if the connection is lost before the batch is sent, its messages
    /// are lost with it (QoS 0 allows it) and counted by
    /// [`Engine::dropped_messages`](crate::Engine::dropped_messages). Read on
    /// every publish, so it takes effect at once.
    pub const fn batch_qos0(mut self, batch: bool) -> Self {
        self.batch_qos0 = batch;
        self
    }

    /// Whether QoS 0 publishes are batched ([`Options::batch_qos0`]).
    pub const fn is_batching_qos0(&self) -> bool {
        self.batch_qos0
    }

    /// The client id.
    pub const fn client_id(&self) -> &'a str {
        self.client_id
    }

    /// Whether the client asks for a clean session.
    pub const fn is_clean_session(&self) -> bool {
        self.clean_session
    }

    /// The deadline for TCP connect plus CONNACK, in ms.
    pub const fn connect_timeout(&self) -> u32 {
        self.connect_timeout_ms
    }

    /// The keepalive in seconds.
    pub const fn keepalive_s(&self) -> u16 {
        self.keepalive_s
    }

    /// The PINGRESP deadline in effect, in ms.
    pub const fn effective_ping_timeout_ms(&self) -> u32 {
        match self.ping_timeout_ms {
            Some(ms) => ms,
            None => {
                let half = self.keepalive_s as u32 * 500;
                if half == 0 || half > MAX_DEFAULT_PING_TIMEOUT_MS {
                    MAX_DEFAULT_PING_TIMEOUT_MS
                } else {
                    half
                }
            }
        }
    }
}
