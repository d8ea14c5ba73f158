//! The byte stream under an async TLS connection: the inner connection (any
//! embedded-io-async stream an embedded-nal-async `TcpConnect` makes),
//! following the record framing so that a record read whose future was
//! dropped can be resumed.
//!
//! **Why.** The async clients race every read against a deadline and drop
//! the read when the deadline comes first. embedded-tls keeps a record's
//! header in a local of its read future, so a read dropped in the middle of
//! a record would lose the stream (the next read would take body bytes for
//! a header). This adapter sees every byte embedded-tls reads, keeps the
//! header of the current record ([`Framing`]), and after a cancelled read hands the header out again; the body bytes already
//! read stay counted in embedded-tls's record reader (vendored patch 10), so
//! the resumed read goes on where the dropped one stopped. Body reads never
//! go past the record. The inner read itself must be cancel-safe (no byte
//! lost when its future is dropped), as embassy-net's and tokio's are.
//!
//! A write dropped half-way cannot be resumed (the peer has part of a
//! record): the adapter's mark stays set and the
//! connection refuses to go on.
//!
//! The connection owns this adapter and offers no way to reach it, so the
//! requests (rewind) and marks (a write under way) go through the
//! [`IoControl`] in the [`TlsBuffers`](super::TlsBuffers).
//!
//! Errors: embedded-tls keeps only an error's kind, so what went wrong is
//! written to the [`IoControl`] (as the blocking adapter does), for
//! [`decide`](super::decide) to name.

use embedded_io::ErrorKind;
use embedded_io_async::{ErrorType, Read, Write};
use embedded_nal::TcpErrorKind;

use super::adapter::{IoControl, IoOutcome};
use super::framing::Framing;

/// An async stream for embedded-tls over the inner connection `C`.
pub(super) struct AsyncIo<'c, C> {
    inner: C,
    control: &'c IoControl,
    framing: Framing,
    /// Header bytes to hand out again, and how many were.
    replay: [u8; 5],
    replay_len: u8,
    replayed: u8,
}

impl<'c, C: Read + Write> AsyncIo<'c, C> {
    pub(super) fn new(inner: C, control: &'c IoControl) -> Self {
        AsyncIo {
            inner,
            control,
            framing: Framing::default(),
            replay: [0; 5],
            replay_len: 0,
            replayed: 0,
        }
    }

    /// A read of embedded-tls was dropped before it ended: the next one
    /// starts the record again, so hand out what was read of its header
    /// again.
    fn rewind(&mut self) {
        let head = self.framing.header_so_far();
        let len = head.len().min(self.replay.len());
        if let (Some(dst), Some(src)) = (self.replay.get_mut(..len), head.get(..len)) {
            dst.copy_from_slice(src);
        }
        self.replay_len = u8::try_from(len).unwrap_or(0);
        self.replayed = 0;
    }

    fn fail(&self, kind: ErrorKind) -> ErrorKind {
        self.control.set_outcome(IoOutcome::Network(tcp_kind(kind)));
        kind
    }
}

/// The embedded-nal kind of an embedded-io error: a closed connection is
/// `PipeClosed`, anything else `Other`.
fn tcp_kind(kind: ErrorKind) -> TcpErrorKind {
    match kind {
        ErrorKind::ConnectionReset
        | ErrorKind::ConnectionAborted
        | ErrorKind::BrokenPipe
        | ErrorKind::NotConnected => TcpErrorKind::PipeClosed,
        _ => TcpErrorKind::Other,
    }
}

impl<C> ErrorType for AsyncIo<'_, C> {
    type Error = ErrorKind;
}

impl<C: Read + Write> Read for AsyncIo<'_, C> {
    async fn read(&mut self, buf: &mut [u8]) -> Result<usize, ErrorKind> {
        if self.control.take_rewind() {
            self.rewind();
        }
        if buf.is_empty() {
            return Ok(0);
        }
        if self.replayed < self.replay_len {
            let rest = self
                .replay
                .get(usize::from(self.replayed)..usize::from(self.replay_len))
                .unwrap_or_default();
            let n = rest.len().min(buf.len());
            if let (Some(dst), Some(src)) = (buf.get_mut(..n), rest.get(..n)) {
                dst.copy_from_slice(src);
            }
            self.replayed = self
                .replayed
                .saturating_add(u8::try_from(n).unwrap_or(u8::MAX));
            return Ok(n);
        }
        // Never past the current record's body: a resumed read asks for
        // all of it.
        let limit = match self.framing.body_left() {
            0 => buf.len(),
            left => left.min(buf.len()),
        };
        let buf = buf.get_mut(..limit).unwrap_or_default();
        let n = match self.inner.read(buf).await {
            Ok(n) => n,
            Err(e) => {
                let kind = embedded_io::Error::kind(&e);
                log::debug!("TLS transport: read failed: {e:?}");
                return Err(self.fail(kind));
            }
        };
        let got = buf.get(..n).unwrap_or_default();
        if !self.framing.feed(got) {
            log::debug!("TLS: the peer sent {:02x?}, not a TLS record", got.get(..5));
            self.control.set_outcome(IoOutcome::NotTls);
            return Err(ErrorKind::InvalidData);
        }
        if n > 0 {
            self.control.note_received();
        }
        Ok(n)
    }
}

impl<C: Read + Write> Write for AsyncIo<'_, C> {
    async fn write(&mut self, buf: &[u8]) -> Result<usize, ErrorKind> {
        self.control.set_writing(true);
        let result = self.inner.write(buf).await;
        self.control.set_writing(false);
        result.map_err(|e| {
            log::debug!("TLS transport: write failed: {e:?}");
            self.fail(embedded_io::Error::kind(&e))
        })
    }

    async fn flush(&mut self) -> Result<(), ErrorKind> {
        self.inner.flush().await.map_err(|e| {
            log::debug!("TLS transport: flush failed: {e:?}");
            self.fail(embedded_io::Error::kind(&e))
        })
    }
}
