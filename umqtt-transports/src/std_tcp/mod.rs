//! A TCP stack, a clock and a sleeping waiter over `std` (feature `std`).
//!
//! - [`StdTcpStack`] implements [`embedded_nal::TcpClientStack`] and
//!   [`embedded_nal::Dns`] over [`std::net::TcpStream`]; its sockets are
//!   [`StdSocket`]s and its errors [`StdNetError`]s.
//! - [`StdClock`] implements [`Clock`](crate::Clock) with [`std::time::Instant`].
//! - [`StdWait`] implements [`Wait`](crate::Wait) by sleeping in the kernel until data
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
//! segment count. `connect` and DNS lookups block: [`TcpClientStack::connect`](embedded_nal::TcpClientStack::connect)
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
//! [`Wait`](crate::Wait) contract allows returning early, and the caller then waits again
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
//! [`StdNetError::Closed`] (kind [`TcpErrorKind::PipeClosed`](embedded_nal::TcpErrorKind::PipeClosed)). `receive` returns
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

mod clock;
mod dns;
mod error;
mod portable;
#[cfg(unix)]
mod socket;
#[cfg(unix)]
mod stack;
#[cfg(unix)]
mod wait;

// Moved to `std_async` (they are not TCP); here too, so that existing paths
// keep working.
pub use crate::std_async::{StdTimer, block_on};
pub use clock::StdClock;
pub use error::StdNetError;
pub use portable::{PortableSocket, PortableTcpStack, PortableWait};
#[cfg(unix)]
pub use socket::StdSocket;
#[cfg(unix)]
pub use stack::StdTcpStack;
#[cfg(unix)]
pub use wait::StdWait;

// Elsewhere (Windows) the portable stack is the std stack.
#[cfg(not(unix))]
pub use portable::{
    PortableSocket as StdSocket, PortableTcpStack as StdTcpStack, PortableWait as StdWait,
};

use core::time::Duration;

/// The smallest timeout handed to the OS: `std` rejects a zero duration.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

#[cfg(test)]
mod contract;
#[cfg(all(test, unix))]
mod tests;
