//! [`StdSocket`]: a stream, and what [`StdWait`] read ahead into it.

use core::fmt;
use core::net::SocketAddr;

use std::net::TcpStream;

use super::*;

/// A TCP socket of [`StdTcpStack`]: unconnected until
/// [`connect`](embedded_nal::TcpClientStack::connect), then a [`std::net::TcpStream`] that
/// `send` and `receive` use without blocking.
///
/// It also holds what [`StdWait`] read while waiting (up to 256 bytes, inline),
/// which the next `receive` hands over, and the receive timeout last set on the
/// stream. See the [module docs](crate::std_tcp).
#[derive(Debug, Default)]
pub struct StdSocket {
    pub(super) stream: Option<TcpStream>,
    /// Bytes [`StdWait`] read while waiting; `receive` hands them over first.
    pub(super) stash: Stash,
    /// An error (or end of file) [`StdWait`] saw while waiting; the next
    /// `receive` reports it, after the stashed bytes.
    pub(super) pending: Option<StdNetError>,
    /// The receive timeout (`SO_RCVTIMEO`) last set on `stream`, in
    /// milliseconds; `None` while unknown (none set, or setting it failed).
    pub(super) read_timeout_ms: Option<u32>,
    /// The last wait's receive timeout expired with nothing read: the next
    /// wait is the rest of the same wait, and polls.
    pub(super) read_timed_out: bool,
}

/// How many bytes [`StdWait`] reads ahead into a socket: an acknowledgement or
/// a typical small message fits; the rest of a larger message stays in the
/// kernel, and `receive` reads it on.
pub(super) const STASH_LEN: usize = 256;

/// Bytes read ahead of `receive`: `buf[start..end]` is what has not been
/// handed over yet.
pub(super) struct Stash {
    pub(super) buf: [u8; STASH_LEN],
    pub(super) start: usize,
    pub(super) end: usize,
}

impl Default for Stash {
    fn default() -> Self {
        Self {
            buf: [0; STASH_LEN],
            start: 0,
            end: 0,
        }
    }
}

impl fmt::Debug for Stash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Stash").field("len", &self.len()).finish()
    }
}

impl Stash {
    /// The bytes not handed over yet.
    pub(super) fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// How many bytes are waiting.
    pub(super) fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether no bytes are waiting.
    pub(super) fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    /// Copies as many waiting bytes as fit into `out` and drops them from the
    /// stash; how many.
    pub(super) fn take_into(&mut self, out: &mut [u8]) -> usize {
        let data = self.data();
        let n = data.len().min(out.len());
        if let (Some(to), Some(from)) = (out.get_mut(..n), data.get(..n)) {
            to.copy_from_slice(from);
        }
        self.start += n;
        if self.start >= self.end {
            self.clear();
        }
        n
    }

    /// Drops every waiting byte.
    pub(super) fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The whole buffer to read into; only when empty (then [`Stash::filled`]).
    pub(super) fn space(&mut self) -> &mut [u8] {
        self.clear();
        &mut self.buf
    }

    /// Marks the first `n` bytes of [`Stash::space`] as read (at most its
    /// length).
    pub(super) fn filled(&mut self, n: usize) {
        self.start = 0;
        self.end = n.min(STASH_LEN);
    }
}

impl StdSocket {
    /// A new, unconnected socket (what [`TcpClientStack::socket`](embedded_nal::TcpClientStack::socket) returns).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether the socket holds a connection (it may since have been closed by
    /// the peer; `receive` tells).
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// The remote address, if connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.as_ref().and_then(|s| s.peer_addr().ok())
    }

    /// The local address, if connected.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.stream.as_ref().and_then(|s| s.local_addr().ok())
    }
}
