//! Lending the record buffers to one TLS connection at a time, in safe Rust.
//!
//! **Why it exists.** embedded-tls's `TlsConnection::new` takes its two
//! record buffers as `&'a mut [u8]`, and a connection cannot be opened
//! again, yet a [`TcpClientStack`](embedded_nal::TcpClientStack) that
//! reconnects forever (as umqtt-robust's client does) needs them for every
//! connection.
//!
//! **What it does.** [`TlsBuffers`] holds the two `&mut` slices in a `Cell`.
//! [`Leased::lend`] takes them out and hands them to one new
//! `TlsConnection`; while they are out, another lend finds the cell empty
//! and fails ([`StillLent`]). The patched embedded-tls
//! (`vendor/embedded-tls`, `TlsConnection::close_and_release` and
//! `release`) gives them back when the connection closes, and [`Leased`]
//! puts them back in the cell, when closed or dropped. A `Leased` that is
//! leaked (`mem::forget`) never puts them back: the buffers stay lent
//! forever, and every later lend fails with [`StillLent`], whose message
//! says so. (Until that patch this module was the workspace's one `unsafe`
//! code: raw pointers and a run-time flag.)

use core::cell::Cell;
use core::fmt;

use embedded_io::{Read, Write};
use embedded_tls::blocking::{TlsCipherSuite, TlsConnection, TlsError};

use super::adapter::IoControl;

/// The two record buffers (read, write).
type Slices<'b> = (&'b mut [u8], &'b mut [u8]);

/// The two record buffers of a TLS connection, lent by a
/// [`TlsStack`](super::TlsStack) to one connection at a time.
///
/// The read buffer must hold a whole encrypted record: 16 640 bytes for any
/// server, or a little more than the negotiated
/// [max fragment length](super::TlsOptions::max_fragment_length) (4 096 →
/// about 4 200 bytes, 512 → 640). The write buffer must be larger than 128
/// bytes and hold the ClientHello (256 bytes are enough) and, with mutual
/// TLS, the client certificate plus 128 bytes.
///
/// It also holds the few bytes the stack shares with its transport adapter
/// (an [`IoControl`]). It is not `Sync` (it holds `Cell`s): make it where
/// the stack runs (a local in `main`, which lives forever on a device).
///
/// ```
/// use umqtt_transports::tls::TlsBuffers;
///
/// let mut read = [0u8; 16_640];
/// let mut write = [0u8; 1024];
/// let buffers = TlsBuffers::new(&mut read, &mut write);
/// assert!(!buffers.is_lent());
/// assert_eq!(buffers.read_len(), 16_640);
/// ```
pub struct TlsBuffers<'b> {
    /// `None` while a connection holds them (or leaked them).
    slices: Cell<Option<Slices<'b>>>,
    read_len: usize,
    write_len: usize,
    io: IoControl,
}

impl<'b> TlsBuffers<'b> {
    /// Buffers for TLS records: `read` for incoming records, `write` for
    /// outgoing ones. They stay borrowed for as long as this value lives.
    pub fn new(read: &'b mut [u8], write: &'b mut [u8]) -> Self {
        TlsBuffers {
            read_len: read.len(),
            write_len: write.len(),
            slices: Cell::new(Some((read, write))),
            io: IoControl::new(),
        }
    }

    /// Whether a connection holds the buffers now (or leaked them).
    pub fn is_lent(&self) -> bool {
        let slices = self.slices.take();
        let lent = slices.is_none();
        self.slices.set(slices);
        lent
    }

    /// The length of the read buffer.
    pub fn read_len(&self) -> usize {
        self.read_len
    }

    /// The length of the write buffer.
    pub fn write_len(&self) -> usize {
        self.write_len
    }

    /// The state shared with the transport adapter.
    pub(crate) fn io(&self) -> &IoControl {
        &self.io
    }
}

impl fmt::Debug for TlsBuffers<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsBuffers")
            .field("read_len", &self.read_len())
            .field("write_len", &self.write_len())
            .field("lent", &self.is_lent())
            .finish()
    }
}

/// A lend refused because the buffers are still lent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StillLent;

impl fmt::Display for StillLent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "the TLS record buffers are still lent to another connection \
             (one that is open, or one that was leaked with mem::forget and \
             keeps them forever)",
        )
    }
}

/// A TLS connection over lent buffers; closing or dropping it returns them.
pub(crate) struct Leased<'a, Socket, CS>
where
    Socket: Read + Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// `Some` until `close` takes it.
    conn: Option<TlsConnection<'a, Socket, CS>>,
    home: &'a TlsBuffers<'a>,
}

impl<'a, Socket, CS> Leased<'a, Socket, CS>
where
    Socket: Read + Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// A new connection over `socket` and the buffers, or the socket back if
    /// the buffers are still lent.
    pub(crate) fn lend(
        buffers: &'a TlsBuffers<'a>,
        socket: Socket,
    ) -> Result<Self, (Socket, StillLent)> {
        let Some((read, write)) = buffers.slices.take() else {
            return Err((socket, StillLent));
        };
        Ok(Leased {
            conn: Some(TlsConnection::new(socket, read, write)),
            home: buffers,
        })
    }

    /// The connection, to open, read and write (`ConnectionClosed` once
    /// closed, which `close` taking `self` rules out).
    pub(crate) fn conn(&mut self) -> Result<&mut TlsConnection<'a, Socket, CS>, TlsError> {
        self.conn.as_mut().ok_or(TlsError::ConnectionClosed)
    }

    /// Sends close_notify (errors ignored), returns the buffers and gives
    /// the socket back.
    pub(crate) fn close(mut self) -> Option<Socket> {
        let conn = self.conn.take()?;
        let (socket, read, write, result) = conn.close_and_release();
        if let Err(e) = result {
            log::debug!("TLS close_notify not sent: {e:?}");
        }
        self.home.slices.set(Some((read, write)));
        Some(socket)
    }
}

impl<'a, Socket, CS> Drop for Leased<'a, Socket, CS>
where
    Socket: Read + Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// A connection dropped without `close` returns the buffers too (and
    /// drops its socket, sending nothing).
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let (_socket, read, write) = conn.release();
            self.home.slices.set(Some((read, write)));
        }
    }
}

/// The async twin of [`Leased`]: an async TLS connection over lent
/// buffers; closing or dropping it returns them.
#[cfg(feature = "tls-async")]
pub(crate) struct AsyncLeased<'a, Socket, CS>
where
    Socket: embedded_io_async::Read + embedded_io_async::Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// `Some` until `close` takes it.
    conn: Option<embedded_tls::TlsConnection<'a, Socket, CS>>,
    home: &'a TlsBuffers<'a>,
}

#[cfg(feature = "tls-async")]
impl<'a, Socket, CS> AsyncLeased<'a, Socket, CS>
where
    Socket: embedded_io_async::Read + embedded_io_async::Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// A new connection over `socket` and the buffers, or the socket back if
    /// the buffers are still lent.
    pub(crate) fn lend(
        buffers: &'a TlsBuffers<'a>,
        socket: Socket,
    ) -> Result<Self, (Socket, StillLent)> {
        let Some((read, write)) = buffers.slices.take() else {
            return Err((socket, StillLent));
        };
        Ok(AsyncLeased {
            conn: Some(embedded_tls::TlsConnection::new(socket, read, write)),
            home: buffers,
        })
    }

    /// The connection, to open, read and write (`ConnectionClosed` once
    /// closed).
    pub(crate) fn conn(
        &mut self,
    ) -> Result<&mut embedded_tls::TlsConnection<'a, Socket, CS>, TlsError> {
        self.conn.as_mut().ok_or(TlsError::ConnectionClosed)
    }

    /// Sends close_notify (errors ignored), returns the buffers and gives
    /// the socket back. Dropped before it ends (cancelled), the connection
    /// still returns the buffers, as a drop does.
    pub(crate) async fn close(mut self) -> Option<Socket> {
        let conn = self.conn.as_mut()?;
        if let Err(e) = conn.close_notify().await {
            log::debug!("TLS close_notify not sent: {e:?}");
        }
        let (socket, read, write) = self.conn.take()?.release();
        self.home.slices.set(Some((read, write)));
        Some(socket)
    }
}

#[cfg(feature = "tls-async")]
impl<'a, Socket, CS> Drop for AsyncLeased<'a, Socket, CS>
where
    Socket: embedded_io_async::Read + embedded_io_async::Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// A connection dropped without `close` (or while closing) returns the
    /// buffers too (and drops its socket, sending nothing).
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            let (_socket, read, write) = conn.release();
            self.home.slices.set(Some((read, write)));
        }
    }
}

#[cfg(all(test, feature = "std"))]
mod tests {
    use super::*;
    use embedded_io::ErrorType;
    use embedded_tls::blocking::Aes128GcmSha256;

    /// A socket that is never used.
    struct Idle;
    impl ErrorType for Idle {
        type Error = embedded_io::ErrorKind;
    }
    impl Read for Idle {
        fn read(&mut self, _: &mut [u8]) -> Result<usize, Self::Error> {
            Err(embedded_io::ErrorKind::NotConnected)
        }
    }
    impl Write for Idle {
        fn write(&mut self, _: &[u8]) -> Result<usize, Self::Error> {
            Err(embedded_io::ErrorKind::NotConnected)
        }
        fn flush(&mut self) -> Result<(), Self::Error> {
            Ok(())
        }
    }

    type L<'a> = Leased<'a, Idle, Aes128GcmSha256>;

    #[test]
    fn lend_return_and_lend_again() {
        let (mut r, mut w) = ([0u8; 64], [0u8; 256]);
        let buffers = TlsBuffers::new(&mut r, &mut w);
        for _ in 0..3 {
            let lease = L::lend(&buffers, Idle).ok().expect("free");
            assert!(buffers.is_lent());
            assert!(lease.close().is_some(), "close gives the socket back");
            assert!(!buffers.is_lent());
        }
        let lease = L::lend(&buffers, Idle).ok().expect("free");
        drop(lease);
        assert!(!buffers.is_lent(), "dropping a lease returns the buffers");
        assert!(L::lend(&buffers, Idle).is_ok());
    }

    #[test]
    fn second_lend_while_lent_is_refused() {
        let (mut r, mut w) = ([0u8; 64], [0u8; 256]);
        let buffers = TlsBuffers::new(&mut r, &mut w);
        let first = L::lend(&buffers, Idle).ok().expect("free");
        let Err((_, e)) = L::lend(&buffers, Idle) else {
            panic!("a second lend must fail");
        };
        assert_eq!(e, StillLent);
        assert!(
            buffers.is_lent(),
            "a refused lend leaves the first one lent"
        );
        drop(first);
        assert!(L::lend(&buffers, Idle).is_ok());
    }

    #[test]
    fn a_leaked_lease_keeps_the_buffers_lent_forever() {
        let (mut r, mut w) = ([0u8; 64], [0u8; 256]);
        let buffers = TlsBuffers::new(&mut r, &mut w);
        core::mem::forget(L::lend(&buffers, Idle).ok().expect("free"));
        for _ in 0..10 {
            let Err((_, e)) = L::lend(&buffers, Idle) else {
                panic!("the buffers of a leaked connection must stay lent");
            };
            assert!(std::format!("{e}").contains("mem::forget"), "{e}");
        }
        assert!(buffers.is_lent());
    }
}
