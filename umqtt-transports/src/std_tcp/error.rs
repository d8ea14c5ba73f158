//! [`StdNetError`]: what went wrong, in the words of the std stack.

use core::fmt;

use embedded_nal::{TcpError, TcpErrorKind};
use std::io::{self, ErrorKind};
use std::string::String;

/// Errors of [`StdTcpStack`](super::StdTcpStack) and its [`StdSocket`](super::StdSocket)s.
///
/// Each variant says what happened to the connection; [`TcpError::kind`] sorts
/// them into "the connection is gone" ([`TcpErrorKind::PipeClosed`]) and the
/// rest.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum StdNetError {
    /// The socket has not been connected (or its connection was closed).
    NotConnected,
    /// `connect` was called on a socket that is already connected.
    AlreadyConnected,
    /// The connection was not established within the connect timeout.
    ConnectTimedOut,
    /// The peer refused the connection: nothing listens on that port.
    Refused,
    /// The peer closed the connection: reading returned end of file, or a write
    /// accepted no bytes.
    Closed,
    /// The peer reset the connection.
    Reset,
    /// The connection was aborted by the local network stack.
    Aborted,
    /// A write on a connection that is already closed for writing.
    BrokenPipe,
    /// The host or its network cannot be reached.
    Unreachable,
    /// An operation timed out.
    Timeout,
    /// The resolver could not look `host` up.
    Dns {
        /// The host name that was looked up.
        host: String,
        /// The resolver's explanation.
        message: String,
    },
    /// `host` resolved, but to no address of the requested type.
    NoAddress {
        /// The host name that was looked up.
        host: String,
    },
    /// The operation is not supported by this stack (reverse DNS lookups).
    Unsupported,
    /// Any other I/O error.
    Io(ErrorKind),
}

impl StdNetError {
    /// Maps an [`ErrorKind`] to the variant that describes it.
    ///
    /// `WouldBlock` is not an error in embedded-nal terms; the stack handles it
    /// before calling this and it ends up as [`StdNetError::Io`] if it ever
    /// arrives here.
    pub fn from_kind(kind: ErrorKind) -> Self {
        match kind {
            ErrorKind::NotConnected => Self::NotConnected,
            ErrorKind::ConnectionRefused => Self::Refused,
            ErrorKind::ConnectionReset => Self::Reset,
            ErrorKind::ConnectionAborted => Self::Aborted,
            ErrorKind::BrokenPipe => Self::BrokenPipe,
            ErrorKind::UnexpectedEof | ErrorKind::WriteZero => Self::Closed,
            ErrorKind::TimedOut => Self::Timeout,
            ErrorKind::HostUnreachable | ErrorKind::NetworkUnreachable | ErrorKind::NetworkDown => {
                Self::Unreachable
            }
            other => Self::Io(other),
        }
    }
}

impl From<io::Error> for StdNetError {
    fn from(e: io::Error) -> Self {
        Self::from_kind(e.kind())
    }
}

impl fmt::Display for StdNetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::NotConnected => f.write_str("socket is not connected"),
            Self::AlreadyConnected => f.write_str("socket is already connected"),
            Self::ConnectTimedOut => f.write_str("connect timed out"),
            Self::Refused => f.write_str("connection refused (nothing listening on that port)"),
            Self::Closed => f.write_str("connection closed by peer (EOF)"),
            Self::Reset => f.write_str("connection reset by peer"),
            Self::Aborted => f.write_str("connection aborted"),
            Self::BrokenPipe => f.write_str("broken pipe: the connection is closed for writing"),
            Self::Unreachable => f.write_str("host or network unreachable"),
            Self::Timeout => f.write_str("operation timed out"),
            Self::Dns { host, message } => write!(f, "DNS lookup of `{host}` failed: {message}"),
            Self::NoAddress { host } => {
                write!(f, "`{host}` has no address of the requested type")
            }
            Self::Unsupported => f.write_str(
                "operation not supported by the std stack (no reverse DNS without libc)",
            ),
            Self::Io(kind) => write!(f, "I/O error: {kind}"),
        }
    }
}

impl core::error::Error for StdNetError {}

impl TcpError for StdNetError {
    fn kind(&self) -> TcpErrorKind {
        match self {
            Self::Closed | Self::Reset | Self::NotConnected | Self::Aborted | Self::BrokenPipe => {
                TcpErrorKind::PipeClosed
            }
            _ => TcpErrorKind::Other,
        }
    }
}
