//! The client's error type.

use core::convert::Infallible;
use core::fmt;

use crate::packet::{ConnectReturnCode, DecodeError, EncodeError, PacketType};

/// What the client was waiting for when a deadline passed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Waiting {
    /// TCP connect (and, over TLS, the handshake).
    Connect,
    /// The broker's CONNACK.
    ConnAck,
    /// The PUBACK of a QoS 1 publish.
    PubAck,
    /// The SUBACK of a subscribe.
    SubAck,
    /// The UNSUBACK of an unsubscribe.
    UnsubAck,
    /// The PINGRESP of a keepalive PINGREQ.
    PingResp,
    /// The stack to accept the rest of a packet.
    Send,
    /// A host name lookup.
    Dns,
}

impl fmt::Display for Waiting {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Waiting::Connect => "TCP connect",
            Waiting::ConnAck => "CONNACK",
            Waiting::PubAck => "PUBACK",
            Waiting::SubAck => "SUBACK",
            Waiting::UnsubAck => "UNSUBACK",
            Waiting::PingResp => "PINGRESP",
            Waiting::Send => "the network to accept the packet",
            Waiting::Dns => "DNS",
        })
    }
}

/// What kind of failure an error is, and so what a program does about it
/// (as [`embedded_io::ErrorKind`](https://docs.rs/embedded-io) classifies
/// I/O errors): [`Error::kind`], and umqtt-robust's `RobustError::kind`.
///
/// ```
/// use umqtt_simple::{Error, ErrorKind, Waiting};
///
/// let e: Error<()> = Error::Timeout(Waiting::PubAck);
/// assert_eq!(e.kind(), ErrorKind::Timeout);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input or settings: a topic, an option, a missing
    /// callback. Nothing was sent; fix the call.
    Configuration,
    /// The broker said no: a refused connection or subscription.
    Refused,
    /// The broker broke the protocol; the connection is closed.
    Protocol,
    /// A buffer or fixed-size memory of this side is too small for what
    /// arrived or what was asked.
    Resource,
    /// The network, the stack or the connection failed (also: not connected,
    /// host name not resolved).
    Transport,
    /// A deadline passed.
    Timeout,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ErrorKind::Configuration => "invalid input",
            ErrorKind::Refused => "refused by the broker",
            ErrorKind::Protocol => "protocol error",
            ErrorKind::Resource => "out of room",
            ErrorKind::Transport => "network error",
            ErrorKind::Timeout => "timed out",
        })
    }
}

/// Everything that can go wrong in the client, generic over the stack's error.
///
/// [`Error::kind`] tells the groups apart:
/// - [`ErrorKind::Configuration`], your input ([`Error::Invalid`],
///   [`Error::NoCallback`], [`Error::TooManyFilters`]): nothing was sent; the
///   connection is untouched;
/// - [`ErrorKind::Refused`], the broker said no (the `Refused*` variants,
///   [`Error::SubscribeRefused`]);
/// - [`ErrorKind::Protocol`], the broker broke the protocol
///   ([`Error::Protocol`], [`Error::UnexpectedPacket`],
///   [`Error::UnexpectedPacketId`], [`Error::SessionPresentOnCleanSession`]):
///   the connection is closed;
/// - [`ErrorKind::Resource`], a buffer too small ([`Error::PacketTooLarge`]:
///   the connection is closed; [`Error::MessageTooLarge`]: see below);
/// - [`ErrorKind::Transport`] ([`Error::Network`], [`Error::Closed`],
///   [`Error::Dns`], [`Error::NotConnected`]) and [`ErrorKind::Timeout`]
///   ([`Error::Timeout`]): the connection is closed, except for
///   `NotConnected`, which means it already was.
///
/// [`Error::MessageTooLarge`] is a report, not a failure: the message was
/// skipped and the connection stays usable.
#[derive(Debug, Clone, PartialEq, Eq)]
#[cfg_attr(feature = "defmt", derive(defmt::Format))]
#[non_exhaustive]
pub enum Error<E> {
    /// The stack reported an error; the connection is closed.
    Network(E),
    /// The broker closed the connection.
    Closed,
    /// A deadline passed while waiting; the connection is closed.
    Timeout(Waiting),
    /// The host name could not be resolved. The stack's reason is logged
    /// (warn): embedded-nal's `Dns` has an error type of its own, which
    /// need not convert into the TCP stack's (std-embedded-nal's does not),
    /// so it cannot travel in this enum.
    Dns,
    /// There is no connection: call `connect` first (or again).
    NotConnected,
    /// A topic, filter, option or buffer size is invalid; nothing was sent.
    Invalid(EncodeError),
    /// `subscribe` needs a callback to deliver messages to; set one first.
    NoCallback,
    /// More filters than result slots were given to `subscribe_many`.
    TooManyFilters {
        /// Filters given.
        filters: usize,
        /// Result slots given.
        slots: usize,
    },
    /// CONNACK 1: the broker does not accept MQTT 3.1.1.
    RefusedProtocolVersion,
    /// CONNACK 2: the broker rejected the client id.
    RefusedIdentifier,
    /// CONNACK 3: the broker's MQTT service is unavailable.
    RefusedServerUnavailable,
    /// CONNACK 4: the broker refused the user name or password.
    RefusedBadCredentials,
    /// CONNACK 5: the client is not authorised to connect.
    RefusedNotAuthorized,
    /// The broker refused a subscription (SUBACK 0x80); `index` is the filter's
    /// position in the request.
    SubscribeRefused {
        /// Position of the refused filter.
        index: usize,
    },
    /// The broker sent bytes that are not a valid packet; the connection is closed.
    Protocol(DecodeError),
    /// The broker sent a valid packet that makes no sense now (a second
    /// CONNACK, an acknowledgement nothing waits for); the connection is closed.
    UnexpectedPacket(PacketType),
    /// An acknowledgement carried another packet id than the one awaited; the
    /// connection is closed.
    UnexpectedPacketId {
        /// The acknowledgement's type.
        packet: PacketType,
        /// The id awaited.
        expected: u16,
        /// The id received.
        received: u16,
    },
    /// The broker sent a packet other than PUBLISH that does not fit the
    /// receive buffer; the connection is closed.
    PacketTooLarge {
        /// The packet's type.
        packet: PacketType,
        /// Its size in bytes.
        size: usize,
        /// The receive buffer's size.
        capacity: usize,
    },
    /// The broker answered a clean-session CONNECT with "session present",
    /// which MQTT-3.2.2-1 rules out: what it kept cannot be trusted (a
    /// client would skip resubscribing and go deaf); the connection is
    /// closed.
    SessionPresentOnCleanSession,
    /// A message larger than the receive buffer arrived, with no
    /// [undelivered callback](crate::Engine::set_undelivered_callback) to
    /// report it to. It was read to its end and discarded (and acknowledged,
    /// unless [`Options::acknowledge_undelivered`](crate::Options::acknowledge_undelivered)
    /// says not to); the connection is still usable and the next message
    /// will arrive. One that arrived inside another call is reported by the
    /// next `wait_msg`, `wait_msg_for` or `check_msg`.
    MessageTooLarge {
        /// The PUBLISH packet's size in bytes.
        size: usize,
        /// The receive buffer's size.
        capacity: usize,
    },
}

impl<E> Error<E> {
    /// The error for a CONNACK return code other than "accepted".
    pub(crate) fn from_refusal(code: ConnectReturnCode) -> Option<Self> {
        Some(match code {
            ConnectReturnCode::Accepted => return None,
            ConnectReturnCode::UnacceptableProtocolVersion => Error::RefusedProtocolVersion,
            ConnectReturnCode::IdentifierRejected => Error::RefusedIdentifier,
            ConnectReturnCode::ServerUnavailable => Error::RefusedServerUnavailable,
            ConnectReturnCode::BadUsernameOrPassword => Error::RefusedBadCredentials,
            ConnectReturnCode::NotAuthorized => Error::RefusedNotAuthorized,
        })
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::NoCallback | Error::TooManyFilters { .. } => {
                ErrorKind::Configuration
            }
            Error::RefusedProtocolVersion
            | Error::RefusedIdentifier
            | Error::RefusedServerUnavailable
            | Error::RefusedBadCredentials
            | Error::RefusedNotAuthorized
            | Error::SubscribeRefused { .. } => ErrorKind::Refused,
            Error::Protocol(_)
            | Error::UnexpectedPacket(_)
            | Error::UnexpectedPacketId { .. }
            | Error::SessionPresentOnCleanSession => ErrorKind::Protocol,
            Error::PacketTooLarge { .. } | Error::MessageTooLarge { .. } => ErrorKind::Resource,
            Error::Network(_) | Error::Closed | Error::Dns | Error::NotConnected => {
                ErrorKind::Transport
            }
            Error::Timeout(_) => ErrorKind::Timeout,
        }
    }

    /// Whether the connection is gone after this error (reconnect to go on).
    pub fn is_connection_lost(&self) -> bool {
        !matches!(
            self,
            Error::Invalid(_)
                | Error::NoCallback
                | Error::TooManyFilters { .. }
                | Error::SubscribeRefused { .. }
                | Error::MessageTooLarge { .. }
        )
    }
}

/// The error of the sans-IO core ([`crate::Engine`]): every variant but
/// [`Error::Network`], which only a front-end, owning the connection, can
/// produce. [`Error::on_stack`] turns it into a front-end's error.
pub type CoreError = Error<Infallible>;

impl<E> Error<E> {
    /// [`Error::Dns`] for a failed lookup of `host`, whose `reason` (the
    /// resolver's own error) is logged, not kept.
    pub(crate) fn dns_failed(host: &str, reason: &dyn core::fmt::Debug) -> Self {
        log::warn!("DNS lookup of {host} failed: {reason:?}");
        Error::Dns
    }
}

impl CoreError {
    /// The same error as an error of a client on a stack whose errors are
    /// `E`: the one conversion between the core and a front-end.
    pub fn on_stack<E>(self) -> Error<E> {
        match self {
            Error::Network(never) => match never {},
            Error::Closed => Error::Closed,
            Error::Timeout(waiting) => Error::Timeout(waiting),
            Error::Dns => Error::Dns,
            Error::NotConnected => Error::NotConnected,
            Error::Invalid(e) => Error::Invalid(e),
            Error::NoCallback => Error::NoCallback,
            Error::TooManyFilters { filters, slots } => Error::TooManyFilters { filters, slots },
            Error::RefusedProtocolVersion => Error::RefusedProtocolVersion,
            Error::RefusedIdentifier => Error::RefusedIdentifier,
            Error::RefusedServerUnavailable => Error::RefusedServerUnavailable,
            Error::RefusedBadCredentials => Error::RefusedBadCredentials,
            Error::RefusedNotAuthorized => Error::RefusedNotAuthorized,
            Error::SubscribeRefused { index } => Error::SubscribeRefused { index },
            Error::Protocol(e) => Error::Protocol(e),
            Error::UnexpectedPacket(p) => Error::UnexpectedPacket(p),
            Error::UnexpectedPacketId {
                packet,
                expected,
                received,
            } => Error::UnexpectedPacketId {
                packet,
                expected,
                received,
            },
            Error::PacketTooLarge {
                packet,
                size,
                capacity,
            } => Error::PacketTooLarge {
                packet,
                size,
                capacity,
            },
            Error::SessionPresentOnCleanSession => Error::SessionPresentOnCleanSession,
            Error::MessageTooLarge { size, capacity } => Error::MessageTooLarge { size, capacity },
        }
    }
}

impl<E> From<EncodeError> for Error<E> {
    fn from(e: EncodeError) -> Self {
        Error::Invalid(e)
    }
}

impl<E> From<DecodeError> for Error<E> {
    fn from(e: DecodeError) -> Self {
        Error::Protocol(e)
    }
}

/// The stack's error is shown with `{:?}`: embedded-nal's `TcpError` asks
/// only for `Debug` (smoltcp-nal's errors have no `Display`), and every
/// stack must be able to print this error. A program on a stack whose errors
/// have `Display` (the std stack's do) can take the error out with a match
/// on [`Error::Network`] and show it itself, as the `umqtt` command does.
impl<E: fmt::Debug> fmt::Display for Error<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Network(e) => write!(f, "network error: {e:?}"),
            Error::Closed => f.write_str("the broker closed the connection"),
            Error::Timeout(what) => write!(f, "timed out waiting for {what}"),
            Error::Dns => f.write_str("the broker's host name could not be resolved"),
            Error::NotConnected => f.write_str("not connected"),
            Error::Invalid(e) => write!(f, "{e}"),
            Error::NoCallback => f.write_str("set a callback before subscribing"),
            Error::TooManyFilters { filters, slots } => {
                write!(f, "{filters} filters but only {slots} result slots")
            }
            Error::RefusedProtocolVersion => {
                f.write_str("broker refused the connection: MQTT 3.1.1 not accepted")
            }
            Error::RefusedIdentifier => {
                f.write_str("broker refused the connection: client id rejected")
            }
            Error::RefusedServerUnavailable => {
                f.write_str("broker refused the connection: server unavailable")
            }
            Error::RefusedBadCredentials => {
                f.write_str("broker refused the connection: bad user name or password")
            }
            Error::RefusedNotAuthorized => {
                f.write_str("broker refused the connection: not authorised")
            }
            Error::SubscribeRefused { index } => {
                write!(f, "broker refused subscription {index} (SUBACK 0x80)")
            }
            Error::Protocol(e) => write!(f, "protocol error from the broker: {e}"),
            Error::UnexpectedPacket(p) => write!(f, "unexpected {p} from the broker"),
            Error::UnexpectedPacketId {
                packet,
                expected,
                received,
            } => {
                write!(f, "{packet} for packet id {received}, expected {expected}")
            }
            Error::PacketTooLarge {
                packet,
                size,
                capacity,
            } => write!(
                f,
                "{packet} of {size} bytes does not fit the {capacity}-byte receive buffer"
            ),
            Error::SessionPresentOnCleanSession => f.write_str(
                "broker answered a clean session with \"session present\", which MQTT forbids",
            ),
            Error::MessageTooLarge { size, capacity } => write!(
                f,
                "message of {size} bytes skipped: the receive buffer holds {capacity}"
            ),
        }
    }
}

impl<E: fmt::Debug> core::error::Error for Error<E> {}
