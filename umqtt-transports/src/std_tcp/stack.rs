//! [`StdTcpStack`]: embedded-nal's `TcpClientStack` and `Dns` over `std::net`.

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use embedded_nal::{AddrType, Dns, TcpClientStack};
use rustix::event::{PollFd, PollFlags, Timespec, poll};
use rustix::net::{RecvFlags, SendFlags};
use std::io::{self, ErrorKind};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use super::dns::resolve;
use super::*;

/// An [`embedded_nal::TcpClientStack`] and [`embedded_nal::Dns`] over
/// `std::net`.
///
/// Connected streams have `TCP_NODELAY`; `send` and `receive` never block in the
/// kernel except as said here. `connect` blocks for
/// at most [`connect_timeout`](Self::connect_timeout); `send` blocks for at most
/// [`write_timeout`](Self::write_timeout), and only when the kernel send buffer
/// is full. See the [module docs](crate::std_tcp) for why.
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
pub(super) fn send_now(stream: &TcpStream, buffer: &[u8]) -> nb::Result<usize, StdNetError> {
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
pub(super) fn poll_one(
    stream: &TcpStream,
    events: PollFlags,
    timeout: Duration,
) -> io::Result<usize> {
    let mut fds = [PollFd::new(stream, events)];
    // Durations too long for a `timespec` wait forever (they cannot happen here:
    // timeouts are at most `u32::MAX` ms or a `Duration` the caller chose).
    let timeout = Timespec::try_from(timeout).ok();
    Ok(poll(&mut fds, timeout.as_ref())?)
}

/// An I/O error as an `nb` error that is not `WouldBlock`.
pub(super) fn other(e: io::Error) -> nb::Error<StdNetError> {
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
        resolve(hostname, addr_type)
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
