//! A TCP stack and a waiter over `std::net` alone, for targets without the
//! Unix system calls the main std stack uses (Windows), and selectable
//! everywhere ([`PortableTcpStack`], [`PortableWait`]) so that the tests run
//! it on every platform.
//!
//! **How it avoids spinning without `poll(2)`.** A connected stream stays in
//! non-blocking mode, so `receive` and `send` never block. The two places
//! that could spin sleep in the kernel instead, by switching the stream to
//! blocking mode for one system call with a timeout, then back:
//!
//! - `send` when the kernel send buffer is full: one blocking write bounded
//!   by the write timeout; `WouldBlock` only if not a byte went out in that
//!   time.
//! - [`PortableWait`], between two `receive` calls that found nothing: a
//!   blocking one-byte `peek` bounded by the wait timeout returns as soon as
//!   data, end of file or an error arrives (nothing is consumed).
//!
//! Toggling the mode costs two calls into the system each time, so a request
//! and its reply cost about four system calls more than with the main std
//! stack; the behaviour is the same. End of file is
//! [`StdNetError::Closed`], never `Ok(0)`.
//!
//! ```
//! use std::io::{Read, Write};
//! use std::net::TcpListener;
//!
//! use embedded_nal::TcpClientStack;
//! use umqtt_transports::Wait;
//! use umqtt_transports::std_tcp::{PortableTcpStack, PortableWait};
//!
//! let listener = TcpListener::bind("127.0.0.1:0")?;
//! let addr = listener.local_addr()?;
//! let peer = std::thread::spawn(move || -> std::io::Result<()> {
//!     let (mut conn, _) = listener.accept()?;
//!     conn.write_all(b"pong")
//! });
//! let mut stack = PortableTcpStack::new();
//! let mut socket = stack.socket()?;
//! nb::block!(stack.connect(&mut socket, addr))?;
//! let mut buf = [0u8; 4];
//! let mut got = 0;
//! while got < 4 {
//!     match stack.receive(&mut socket, &mut buf[got..]) {
//!         Ok(n) => got += n,
//!         Err(nb::Error::WouldBlock) => PortableWait::new().wait_readable(&mut stack, &mut socket, 1000),
//!         Err(nb::Error::Other(e)) => return Err(e.into()),
//!     }
//! }
//! assert_eq!(&buf, b"pong");
//! stack.close(socket)?;
//! peer.join().expect("peer thread")?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use core::net::{IpAddr, SocketAddr};
use core::time::Duration;

use embedded_nal::{AddrType, Dns, TcpClientStack};
use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::Instant;

use crate::Wait;

use super::dns::resolve;
use super::{MIN_TIMEOUT, StdNetError};

/// A socket of [`PortableTcpStack`]: unconnected until `connect`, then a
/// non-blocking [`TcpStream`].
#[derive(Debug, Default)]
pub struct PortableSocket {
    stream: Option<TcpStream>,
    /// An error [`PortableWait`] saw while waiting; the next `receive`
    /// reports it.
    pending: Option<StdNetError>,
}

impl PortableSocket {
    /// Whether the socket holds a connection.
    pub fn is_connected(&self) -> bool {
        self.stream.is_some()
    }

    /// The remote address, if connected.
    pub fn peer_addr(&self) -> Option<SocketAddr> {
        self.stream.as_ref().and_then(|s| s.peer_addr().ok())
    }
}

/// An embedded-nal `TcpClientStack` and `Dns` over `std::net` alone (see the
/// [module docs](crate::std_tcp::PortableTcpStack)).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PortableTcpStack {
    connect_timeout: Duration,
    write_timeout: Duration,
}

impl Default for PortableTcpStack {
    fn default() -> Self {
        Self::new()
    }
}

impl PortableTcpStack {
    /// A stack with 10 s connect and write timeouts.
    pub const fn new() -> Self {
        Self {
            connect_timeout: Duration::from_secs(10),
            write_timeout: Duration::from_secs(10),
        }
    }

    /// Sets how long `connect` may block (a zero duration counts as 1 ms).
    #[must_use]
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// Sets how long `send` may block when the kernel send buffer is full
    /// before it returns `WouldBlock` (a zero duration counts as 1 ms).
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout.max(MIN_TIMEOUT);
        self
    }

    /// One write in blocking mode bounded by the write timeout, for when the
    /// send buffer is full. The stream is non-blocking again afterwards.
    fn blocking_write(
        &self,
        stream: &mut TcpStream,
        buffer: &[u8],
    ) -> nb::Result<usize, StdNetError> {
        stream.set_nonblocking(false).map_err(other)?;
        let result = stream
            .set_write_timeout(Some(self.write_timeout))
            .and_then(|()| retry_interrupted(|| stream.write(buffer)));
        // Non-blocking again whatever happened: `receive` relies on it.
        stream.set_nonblocking(true).map_err(other)?;
        match result {
            Ok(0) => Err(nb::Error::Other(StdNetError::Closed)),
            Ok(n) => Ok(n),
            // Nothing written in time (Unix: EAGAIN, Windows: TimedOut).
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(nb::Error::WouldBlock)
            }
            Err(e) => Err(other(e)),
        }
    }
}

/// Runs `io` again while the system call was interrupted by a signal.
fn retry_interrupted(mut io: impl FnMut() -> io::Result<usize>) -> io::Result<usize> {
    loop {
        match io() {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            r => return r,
        }
    }
}

/// An I/O error as an `nb` error that is not `WouldBlock`.
fn other(e: io::Error) -> nb::Error<StdNetError> {
    nb::Error::Other(StdNetError::from(e))
}

fn connected(socket: &mut PortableSocket) -> nb::Result<&mut TcpStream, StdNetError> {
    socket
        .stream
        .as_mut()
        .ok_or(nb::Error::Other(StdNetError::NotConnected))
}

impl TcpClientStack for PortableTcpStack {
    type TcpSocket = PortableSocket;
    type Error = StdNetError;

    /// A new unconnected socket; never fails.
    fn socket(&mut self) -> Result<PortableSocket, StdNetError> {
        Ok(PortableSocket::default())
    }

    /// Connects, blocking for at most the connect timeout; never returns
    /// `WouldBlock`.
    fn connect(
        &mut self,
        socket: &mut PortableSocket,
        remote: SocketAddr,
    ) -> nb::Result<(), StdNetError> {
        if socket.stream.is_some() {
            return Err(nb::Error::Other(StdNetError::AlreadyConnected));
        }
        let stream =
            TcpStream::connect_timeout(&remote, self.connect_timeout).map_err(|e| {
                match e.kind() {
                    ErrorKind::TimedOut | ErrorKind::WouldBlock => {
                        nb::Error::Other(StdNetError::ConnectTimedOut)
                    }
                    _ => other(e),
                }
            })?;
        stream.set_nodelay(true).map_err(other)?;
        stream.set_nonblocking(true).map_err(other)?;
        socket.stream = Some(stream);
        socket.pending = None;
        Ok(())
    }

    /// Writes what the kernel takes; when its send buffer is full, waits in
    /// the kernel up to the write timeout.
    fn send(
        &mut self,
        socket: &mut PortableSocket,
        buffer: &[u8],
    ) -> nb::Result<usize, StdNetError> {
        let stream = connected(socket)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        match retry_interrupted(|| stream.write(buffer)) {
            Ok(0) => Err(nb::Error::Other(StdNetError::Closed)),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => self.blocking_write(stream, buffer),
            Err(e) => Err(other(e)),
        }
    }

    /// Reads what has arrived; `WouldBlock` if nothing has. End of file is
    /// [`StdNetError::Closed`].
    fn receive(
        &mut self,
        socket: &mut PortableSocket,
        buffer: &mut [u8],
    ) -> nb::Result<usize, StdNetError> {
        if let Some(e) = socket.pending.take() {
            return Err(nb::Error::Other(e));
        }
        let stream = connected(socket)?;
        if buffer.is_empty() {
            return Ok(0);
        }
        match retry_interrupted(|| stream.read(buffer)) {
            Ok(0) => Err(nb::Error::Other(StdNetError::Closed)),
            Ok(n) => Ok(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => Err(nb::Error::WouldBlock),
            Err(e) => Err(other(e)),
        }
    }

    /// Shuts the connection down both ways; never fails.
    fn close(&mut self, socket: PortableSocket) -> Result<(), StdNetError> {
        if let Some(stream) = socket.stream
            && let Err(e) = stream.shutdown(Shutdown::Both)
        {
            log::trace!("close: shutdown failed (ignored): {e}");
        }
        Ok(())
    }
}

impl Dns for PortableTcpStack {
    type Error = StdNetError;

    /// Like the main std stack: the system resolver, IPv4 preferred.
    fn get_host_by_name(
        &mut self,
        hostname: &str,
        addr_type: AddrType,
    ) -> nb::Result<IpAddr, StdNetError> {
        resolve(hostname, addr_type)
    }

    /// Always [`StdNetError::Unsupported`].
    fn get_host_by_address(
        &mut self,
        _addr: IpAddr,
        _result: &mut [u8],
    ) -> nb::Result<usize, StdNetError> {
        Err(nb::Error::Other(StdNetError::Unsupported))
    }
}

/// A [`Wait`] for [`PortableTcpStack`] that sleeps in the kernel until the
/// socket is readable or the timeout passes: a blocking one-byte `peek` with
/// a read timeout. A zero timeout returns at once; on an unconnected socket
/// it sleeps for the timeout, so a caller never spins. Errors seen while
/// waiting are kept for the next `receive`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct PortableWait;

impl PortableWait {
    /// A new waiter.
    pub const fn new() -> Self {
        Self
    }
}

impl Wait<PortableTcpStack> for PortableWait {
    fn idle(&mut self, _stack: &mut PortableTcpStack, timeout_ms: u32) {
        std::thread::sleep(Duration::from_millis(u64::from(timeout_ms)));
    }

    fn wait_readable(
        &mut self,
        _stack: &mut PortableTcpStack,
        socket: &mut PortableSocket,
        timeout_ms: u32,
    ) {
        if timeout_ms == 0 || socket.pending.is_some() {
            return;
        }
        let timeout = Duration::from_millis(u64::from(timeout_ms));
        let Some(stream) = socket.stream.as_mut() else {
            std::thread::sleep(timeout);
            return;
        };
        if stream.set_nonblocking(false).is_err() {
            // The stream is broken; `receive` will say how.
            return;
        }
        let outcome = peek_until(stream, Instant::now() + timeout);
        if let Err(e) = stream.set_nonblocking(true).and(outcome) {
            log::trace!("wait_readable: {e} (reported by the next receive)");
            socket.pending = Some(StdNetError::from(e));
        }
    }
}

/// Peeks one byte of a blocking `stream` until something arrives or
/// `deadline` passes; an error is what the peek saw (not a timeout).
fn peek_until(stream: &mut TcpStream, deadline: Instant) -> io::Result<()> {
    let mut byte = [0u8; 1];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(());
        }
        stream.set_read_timeout(Some(left.max(MIN_TIMEOUT)))?;
        match stream.peek(&mut byte) {
            Ok(_) => return Ok(()),
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                return Ok(());
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests;
