//! Lending the record buffers to one TLS connection at a time: the only
//! `unsafe` code of the workspace.
//!
//! **Why it exists.** embedded-tls 0.19's `TlsConnection::new` takes its two
//! record buffers as `&'a mut [u8]` and never gives them back (`close`
//! returns only the socket), and a connection cannot be opened again. A
//! [`TcpClientStack`](embedded_nal::TcpClientStack) that reconnects forever
//! (as umqtt-robust's client does) therefore needs fresh `&'a mut` buffers
//! for every connection, which safe Rust cannot hand out twice from one
//! borrow without a heap.
//!
//! **What it does.** [`TlsBuffers`] keeps the user's two buffers (borrowed for
//! `'b`, or `'static`) as raw pointers and owns nothing else. [`Leased::lend`]
//! rebuilds the two `&mut` slices and hands them to one new `TlsConnection`,
//! after setting the `lent` flag; a second lend while the flag is set fails
//! ([`StillLent`]) instead of aliasing. The flag is cleared only by the `Drop`
//! of [`Guard`], which sits in [`Leased`] after the connection, so the
//! connection (and with it every use of the slices) is dropped first. A
//! `Leased` that is leaked (`mem::forget`) never clears the flag: the buffers
//! stay lent forever, and every later lend fails with [`StillLent`], whose
//! message says so. The slices never leave [`Leased`], a type private to
//! this crate.
//!
//! **When to delete it.** As soon as embedded-tls offers a way to take the
//! buffers back from a `TlsConnection` (a `close` that returns them, an
//! `into_parts`) or to open a closed connection again, the stack can keep the
//! `&'a mut` buffers itself in safe Rust and this module goes away.

#![allow(unsafe_code)]

use core::cell::Cell;
use core::fmt;
use core::marker::PhantomData;

use embedded_io::{Read, Write};
use embedded_tls::blocking::{TlsCipherSuite, TlsConnection};

use super::adapter::IoControl;

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
/// (an [`IoControl`]). It is neither `Send` nor `Sync`: make it where the
/// stack runs (a local in `main`, which lives forever on a device).
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
    /// From the `&'b mut [u8]` given to [`TlsBuffers::new`]; only
    /// [`Leased::lend`] turns it into a reference again.
    read: *mut [u8],
    write: *mut [u8],
    /// Set while a [`Leased`] connection holds the buffers.
    lent: Cell<bool>,
    io: IoControl,
    _borrow: PhantomData<&'b mut [u8]>,
}

impl<'b> TlsBuffers<'b> {
    /// Buffers for TLS records: `read` for incoming records, `write` for
    /// outgoing ones. They stay borrowed for as long as this value lives.
    pub fn new(read: &'b mut [u8], write: &'b mut [u8]) -> Self {
        TlsBuffers {
            read: core::ptr::from_mut(read),
            write: core::ptr::from_mut(write),
            lent: Cell::new(false),
            io: IoControl::new(),
            _borrow: PhantomData,
        }
    }

    /// Whether a connection holds the buffers now (or leaked them).
    pub fn is_lent(&self) -> bool {
        self.lent.get()
    }

    /// The length of the read buffer.
    pub fn read_len(&self) -> usize {
        self.read.len()
    }

    /// The length of the write buffer.
    pub fn write_len(&self) -> usize {
        self.write.len()
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

/// Clears the `lent` flag when dropped.
struct Guard<'a> {
    lent: &'a Cell<bool>,
}

impl Drop for Guard<'_> {
    fn drop(&mut self) {
        self.lent.set(false);
    }
}

/// A TLS connection over lent buffers.
///
/// Field order matters: `conn` is dropped before `_guard`, so the flag is
/// cleared only once nothing uses the slices any more.
pub(crate) struct Leased<'a, Socket, CS>
where
    Socket: Read + Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    conn: TlsConnection<'a, Socket, CS>,
    _guard: Guard<'a>,
}

impl<'a, Socket, CS> Leased<'a, Socket, CS>
where
    Socket: Read + Write + 'a,
    CS: TlsCipherSuite + 'static,
{
    /// A new connection over `socket` and the buffers, or the socket back if
    /// the buffers are still lent.
    pub(crate) fn lend(
        buffers: &'a TlsBuffers<'_>,
        socket: Socket,
    ) -> Result<Self, (Socket, StillLent)> {
        if buffers.lent.replace(true) {
            return Err((socket, StillLent));
        }
        let guard = Guard {
            lent: &buffers.lent,
        };
        // SAFETY: the pointers come from two `&'b mut [u8]` that
        // `TlsBuffers<'b>` took by value and keeps borrowed for `'b` (its
        // `PhantomData<&'b mut [u8]>`), so nothing outside can touch that
        // memory while `buffers` lives, and `'a` (the borrow of `buffers`)
        // ends before `'b`. Inside, only this function makes references from
        // them, and only after `lent.replace(true)` returned `false`: the
        // flag was clear, so no other `Leased` holds slices of these buffers
        // (a `Leased` clears it only in `Guard::drop`, after its connection,
        // the only holder of the slices, was dropped; a leaked one never
        // clears it). `TlsBuffers` is `!Sync` (its `Cell` and raw pointers),
        // so no other thread can race between the check and the set. The two
        // buffers come from two distinct `&mut`, so they do not overlap each
        // other. Hence these are the only live references to the memory.
        let (read, write) = unsafe { (&mut *buffers.read, &mut *buffers.write) };
        Ok(Leased {
            conn: TlsConnection::new(socket, read, write),
            _guard: guard,
        })
    }

    /// The connection, to open, read and write; it cannot be moved out of
    /// `self` through this reference (it has no default to swap in).
    pub(crate) fn conn(&mut self) -> &mut TlsConnection<'a, Socket, CS> {
        &mut self.conn
    }

    /// Sends close_notify (errors ignored), drops the connection, then
    /// returns the buffers; gives the socket back.
    pub(crate) fn close(self) -> Socket {
        let Leased { conn, _guard } = self;
        let socket = match conn.close() {
            Ok(socket) => socket,
            Err((socket, e)) => {
                log::debug!("TLS close_notify not sent: {e:?}");
                socket
            }
        };
        // `conn` was consumed by `close`: nothing holds the slices now.
        drop(_guard);
        socket
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
            let _socket = lease.close();
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
