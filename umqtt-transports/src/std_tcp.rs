//! A TCP stack, a clock and a sleeping waiter over `std` (feature `std`).
//!
//! - [`StdTcpStack`] implements [`embedded_nal::TcpClientStack`] and
//!   [`embedded_nal::Dns`] over [`std::net::TcpStream`]; its sockets are
//!   [`StdSocket`]s and its errors [`StdNetError`]s.
//! - [`StdClock`] implements [`Clock`] with [`std::time::Instant`].
//! - [`StdWait`] implements [`Wait`] by sleeping in the kernel until data
//!   arrives or the timeout passes, reading what arrives into the socket.
//!
//! # Design
//!
//! **Non-blocking per call.** embedded-nal's `receive` and `send` must not
//! block. Rather than switching the stream's mode back and forth (two system
//! calls each time), every `receive` that reads the socket is one
//! `recv(MSG_DONTWAIT)` and every `send` one `send(MSG_DONTWAIT | MSG_NOSIGNAL)`,
//! through the safe API of [`rustix`] (std offers neither the flags nor `poll`;
//! this crate forbids `unsafe`). The stream itself stays in blocking mode and has
//! `TCP_NODELAY`, since MQTT packets are small and latency matters more than
//! segment count. `connect` and DNS lookups block: [`TcpClientStack::connect`]
//! for at most the connect timeout, and it never returns `WouldBlock`; DNS
//! lookups in the system resolver. Needs a Unix target (`MSG_DONTWAIT`).
//!
//! **One system call per wait.** A client waits for a reply after each request
//! (a PUBACK, a SUBACK, a PINGRESP). A waiter that only watched the socket
//! (`poll(2)`) would cost a second system call, the `recv` that then reads the
//! reply. [`StdWait`] instead blocks in one `recv` itself, bounded by the wait
//! timeout through the socket's receive timeout (`SO_RCVTIMEO`), and keeps
//! what it read in a small stash inside the [`StdSocket`] (256 bytes, no heap:
//! an acknowledgement or a typical small message fits; the rest of a larger
//! message stays in the kernel for `receive`). The next `receive` hands the
//! stashed bytes over without a system call. So a request and its reply cost
//! one `send` and one blocking `recv`, as a blocking socket would. Setting the
//! receive timeout is a system call too, so the waiter keeps the last one it
//! set and reuses it while it is a little shorter than the wait asked for: the
//! [`Wait`] contract allows returning early, and the caller then waits again
//! for the rest (see [`StdWait`] for the exact rule). Waits shorter than 50 ms
//! use one `poll(2)` instead, which the kernel times more precisely.
//!
//! **No busy-spin, ever.** A non-blocking socket tempts callers into loops that
//! burn a CPU. Two places could spin, and both sleep in the kernel instead:
//!
//! - `send` when the kernel send buffer is full (a large payload, a slow peer):
//!   instead of returning `WouldBlock` at once (which callers would retry
//!   immediately), it waits for room (`poll(2)` for `POLLOUT`) up to the write
//!   timeout and writes again. It returns `WouldBlock` only if no room came in
//!   that time.
//! - [`StdWait`], between two `receive` calls that found nothing: it blocks in
//!   the kernel until data, end of file or an error arrives, or the wait
//!   timeout passes.
//!
//! **End of file is an error.** `read` returning `Ok(0)` means the peer closed its
//! side. embedded-nal gives `Ok(0)` no meaning, and a client that treated it as
//! "no data yet" would poll a dead connection forever, so `receive` reports it as
//! [`StdNetError::Closed`] (kind [`TcpErrorKind::PipeClosed`]). `receive` returns
//! `Ok(0)` only for an empty buffer.
//!
//! # Example
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::{SocketAddr, TcpListener};
//!
//! use embedded_nal::TcpClientStack;
//! use umqtt_transports::Wait;
//! use umqtt_transports::std_tcp::{StdTcpStack, StdWait};
//!
//! // A loopback peer that answers "ping" with "pong".
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr: SocketAddr = listener.local_addr()?;
//! let peer = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     let mut buf = [0u8; 4];
//!     conn.read_exact(&mut buf)?;
//!     assert_eq!(&buf, b"ping");
//!     conn.write_all(b"pong")
//! });
//!
//! let mut stack = StdTcpStack::new();
//! let mut socket = stack.socket()?;
//! nb::block!(stack.connect(&mut socket, addr))?;
//!
//! let mut sent = 0;
//! while sent < 4 {
//!     sent += nb::block!(stack.send(&mut socket, &b"ping"[sent..]))?;
//! }
//!
//! // Receive "pong", sleeping (not spinning) while nothing has arrived.
//! let mut wait = StdWait::new();
//! let mut buf = [0u8; 4];
//! let mut got = 0;
//! while got < 4 {
//!     match stack.receive(&mut socket, &mut buf[got..]) {
//!         Ok(n) => got += n,
//!         Err(nb::Error::WouldBlock) => wait.wait_readable(&mut stack, &mut socket, 1000),
//!         Err(nb::Error::Other(e)) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(&buf, b"pong");
//!
//! stack.close(socket)?;
//! peer.join().expect("peer thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::fmt;
use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use embedded_nal::{AddrType, Dns, TcpClientStack, TcpError, TcpErrorKind};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{RecvFlags, SendFlags};
use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpStream, ToSocketAddrs};
use std::string::{String, ToString};
use std::time::Instant;

use crate::{Clock, Wait};

/// The smallest timeout handed to the OS: `std` rejects a zero duration.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Errors of [`StdTcpStack`] and its [`StdSocket`]s.
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

/// A TCP socket of [`StdTcpStack`]: unconnected until
/// [`connect`](TcpClientStack::connect), then a [`std::net::TcpStream`] that
/// `send` and `receive` use without blocking.
///
/// It also holds what [`StdWait`] read while waiting (up to 256 bytes, inline),
/// which the next `receive` hands over, and the receive timeout last set on the
/// stream. See the [module docs](self).
#[derive(Debug, Default)]
pub struct StdSocket {
    stream: Option<TcpStream>,
    /// Bytes [`StdWait`] read while waiting; `receive` hands them over first.
    stash: Stash,
    /// An error (or end of file) [`StdWait`] saw while waiting; the next
    /// `receive` reports it, after the stashed bytes.
    pending: Option<StdNetError>,
    /// The receive timeout (`SO_RCVTIMEO`) last set on `stream`, in
    /// milliseconds; `None` while unknown (none set, or setting it failed).
    read_timeout_ms: Option<u32>,
    /// The last wait's receive timeout expired with nothing read: the next
    /// wait is the rest of the same wait, and polls.
    read_timed_out: bool,
}

/// How many bytes [`StdWait`] reads ahead into a socket: an acknowledgement or
/// a typical small message fits; the rest of a larger message stays in the
/// kernel, and `receive` reads it on.
const STASH_LEN: usize = 256;

/// Bytes read ahead of `receive`: `buf[start..end]` is what has not been
/// handed over yet.
struct Stash {
    buf: [u8; STASH_LEN],
    start: usize,
    end: usize,
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
    fn data(&self) -> &[u8] {
        self.buf.get(self.start..self.end).unwrap_or_default()
    }

    /// How many bytes are waiting.
    fn len(&self) -> usize {
        self.data().len()
    }

    /// Whether no bytes are waiting.
    fn is_empty(&self) -> bool {
        self.data().is_empty()
    }

    /// Copies as many waiting bytes as fit into `out` and drops them from the
    /// stash; how many.
    fn take_into(&mut self, out: &mut [u8]) -> usize {
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
    fn clear(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// The whole buffer to read into; only when empty (then [`Stash::filled`]).
    fn space(&mut self) -> &mut [u8] {
        self.clear();
        &mut self.buf
    }

    /// Marks the first `n` bytes of [`Stash::space`] as read (at most its
    /// length).
    fn filled(&mut self, n: usize) {
        self.start = 0;
        self.end = n.min(STASH_LEN);
    }
}

impl StdSocket {
    /// A new, unconnected socket (what [`TcpClientStack::socket`] returns).
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

/// An [`embedded_nal::TcpClientStack`] and [`embedded_nal::Dns`] over
/// `std::net`.
///
/// Connected streams have `TCP_NODELAY`; `send` and `receive` never block in the
/// kernel except as said here. `connect` blocks for
/// at most [`connect_timeout`](Self::connect_timeout); `send` blocks for at most
/// [`write_timeout`](Self::write_timeout), and only when the kernel send buffer
/// is full. See the [module docs](self) for why.
///
/// ```
/// use core::time::Duration;
/// use umqtt_transports::std_tcp::StdTcpStack;
///
/// let stack = StdTcpStack::new()
///     .with_connect_timeout(Duration::from_secs(3))
///     .with_write_timeout(Duration::from_secs(5));
/// assert_eq!(stack.connect_timeout(), Duration::from_secs(3));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdTcpStack {
    connect_timeout: Duration,
    write_timeout: Duration,
}

impl Default for StdTcpStack {
    fn default() -> Self {
        Self::new()
    }
}

impl StdTcpStack {
    /// The default connect timeout: 10 s.
    pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// The default write timeout: 10 s.
    pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

    /// A stack with the default timeouts.
    pub const fn new() -> Self {
        Self {
            connect_timeout: Self::DEFAULT_CONNECT_TIMEOUT,
            write_timeout: Self::DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// Sets how long `connect` may block (a zero duration counts as 1 ms).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// Sets how long `send` may block when the kernel send buffer is full before
    /// it returns `WouldBlock` (a zero duration counts as 1 ms).
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// How long `connect` may block.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// How long `send` may block when the kernel send buffer is full.
    pub fn write_timeout(&self) -> Duration {
        self.write_timeout
    }

    /// The send buffer is full: waits in `poll(2)` for room up to the write
    /// timeout and writes again. `WouldBlock` only if no byte could be written
    /// in that time.
    fn send_when_room(&self, stream: &TcpStream, buffer: &[u8]) -> nb::Result<usize, StdNetError> {
        let deadline = Instant::now() + self.write_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                // The peer does not read. Let the caller decide.
                log::trace!("send: nothing written within {:?}", self.write_timeout);
                return Err(nb::Error::WouldBlock);
            }
            match poll_one(stream, PollFlags::OUT, left) {
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(other(e)),
            }
            // Room, an error or a hang-up (the write reports those), or the
            // timeout (the write finds the buffer still full).
            match send_now(stream, buffer) {
                Err(nb::Error::WouldBlock) => {}
                r => return r,
            }
        }
    }
}

/// One non-blocking `send`; `WouldBlock` if the send buffer is full.
fn send_now(stream: &TcpStream, buffer: &[u8]) -> nb::Result<usize, StdNetError> {
    loop {
        match rustix::net::send(stream, buffer, SEND_FLAGS) {
            Ok(0) => return Err(nb::Error::Other(StdNetError::Closed)),
            Ok(n) => return Ok(n),
            Err(e) => match io::Error::from(e) {
                e if e.kind() == ErrorKind::Interrupted => {}
                e if e.kind() == ErrorKind::WouldBlock => return Err(nb::Error::WouldBlock),
                e => return Err(other(e)),
            },
        }
    }
}

/// `send` flags: never block, and no `SIGPIPE` on a closed connection (Apple
/// has no `MSG_NOSIGNAL`; std sets `SO_NOSIGPIPE` on its sockets there).
#[cfg(not(target_vendor = "apple"))]
const SEND_FLAGS: SendFlags = SendFlags::DONTWAIT.union(SendFlags::NOSIGNAL);
#[cfg(target_vendor = "apple")]
const SEND_FLAGS: SendFlags = SendFlags::DONTWAIT;

/// One `poll(2)` on `stream` for `events`, for at most `timeout`; the number of
/// ready descriptors (0 on timeout).
fn poll_one(stream: &TcpStream, events: PollFlags, timeout: Duration) -> io::Result<usize> {
    let mut fds = [PollFd::new(stream, events)];
    // Durations too long for a `timespec` wait forever (they cannot happen here:
    // timeouts are at most `u32::MAX` ms or a `Duration` the caller chose).
    let timeout = Timespec::try_from(timeout).ok();
    Ok(poll(&mut fds, timeout.as_ref())?)
}

/// An I/O error as an `nb` error that is not `WouldBlock`.
fn other(e: io::Error) -> nb::Error<StdNetError> {
    nb::Error::Other(StdNetError::from(e))
}

impl TcpClientStack for StdTcpStack {
    type TcpSocket = StdSocket;
    type Error = StdNetError;

    /// Returns a new unconnected [`StdSocket`]; never fails.
    fn socket(&mut self) -> Result<StdSocket, StdNetError> {
        Ok(StdSocket::new())
    }

    /// Connects, blocking for at most the connect timeout; never returns
    /// `WouldBlock`. Fails with [`StdNetError::AlreadyConnected`] if `socket` is
    /// connected.
    fn connect(
        &mut self,
        socket: &mut StdSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), StdNetError> {
        if socket.stream.is_some() {
            return Err(nb::Error::Other(StdNetError::AlreadyConnected));
        }
        let stream = TcpStream::connect_timeout(&remote, self.connect_timeout).map_err(|e| {
            log::debug!("connect to {remote} failed: {e}");
            match e.kind() {
                ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                    nb::Error::Other(StdNetError::ConnectTimedOut)
                }
                _ => other(e),
            }
        })?;
        // The stream stays in blocking mode: `send` and `receive` pass
        // `MSG_DONTWAIT` on each call.
        stream.set_nodelay(true).map_err(other)?;
        log::debug!("connected to {remote}");
        socket.stream = Some(stream);
        socket.stash.clear();
        socket.pending = None;
        socket.read_timeout_ms = None;
        socket.read_timed_out = false;
        Ok(())
    }

    /// Writes what the kernel accepts. When its send buffer is full, waits (in
    /// the kernel) up to the write timeout for room; returns `WouldBlock` only
    /// if nothing could be written in that time.
    fn send(&mut self, socket: &mut StdSocket, buffer: &[u8]) -> nb::Result<usize, StdNetError> {
        let stream = socket
            .stream
            .as_ref()
            .ok_or(nb::Error::Other(StdNetError::NotConnected))?;
        if buffer.is_empty() {
            return Ok(0);
        }
        match send_now(stream, buffer) {
            Err(nb::Error::WouldBlock) => self.send_when_room(stream, buffer),
            r => r,
        }
    }

    /// Reads what has arrived; `WouldBlock` if nothing has. End of file is
    /// [`StdNetError::Closed`], never `Ok(0)` (unless `buffer` is empty).
    ///
    /// Bytes [`StdWait`] read while waiting come first, without a system call
    /// (as many as fit; the next call returns the rest, then reads the socket);
    /// then an error or end of file it saw; then one `recv(MSG_DONTWAIT)`.
    fn receive(
        &mut self,
        socket: &mut StdSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, StdNetError> {
        if !socket.stash.is_empty() {
            return Ok(socket.stash.take_into(buffer));
        }
        if let Some(e) = socket.pending.take() {
            return Err(nb::Error::Other(e));
        }
        let stream = socket
            .stream
            .as_ref()
            .ok_or(nb::Error::Other(StdNetError::NotConnected))?;
        if buffer.is_empty() {
            return Ok(0);
        }
        loop {
            // `(bytes read, bytes received)`: the same without `MSG_TRUNC`.
            match rustix::net::recv(stream, &mut *buffer, RecvFlags::DONTWAIT) {
                Ok((0, _)) => return Err(nb::Error::Other(StdNetError::Closed)),
                Ok((n, _)) => return Ok(n),
                Err(e) => match io::Error::from(e) {
                    e if e.kind() == ErrorKind::Interrupted => {}
                    e if e.kind() == ErrorKind::WouldBlock => return Err(nb::Error::WouldBlock),
                    e => return Err(other(e)),
                },
            }
        }
    }

    /// Shuts the connection down both ways and drops it, with any bytes
    /// [`StdWait`] read ahead. Never fails: errors from shutting down a dead
    /// connection are ignored.
    fn close(&mut self, socket: StdSocket) -> Result<(), StdNetError> {
        if let Some(stream) = socket.stream
            && let Err(e) = stream.shutdown(Shutdown::Both)
        {
            log::trace!("close: shutdown failed (ignored): {e}");
        }
        Ok(())
    }
}

impl Dns for StdTcpStack {
    type Error = StdNetError;

    /// Resolves `hostname` with the system resolver (blocking; never returns
    /// `WouldBlock`) and returns its first address of the requested type;
    /// [`AddrType::Either`] prefers IPv4. IP literals (`127.0.0.1`, `::1`,
    /// `[::1]`) are returned without a lookup.
    fn get_host_by_name(
        &mut self,
        hostname: &str,
        addr_type: AddrType,
    ) -> nb::Result<IpAddr, StdNetError> {
        let unbracketed = hostname
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(hostname);
        let found = if let Ok(ip) = unbracketed.parse::<IpAddr>() {
            pick(core::iter::once(ip), &addr_type)
        } else {
            let addrs = (hostname, 0u16).to_socket_addrs().map_err(|e| {
                nb::Error::Other(StdNetError::Dns {
                    host: hostname.to_string(),
                    message: e.to_string(),
                })
            })?;
            pick(addrs.map(|a| a.ip()), &addr_type)
        };
        found.ok_or_else(|| {
            nb::Error::Other(StdNetError::NoAddress {
                host: hostname.to_string(),
            })
        })
    }

    /// Always [`StdNetError::Unsupported`]: `std` cannot reverse-resolve without
    /// `libc`.
    fn get_host_by_address(
        &mut self,
        _addr: IpAddr,
        _result: &mut [u8],
    ) -> nb::Result<usize, StdNetError> {
        Err(nb::Error::Other(StdNetError::Unsupported))
    }
}

/// The first address of the wanted type; for `Either` the first IPv4 address,
/// else the first IPv6 one.
fn pick(addrs: impl Iterator<Item = IpAddr>, addr_type: &AddrType) -> Option<IpAddr> {
    let mut first_v6 = None;
    for ip in addrs {
        match (addr_type, ip) {
            (AddrType::IPv4 | AddrType::Either, IpAddr::V4(_)) => return Some(ip),
            (AddrType::IPv6, IpAddr::V6(_)) => return Some(ip),
            (AddrType::Either, IpAddr::V6(_)) if first_v6.is_none() => first_v6 = Some(ip),
            _ => {}
        }
    }
    first_v6
}

/// A [`Clock`] over [`std::time::Instant`]: milliseconds since the clock was
/// created.
///
/// ```
/// use umqtt_transports::Clock;
/// use umqtt_transports::std_tcp::StdClock;
///
/// let clock = StdClock::new();
/// let t0 = clock.now_ms();
/// std::thread::sleep(std::time::Duration::from_millis(5));
/// assert!(clock.now_ms() >= t0 + 5);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StdClock {
    start: Instant,
}

impl StdClock {
    /// A clock that starts at (about) zero now.
    pub fn new() -> Self {
        Self {
            start: Instant::now(),
        }
    }
}

impl Default for StdClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for StdClock {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX)
    }
}

/// A [`Wait`] for [`StdTcpStack`] that sleeps in the kernel until data arrives
/// on the socket (or end of file, or an error) or the timeout passes, and reads
/// what arrived into the socket.
///
/// One wait is one system call: a blocking `recv` of up to 256 bytes into the
/// [`StdSocket`]'s stash, bounded by the socket's receive timeout
/// (`SO_RCVTIMEO`). The next `receive` hands the stashed bytes over without a
/// system call, so a reply costs one `recv`, not a `poll` and a `recv`. End
/// of file and connection errors seen by the wait are kept in the socket and
/// reported by `receive` after the stashed bytes. If the stash holds bytes or
/// an error is kept, the wait returns at once.
///
/// **The receive timeout.** Setting it is a system call of its own, so the
/// waiter keeps the one it set last and reuses it while it suits the wait.
/// The kernel's timer wheel rounds a socket timeout up to ticks (up to 10 ms)
/// and may fire it up to an eighth late (Linux). So for a wait of `t` ms
/// (capped at one minute), with `b = t - 20`, a timeout between `b/2` and
/// `7b/8` suits it: it expires before `t` has passed, and not before about
/// half of it. When the one set last does not suit, `3b/4` is set; that
/// suits the caller's remaining time while it shrinks by up to a seventh or
/// grows by up to a half, so a client that waits for reply after reply with
/// about the same timeout sets it once per connection. Expiring early is
/// allowed by the [`Wait`] contract: the caller checks its deadline and waits
/// again for the rest.
///
/// Waits shorter than 50 ms, the rest of a wait whose receive timeout expired
/// early, and any wait if the receive timeout cannot be set, are one `poll(2)`
/// for `POLLIN` instead (timed precisely; it reads nothing, the next `receive`
/// does). So an idle client blocked until keepalive wakes twice per wait, not
/// once per halving of it. A zero timeout returns at once; on an
/// unconnected socket the wait sleeps for the timeout, so a caller never
/// spins. A signal may end the wait early.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct StdWait;

impl StdWait {
    /// A new waiter.
    pub const fn new() -> Self {
        Self
    }
}

/// The coarsest timer tick of the kernels this runs on (Linux with `HZ=100`,
/// XNU): a socket timeout is rounded up to whole ticks.
const TICK_MS: u32 = 10;

/// Waits shorter than this are one `poll(2)`: its timer is precise, while a
/// receive timeout may expire up to two ticks late, a large share of a short
/// wait.
const SHORT_WAIT_MS: u32 = 50;

/// The longest receive timeout the waiter sets: one minute, which every
/// platform accepts. A longer wait ends after it, early; the caller waits
/// again.
const MAX_READ_TIMEOUT_MS: u32 = 60_000;

/// The receive timeouts (`SO_RCVTIMEO`) that suit a wait, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReadTimeouts {
    /// The shortest that may be reused: it ends the wait at worst half way.
    shortest: u32,
    /// The one to set when the last one set does not suit.
    best: u32,
    /// The longest that still expires within the wait, timer slack included.
    longest: u32,
}

impl ReadTimeouts {
    /// The timeouts for a wait of `wait_ms`, at least [`SHORT_WAIT_MS`] (see
    /// [`StdWait`] for the rule).
    fn for_wait(wait_ms: u32) -> Self {
        let base = wait_ms
            .min(MAX_READ_TIMEOUT_MS)
            .saturating_sub(2 * TICK_MS)
            .max(1);
        Self {
            shortest: (base / 2).max(1),
            best: (base - base / 4).max(1),
            longest: base - base.div_ceil(8),
        }
    }

    /// Whether a receive timeout of `ms` suits the wait.
    fn suits(&self, ms: u32) -> bool {
        (self.shortest..=self.longest).contains(&ms)
    }
}

impl Wait<StdTcpStack> for StdWait {
    /// Sleeps the thread for `timeout_ms`.
    fn idle(&mut self, _stack: &mut StdTcpStack, timeout_ms: u32) {
        std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
    }

    fn wait_readable(&mut self, _stack: &mut StdTcpStack, socket: &mut StdSocket, timeout_ms: u32) {
        if timeout_ms == 0 {
            return;
        }
        let Some(stream) = socket.stream.as_ref() else {
            std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
            return;
        };
        if !socket.stash.is_empty() || socket.pending.is_some() {
            // The next `receive` returns at once.
            return;
        }
        if core::mem::take(&mut socket.read_timed_out) || timeout_ms < SHORT_WAIT_MS {
            poll_readable(stream, &mut socket.pending, timeout_ms);
            return;
        }
        let timeouts = ReadTimeouts::for_wait(timeout_ms);
        if !socket.read_timeout_ms.is_some_and(|ms| timeouts.suits(ms)) {
            let set = Duration::from_millis(u64::from(timeouts.best));
            if let Err(e) = stream.set_read_timeout(Some(set)) {
                log::trace!("wait_readable: cannot set a receive timeout ({e}); polling");
                socket.read_timeout_ms = None;
                poll_readable(stream, &mut socket.pending, timeout_ms);
                return;
            }
            socket.read_timeout_ms = Some(timeouts.best);
        }
        // Blocking: the stream is in blocking mode and no `MSG_DONTWAIT`.
        match rustix::net::recv(stream, socket.stash.space(), RecvFlags::empty()) {
            Ok((0, _)) => socket.pending = Some(StdNetError::Closed),
            Ok((n, _)) => socket.stash.filled(n),
            Err(e) => match io::Error::from(e) {
                // The receive timeout expired (`EAGAIN`): the caller checks its
                // deadline and waits for the rest, by `poll`, timed precisely.
                e if e.kind() == ErrorKind::WouldBlock => socket.read_timed_out = true,
                // A signal: return, the caller checks its deadline and waits again.
                e if e.kind() == ErrorKind::Interrupted => {}
                e => {
                    log::trace!("wait_readable: {e} (reported by the next receive)");
                    socket.pending = Some(StdNetError::from(e));
                }
            },
        }
    }
}

/// One `poll(2)` on `stream` for `POLLIN`, for at most `timeout_ms`; reads
/// nothing. An error of `poll` itself goes to `pending`; a signal ends the wait.
fn poll_readable(stream: &TcpStream, pending: &mut Option<StdNetError>, timeout_ms: u32) {
    let timeout = Duration::from_millis(u64::from(timeout_ms));
    match poll_one(stream, PollFlags::IN, timeout) {
        // Readable (data, end of file, an error) or the timeout passed.
        Ok(_) => {}
        // A signal: return early, the caller checks again.
        Err(e) if e.kind() == ErrorKind::Interrupted => {}
        Err(e) => {
            log::trace!("wait_readable: {e} (reported by the next receive)");
            *pending = Some(StdNetError::from(e));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::thread;
    use std::vec;
    use std::vec::Vec;

    /// A listener on a free loopback port.
    fn listener() -> (TcpListener, SocketAddr) {
        let l = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let a = l.local_addr().expect("local addr");
        (l, a)
    }

    /// A stack, a socket connected to a fresh loopback listener, and the
    /// accepted server side.
    fn connected() -> (StdTcpStack, StdSocket, TcpStream) {
        let (l, addr) = listener();
        let mut stack = StdTcpStack::new();
        let mut socket = stack.socket().expect("socket");
        stack.connect(&mut socket, addr).expect("connect");
        let (server, _) = l.accept().expect("accept");
        (stack, socket, server)
    }

    fn other_err<T: fmt::Debug>(r: nb::Result<T, StdNetError>) -> StdNetError {
        match r {
            Err(nb::Error::Other(e)) => e,
            r => panic!("expected an error, got {r:?}"),
        }
    }

    #[test]
    fn receive_on_idle_socket_returns_would_block() {
        let (mut stack, mut socket, _server) = connected();
        let mut buf = [0u8; 16];
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }

    #[test]
    fn receive_returns_data_then_would_block() {
        let (mut stack, mut socket, mut server) = connected();
        server.write_all(b"hello").expect("write");
        let mut wait = StdWait::new();
        wait.wait_readable(&mut stack, &mut socket, 5000);
        let mut buf = [0u8; 16];
        let n = stack.receive(&mut socket, &mut buf).expect("data");
        assert_eq!(&buf[..n], b"hello");
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }

    #[test]
    fn receive_after_peer_closes_returns_closed_not_ok_zero() {
        let (mut stack, mut socket, server) = connected();
        drop(server);
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        let mut buf = [0u8; 16];
        let e = other_err(stack.receive(&mut socket, &mut buf));
        assert_eq!(e, StdNetError::Closed);
        assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
        assert_eq!(e.to_string(), "connection closed by peer (EOF)");
        // Still closed on the next call.
        assert_eq!(
            other_err(stack.receive(&mut socket, &mut buf)),
            StdNetError::Closed
        );
    }

    #[test]
    fn receive_with_empty_buffer_returns_ok_zero() {
        let (mut stack, mut socket, _server) = connected();
        assert_eq!(stack.receive(&mut socket, &mut []).expect("empty"), 0);
        assert_eq!(stack.send(&mut socket, &[]).expect("empty"), 0);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn peer_reset_is_reported_as_reset_after_a_wait() {
        let (mut stack, mut socket, server) = connected();
        nb::block!(stack.send(&mut socket, b"unread")).expect("send");
        // Give the bytes time to land in the server's receive queue, then close
        // it unread: Linux answers with RST.
        thread::sleep(Duration::from_millis(50));
        drop(server);
        // The wait's recv sees ECONNRESET; the next receive must report it.
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        let mut buf = [0u8; 16];
        let e = other_err(stack.receive(&mut socket, &mut buf));
        assert_eq!(e, StdNetError::Reset);
        assert_eq!(e.kind(), TcpErrorKind::PipeClosed);
    }

    #[test]
    fn send_after_peer_closes_eventually_fails_with_pipe_closed() {
        let (mut stack, mut socket, server) = connected();
        drop(server);
        let mut error = None;
        for _ in 0..100 {
            match stack.send(&mut socket, b"data") {
                Ok(_) | Err(nb::Error::WouldBlock) => thread::sleep(Duration::from_millis(10)),
                Err(nb::Error::Other(e)) => {
                    error = Some(e);
                    break;
                }
            }
        }
        let e = error.expect("send to a closed peer must fail");
        assert_eq!(e.kind(), TcpErrorKind::PipeClosed, "{e:?}");
    }

    #[test]
    fn connect_to_closed_loopback_port_gives_refused() {
        let (l, addr) = listener();
        drop(l);
        let mut stack = StdTcpStack::new().with_connect_timeout(Duration::from_secs(5));
        let mut socket = stack.socket().expect("socket");
        let e = other_err(stack.connect(&mut socket, addr));
        assert_eq!(e, StdNetError::Refused);
        assert_eq!(e.kind(), TcpErrorKind::Other);
        assert!(!socket.is_connected());
    }

    #[test]
    fn connect_sets_nodelay_and_addresses() {
        let (_stack, socket, server) = connected();
        assert!(socket.is_connected());
        assert_eq!(socket.peer_addr(), server.local_addr().ok());
        assert_eq!(socket.local_addr(), server.peer_addr().ok());
        let stream = socket.stream.as_ref().expect("stream");
        assert!(stream.nodelay().expect("nodelay"));
    }

    #[test]
    fn connect_on_connected_socket_gives_already_connected() {
        let (mut stack, mut socket, server) = connected();
        let addr = server.local_addr().expect("addr");
        assert_eq!(
            other_err(stack.connect(&mut socket, addr)),
            StdNetError::AlreadyConnected
        );
        assert!(socket.is_connected());
    }

    #[test]
    fn send_and_receive_on_unconnected_socket_give_not_connected() {
        let mut stack = StdTcpStack::default();
        let mut socket = stack.socket().expect("socket");
        assert!(!socket.is_connected());
        assert_eq!(socket.peer_addr(), None);
        assert_eq!(
            other_err(stack.send(&mut socket, b"x")),
            StdNetError::NotConnected
        );
        let mut buf = [0u8; 1];
        assert_eq!(
            other_err(stack.receive(&mut socket, &mut buf)),
            StdNetError::NotConnected
        );
        stack.close(socket).expect("close unconnected");
    }

    #[test]
    fn close_after_peer_is_gone_is_ok() {
        let (mut stack, socket, server) = connected();
        drop(server);
        thread::sleep(Duration::from_millis(20));
        stack.close(socket).expect("close");
    }

    #[test]
    fn wait_returns_soon_when_data_arrives() {
        let (mut stack, mut socket, mut server) = connected();
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            server.write_all(b"x").expect("write");
            server
        });
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "waited {took:?} for data due in 100 ms"
        );
        let mut buf = [0u8; 4];
        assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
        assert_eq!(buf[0], b'x');
        drop(writer.join().expect("writer"));
    }

    #[test]
    fn wait_returns_after_about_its_timeout_when_idle() {
        let (mut stack, mut socket, _server) = connected();
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 100);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "returned after {took:?}");
        assert!(took < Duration::from_secs(2), "returned after {took:?}");
        // The wait left nothing behind, and receive still does not block.
        let mut buf = [0u8; 4];
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }

    #[test]
    fn wait_returns_at_once_when_data_is_already_there_or_peer_closed() {
        let (mut stack, mut socket, mut server) = connected();
        server.write_all(b"y").expect("write");
        thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        assert!(started.elapsed() < Duration::from_secs(1));
        let mut buf = [0u8; 4];
        assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
        drop(server);
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        assert!(started.elapsed() < Duration::from_secs(1));
        assert_eq!(
            other_err(stack.receive(&mut socket, &mut buf)),
            StdNetError::Closed
        );
    }

    #[test]
    fn connected_stream_stays_blocking_and_receive_still_does_not_block() {
        let (mut stack, mut socket, _server) = connected();
        // `set_nonblocking` is never called after connect; MSG_DONTWAIT does it.
        let started = Instant::now();
        let mut buf = [0u8; 4];
        for _ in 0..100 {
            assert!(matches!(
                stack.receive(&mut socket, &mut buf),
                Err(nb::Error::WouldBlock)
            ));
        }
        assert!(started.elapsed() < Duration::from_secs(1));
    }

    #[test]
    fn wait_with_zero_timeout_returns_at_once() {
        let (mut stack, mut socket, _server) = connected();
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 0);
        assert!(started.elapsed() < Duration::from_millis(500));
    }

    #[test]
    fn wait_on_unconnected_socket_sleeps_for_the_timeout() {
        let mut stack = StdTcpStack::new();
        let mut socket = stack.socket().expect("socket");
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 100);
        let took = started.elapsed();
        assert!(took >= Duration::from_millis(50), "returned after {took:?}");
        assert!(took < Duration::from_secs(2), "returned after {took:?}");
    }

    /// The bytes `0, 1, .., 250, 0, 1, ..`: a stream whose order can be checked.
    fn pattern(len: usize) -> Vec<u8> {
        (0..len).map(|i| (i % 251) as u8).collect()
    }

    /// A peer that writes `data` in chunks of 1 to 700 bytes with short pauses
    /// (so that bytes arrive while the client waits, and while it reads), then
    /// keeps the connection open until the client is done.
    fn trickle(mut server: TcpStream, data: Vec<u8>) -> thread::JoinHandle<TcpStream> {
        thread::spawn(move || {
            let mut at = 0;
            let mut size = 1;
            while let Some(chunk) = data.get(at..(at + size).min(data.len())) {
                if chunk.is_empty() {
                    break;
                }
                server.write_all(chunk).expect("write");
                at += chunk.len();
                size = size * 7 % 701 + 1;
                thread::sleep(Duration::from_millis(1));
            }
            server
        })
    }

    /// Receives `len` bytes in calls with a 100-byte buffer, waiting between
    /// them: after each `WouldBlock` (as the client does), or before every
    /// call (`alternate`). Fails after 10 s.
    fn receive_all(
        stack: &mut StdTcpStack,
        socket: &mut StdSocket,
        len: usize,
        alternate: bool,
    ) -> Vec<u8> {
        let mut wait = StdWait::new();
        let mut got = Vec::new();
        let mut buf = [0u8; 100];
        let deadline = Instant::now() + Duration::from_secs(10);
        while got.len() < len {
            assert!(Instant::now() < deadline, "only {} bytes", got.len());
            if alternate {
                wait.wait_readable(stack, socket, 2000);
            }
            match stack.receive(socket, &mut buf) {
                Ok(n) => got.extend_from_slice(buf.get(..n).expect("n <= buffer")),
                Err(nb::Error::WouldBlock) if !alternate => {
                    wait.wait_readable(stack, socket, 2000);
                }
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => panic!("receive failed after {}: {e}", got.len()),
            }
        }
        got
    }

    #[test]
    fn data_arriving_during_waits_is_received_whole_and_in_order() {
        // 10 000 bytes, far more than the stash holds, read with a buffer
        // smaller than it: stashed and directly read bytes interleave.
        for alternate in [false, true] {
            let (mut stack, mut socket, server) = connected();
            let data = pattern(10_000);
            let peer = trickle(server, data.clone());
            let got = receive_all(&mut stack, &mut socket, data.len(), alternate);
            assert!(
                got == data,
                "bytes lost or reordered (alternate: {alternate})"
            );
            let _server = peer.join().expect("peer");
            let mut buf = [0u8; 16];
            assert!(matches!(
                stack.receive(&mut socket, &mut buf),
                Err(nb::Error::WouldBlock)
            ));
        }
    }

    #[test]
    fn receive_smaller_than_the_stashed_bytes_gets_them_in_pieces() {
        let (mut stack, mut socket, mut server) = connected();
        let data = pattern(200);
        server.write_all(&data).expect("write");
        thread::sleep(Duration::from_millis(50));
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        assert_eq!(socket.stash.len(), 200, "the wait reads what arrived");
        // More bytes behind the stash: a receive that empties the stash must
        // not read them in the same call.
        server.write_all(b"next").expect("write");
        thread::sleep(Duration::from_millis(50));
        assert_eq!(stack.receive(&mut socket, &mut []).expect("empty"), 0);
        let mut got = Vec::new();
        let mut buf = [0u8; 64];
        for expected in [64, 64, 64, 8] {
            let n = stack.receive(&mut socket, &mut buf).expect("stashed");
            assert_eq!(n, expected);
            got.extend_from_slice(buf.get(..n).expect("n <= buffer"));
        }
        assert_eq!(got, data);
        let n = stack
            .receive(&mut socket, &mut buf)
            .expect("from the socket");
        assert_eq!(buf.get(..n), Some(&b"next"[..]));
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }

    #[test]
    fn end_of_file_seen_by_the_wait_is_reported_after_the_stashed_bytes() {
        let (mut stack, mut socket, mut server) = connected();
        server.write_all(b"last words").expect("write");
        drop(server);
        thread::sleep(Duration::from_millis(50));
        let mut wait = StdWait::new();
        let mut buf = [0u8; 4];
        let mut got = Vec::new();
        let error = loop {
            // Waits before every receive: the wait sees end of file as soon as
            // the stash is empty, while bytes it read are still to be handed
            // over (and returns at once while they are).
            let started = Instant::now();
            wait.wait_readable(&mut stack, &mut socket, 5000);
            assert!(started.elapsed() < Duration::from_secs(2));
            match stack.receive(&mut socket, &mut buf) {
                Ok(n) => got.extend_from_slice(buf.get(..n).expect("n <= buffer")),
                Err(nb::Error::WouldBlock) => panic!("end of file is not WouldBlock"),
                Err(nb::Error::Other(e)) => break e,
            }
        };
        assert_eq!(got, b"last words");
        assert_eq!(error, StdNetError::Closed);
        assert_eq!(
            other_err(stack.receive(&mut socket, &mut buf)),
            StdNetError::Closed
        );
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn reset_arriving_during_a_wait_ends_it_and_is_reported_by_receive() {
        let (mut stack, mut socket, server) = connected();
        nb::block!(stack.send(&mut socket, b"unread")).expect("send");
        let mut buf = [0u8; 16];
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
        // The server closes with our bytes unread, while we wait: Linux
        // answers with RST.
        let closer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(100));
            drop(server);
        });
        let started = Instant::now();
        StdWait::new().wait_readable(&mut stack, &mut socket, 5000);
        let took = started.elapsed();
        closer.join().expect("closer");
        assert!(took < Duration::from_secs(2), "waited {took:?}");
        assert_eq!(socket.pending, Some(StdNetError::Reset), "seen by the wait");
        assert_eq!(
            other_err(stack.receive(&mut socket, &mut buf)),
            StdNetError::Reset
        );
    }

    #[test]
    fn wait_does_not_reuse_a_longer_receive_timeout_than_asked() {
        let (mut stack, mut socket, mut server) = connected();
        let mut wait = StdWait::new();
        // A long wait that data ends at once sets a long receive timeout.
        server.write_all(b"x").expect("write");
        wait.wait_readable(&mut stack, &mut socket, 10_000);
        let mut buf = [0u8; 4];
        assert_eq!(stack.receive(&mut socket, &mut buf).expect("data"), 1);
        // A short wait on the idle socket must not sleep that long (7.5 s).
        for timeout in [100, 60, 1000] {
            let started = Instant::now();
            wait.wait_readable(&mut stack, &mut socket, timeout);
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(u64::from(timeout) + 1500),
                "asked {timeout} ms, waited {took:?}"
            );
        }
    }

    #[test]
    fn repeated_waits_with_shrinking_timeouts_return_in_time_and_leave_the_socket_working() {
        let (mut stack, mut socket, mut server) = connected();
        let mut wait = StdWait::new();
        // As a caller's remaining time shrinks: through the receive-timeout
        // range, then the short waits (`poll`).
        let timeouts = (0..20)
            .map(|i| 100 - 5 * i)
            .chain((1..=5).rev().cycle().take(20));
        let mut buf = [0u8; 16];
        for timeout in timeouts {
            let started = Instant::now();
            wait.wait_readable(&mut stack, &mut socket, timeout);
            let took = started.elapsed();
            assert!(
                took < Duration::from_millis(u64::from(timeout) + 1000),
                "asked {timeout} ms, waited {took:?}"
            );
            assert!(matches!(
                stack.receive(&mut socket, &mut buf),
                Err(nb::Error::WouldBlock)
            ));
        }
        server.write_all(b"still here").expect("write");
        let got = receive_all(&mut stack, &mut socket, 10, false);
        assert_eq!(got, b"still here");
        nb::block!(stack.send(&mut socket, b"and so am I")).expect("send");
        let mut reply = [0u8; 11];
        server.read_exact(&mut reply).expect("read");
        assert_eq!(&reply, b"and so am I");
    }

    #[test]
    fn an_idle_wait_to_a_deadline_wakes_at_most_three_times() {
        let (mut stack, mut socket, _server) = connected();
        let mut wait = StdWait::new();
        let deadline = Instant::now() + Duration::from_millis(2_000);
        let mut wakes = 0;
        // What a client blocked until its keepalive does: wait for the rest.
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let ms = u32::try_from(left.as_millis()).unwrap_or(u32::MAX);
            if ms == 0 {
                break;
            }
            wait.wait_readable(&mut stack, &mut socket, ms);
            wakes += 1;
        }
        // One receive timeout (three quarters), then one poll for the rest
        // (and possibly a last one for a millisecond lost to rounding); a
        // waiter that set a new timeout for each rest would wake five times.
        assert!(wakes <= 3, "woke {wakes} times in a 2 s idle wait");
    }

    #[test]
    fn longer_wait_after_short_ones_is_honoured() {
        let (mut stack, mut socket, mut server) = connected();
        let mut wait = StdWait::new();
        wait.wait_readable(&mut stack, &mut socket, 5);
        // Leaves a short receive timeout (about 30 ms) set on the socket.
        wait.wait_readable(&mut stack, &mut socket, 60);
        let writer = thread::spawn(move || {
            thread::sleep(Duration::from_millis(150));
            server.write_all(b"late").expect("write");
            server
        });
        // A wait may return early, so wait and receive until a deadline.
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut waits = 0;
        let mut buf = [0u8; 8];
        let n = loop {
            assert!(Instant::now() < deadline, "no data after {waits} waits");
            waits += 1;
            wait.wait_readable(&mut stack, &mut socket, 300);
            match stack.receive(&mut socket, &mut buf) {
                Ok(n) => break n,
                Err(nb::Error::WouldBlock) => {}
                Err(nb::Error::Other(e)) => panic!("receive failed: {e}"),
            }
        };
        assert_eq!(buf.get(..n), Some(&b"late"[..]));
        // Each 300 ms wait sleeps at least 210 ms (kernel timers do not fire
        // early): one wait, more only if the writer is late by hundreds of
        // ms. Reusing the 30 ms timeout would take five or more.
        assert!(waits <= 4, "{waits} waits for data due in 150 ms");
        drop(writer.join().expect("writer"));
    }

    #[test]
    fn receive_timeout_set_once_suits_similar_and_slowly_shrinking_waits() {
        for wait_ms in [
            SHORT_WAIT_MS,
            51,
            100,
            1000,
            5000,
            30_000,
            60_000,
            70_000,
            u32::MAX,
        ] {
            let set = ReadTimeouts::for_wait(wait_ms).best;
            assert!(set >= 1 && set < wait_ms, "{wait_ms}: {set}");
            // The caller's remaining time shrinks by up to an eighth (past the
            // ticks reserved for timer slack) and the timeout is still reused.
            let capped = wait_ms.min(MAX_READ_TIMEOUT_MS);
            let shrink = (capped - 2 * TICK_MS) / 8;
            for later in [wait_ms, wait_ms - shrink / 2, wait_ms - shrink] {
                assert!(
                    ReadTimeouts::for_wait(later).suits(set),
                    "{wait_ms} ms sets {set}, unused for {later}"
                );
            }
            // A much longer wait sets a longer timeout.
            if let Some(longer) = capped.checked_mul(3).filter(|l| *l <= MAX_READ_TIMEOUT_MS) {
                assert!(!ReadTimeouts::for_wait(longer).suits(set), "{longer}");
            }
        }
    }

    #[test]
    fn receive_timeouts_that_suit_a_wait_expire_within_it() {
        // Linux's timer wheel rounds a socket timeout up to a tick (and
        // another for the tick in progress) and fires it up to 8/63 late: the
        // longest suitable timeout must still expire in time.
        let waits = (SHORT_WAIT_MS..2000)
            .chain((2000..200_000).step_by(997))
            .chain([u32::MAX - 1, u32::MAX]);
        for wait_ms in waits {
            let t = ReadTimeouts::for_wait(wait_ms);
            assert!(t.shortest >= 1, "{wait_ms}: {t:?}");
            assert!(
                t.shortest <= t.best && t.best <= t.longest,
                "{wait_ms}: {t:?}"
            );
            assert!(t.suits(t.best), "{wait_ms}: {t:?}");
            let longest = u64::from(t.longest);
            let worst = longest + (longest * 8).div_ceil(63) + u64::from(2 * TICK_MS);
            assert!(
                worst <= u64::from(wait_ms),
                "{wait_ms}: {t:?} may expire at {worst}"
            );
            // A reused timeout ends the wait at worst about half way.
            let capped = wait_ms.min(MAX_READ_TIMEOUT_MS);
            assert!(
                2 * t.shortest + 2 * TICK_MS + 1 >= capped,
                "{wait_ms}: {t:?}"
            );
        }
    }

    #[test]
    fn large_send_to_slow_reader_completes_without_error() {
        const LEN: usize = 8 * 1024 * 1024;
        let (mut stack, mut socket, mut server) = connected();
        let reader = thread::spawn(move || {
            let mut received = 0usize;
            let mut buf = vec![0u8; 64 * 1024];
            loop {
                let n = server.read(&mut buf).expect("read");
                if n == 0 {
                    break;
                }
                for (i, b) in buf[..n].iter().enumerate() {
                    assert_eq!(*b, ((received + i) % 251) as u8, "byte {}", received + i);
                }
                received += n;
                thread::sleep(Duration::from_millis(1));
            }
            received
        });
        let data: Vec<u8> = (0..LEN).map(|i| (i % 251) as u8).collect();
        let mut sent = 0;
        let mut calls = 0u32;
        let mut would_blocks = 0u32;
        while sent < LEN {
            calls += 1;
            match stack.send(&mut socket, &data[sent..]) {
                Ok(n) => {
                    assert!(n > 0);
                    sent += n;
                }
                Err(nb::Error::WouldBlock) => would_blocks += 1,
                Err(nb::Error::Other(e)) => panic!("send failed after {sent} bytes: {e}"),
            }
        }
        stack.close(socket).expect("close");
        assert_eq!(reader.join().expect("reader"), LEN);
        // A full send buffer makes `send` wait in the kernel, not return at once.
        assert_eq!(would_blocks, 0, "{calls} calls");
    }

    #[test]
    fn send_to_peer_that_never_reads_returns_would_block_after_write_timeout() {
        let (stack, mut socket, _server) = connected();
        let mut stack = stack.with_write_timeout(Duration::from_millis(200));
        let chunk = vec![0x55u8; 1024 * 1024];
        let mut outcome = None;
        for _ in 0..200 {
            let started = Instant::now();
            match stack.send(&mut socket, &chunk) {
                Ok(n) => assert!(n > 0),
                Err(nb::Error::WouldBlock) => {
                    outcome = Some(started.elapsed());
                    break;
                }
                Err(nb::Error::Other(e)) => panic!("send failed: {e}"),
            }
        }
        let took = outcome.expect("the buffers must fill up and send return WouldBlock");
        assert!(
            took >= Duration::from_millis(100),
            "WouldBlock after {took:?}"
        );
        assert!(took < Duration::from_secs(3), "WouldBlock after {took:?}");
        // Receive still does not block.
        let mut buf = [0u8; 4];
        assert!(matches!(
            stack.receive(&mut socket, &mut buf),
            Err(nb::Error::WouldBlock)
        ));
    }

    #[test]
    fn dns_of_localhost_returns_a_loopback_address() {
        let mut stack = StdTcpStack::new();
        let ip =
            nb::block!(stack.get_host_by_name("localhost", AddrType::Either)).expect("localhost");
        assert!(ip.is_loopback(), "{ip}");
        let ip =
            nb::block!(stack.get_host_by_name("localhost", AddrType::IPv4)).expect("localhost v4");
        assert!(ip.is_ipv4() && ip.is_loopback(), "{ip}");
    }

    #[test]
    fn dns_of_ip_literals_needs_no_lookup_and_honours_the_type() {
        let mut stack = StdTcpStack::new();
        let v4: IpAddr = "127.0.0.1".parse().expect("ip");
        let v6: IpAddr = "::1".parse().expect("ip");
        assert_eq!(
            stack.get_host_by_name("127.0.0.1", AddrType::Either),
            Ok(v4)
        );
        assert_eq!(stack.get_host_by_name("[::1]", AddrType::IPv6), Ok(v6));
        assert_eq!(stack.get_host_by_name("::1", AddrType::Either), Ok(v6));
        assert_eq!(
            other_err(stack.get_host_by_name("127.0.0.1", AddrType::IPv6)),
            StdNetError::NoAddress {
                host: "127.0.0.1".to_string()
            }
        );
    }

    #[test]
    fn pick_prefers_ipv4_for_either() {
        let v4: IpAddr = "127.0.0.1".parse().expect("ip");
        let v6: IpAddr = "::1".parse().expect("ip");
        assert_eq!(pick([v6, v4].into_iter(), &AddrType::Either), Some(v4));
        assert_eq!(pick([v6].into_iter(), &AddrType::Either), Some(v6));
        assert_eq!(pick([v4, v6].into_iter(), &AddrType::IPv6), Some(v6));
        assert_eq!(pick([v6].into_iter(), &AddrType::IPv4), None);
    }

    #[test]
    fn reverse_dns_is_unsupported() {
        let mut stack = StdTcpStack::new();
        let mut buf = [0u8; 255];
        let e = other_err(stack.get_host_by_address("127.0.0.1".parse().expect("ip"), &mut buf));
        assert_eq!(e, StdNetError::Unsupported);
    }

    #[test]
    fn io_error_kinds_map_to_descriptive_variants() {
        use ErrorKind as K;
        assert_eq!(
            StdNetError::from_kind(K::ConnectionRefused),
            StdNetError::Refused
        );
        assert_eq!(
            StdNetError::from_kind(K::ConnectionReset),
            StdNetError::Reset
        );
        assert_eq!(
            StdNetError::from_kind(K::ConnectionAborted),
            StdNetError::Aborted
        );
        assert_eq!(
            StdNetError::from_kind(K::BrokenPipe),
            StdNetError::BrokenPipe
        );
        assert_eq!(StdNetError::from_kind(K::TimedOut), StdNetError::Timeout);
        assert_eq!(
            StdNetError::from_kind(K::NotConnected),
            StdNetError::NotConnected
        );
        assert_eq!(
            StdNetError::from_kind(K::UnexpectedEof),
            StdNetError::Closed
        );
        assert_eq!(
            StdNetError::from_kind(K::HostUnreachable),
            StdNetError::Unreachable
        );
        assert_eq!(
            StdNetError::from_kind(K::PermissionDenied),
            StdNetError::Io(K::PermissionDenied)
        );
        for e in [
            StdNetError::Closed,
            StdNetError::Reset,
            StdNetError::NotConnected,
            StdNetError::Aborted,
            StdNetError::BrokenPipe,
        ] {
            assert_eq!(e.kind(), TcpErrorKind::PipeClosed, "{e:?}");
        }
        for e in [
            StdNetError::Refused,
            StdNetError::Timeout,
            StdNetError::Unsupported,
        ] {
            assert_eq!(e.kind(), TcpErrorKind::Other, "{e:?}");
        }
    }

    #[test]
    fn builder_sets_timeouts_and_clamps_zero() {
        let d = StdTcpStack::default();
        assert_eq!(d.connect_timeout(), Duration::from_secs(10));
        assert_eq!(d.write_timeout(), Duration::from_secs(10));
        let s = StdTcpStack::new()
            .with_connect_timeout(Duration::ZERO)
            .with_write_timeout(Duration::from_millis(250));
        assert_eq!(s.connect_timeout(), Duration::from_millis(1));
        assert_eq!(s.write_timeout(), Duration::from_millis(250));
    }

    #[test]
    fn std_clock_is_monotonic() {
        let clock = StdClock::default();
        let mut last = clock.now_ms();
        for _ in 0..1000 {
            let now = clock.now_ms();
            assert!(now >= last);
            last = now;
        }
        thread::sleep(Duration::from_millis(20));
        assert!(clock.now_ms() >= last + 20);
    }
}
