//! Waiting for packets: read what has arrived, hand out one packet at a
//! time, keep keepalive on the way, and say when to wait and until when.

use super::callbacks::Handled;
use super::{Engine, Io};
use crate::error::CoreError;
use crate::packet::Packet;

/// Where a wait for the next packet stands.
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Listen {
    /// Never wait past this (`None`: never wait at all).
    deadline: Option<u64>,
    /// A request just went out: its answer cannot be in yet, so the first
    /// round waits before reading, saving a read that would find nothing.
    skip_read: bool,
    /// Only the packets already buffered: no reading, no keepalive.
    buffered_only: bool,
    read: Read,
}

/// The read of the current round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
enum Read {
    #[default]
    NotAsked,
    Asked,
    /// Bytes came: handle them, then read again.
    Got,
    /// Nothing was there: keepalive may judge the ping now.
    Empty,
    /// Judged: wait next.
    Judged,
}

/// What the wait for a packet came to.
pub(super) enum Poll {
    /// A packet was handled.
    Packet(Handled),
    /// Nothing came before the deadline (or at once, without one).
    Nothing,
    /// The front-end reads or waits (`Some`), or something to send was
    /// queued (`None`: a reply, a ping), which the engine sends before it
    /// asks again.
    Busy(Option<Io>),
}

impl Listen {
    /// A wait until `deadline` (`None`: none); `just_sent` skips the first read.
    pub(super) fn until(deadline: Option<u64>, just_sent: bool) -> Self {
        Listen {
            deadline,
            skip_read: just_sent && deadline.is_some(),
            ..Listen::default()
        }
    }

    /// Only what is buffered already, without reading.
    pub(super) fn buffered() -> Self {
        Listen {
            buffered_only: true,
            ..Listen::default()
        }
    }

    pub(super) fn read(&mut self, got: bool) {
        self.read = if got { Read::Got } else { Read::Empty };
    }

    pub(super) fn woke(&mut self) {
        self.read = Read::NotAsked;
    }
}

impl Engine<'_> {
    /// Handles at most one packet, asking the front-end to read and wait as
    /// needed until the deadline of the current [`Listen`].
    pub(super) fn receive(&mut self, now: u64) -> Result<Poll, CoreError> {
        if let Some(handled) = self.handled.take() {
            return Ok(Poll::Packet(handled));
        }
        loop {
            if !self.rx.buffered_only && self.session.keep_alive(now, false)? {
                self.owed = Some(Packet::PingReq);
                return Ok(Poll::Busy(None));
            }
            if let Some(handled) = self.take_packet(now)? {
                self.rx.read = Read::NotAsked;
                self.rx.skip_read = false;
                if self.out.is_some() || self.owed.is_some() {
                    // Its reply goes out first.
                    self.handled = Some(handled);
                    return Ok(Poll::Busy(None));
                }
                return Ok(Poll::Packet(handled));
            }
            if self.rx.buffered_only {
                return Ok(Poll::Nothing);
            }
            if !core::mem::take(&mut self.rx.skip_read) {
                match self.rx.read {
                    Read::NotAsked => {
                        self.rx.read = Read::Asked;
                        return Ok(Poll::Busy(Some(Io::Read)));
                    }
                    Read::Got => {
                        self.rx.read = Read::NotAsked;
                        continue;
                    }
                    Read::Asked | Read::Empty => {
                        // Only with nothing left to read can a PINGRESP be
                        // called missing.
                        self.rx.read = Read::Judged;
                        if self.session.keep_alive(now, true)? {
                            self.owed = Some(Packet::PingReq);
                            return Ok(Poll::Busy(None));
                        }
                    }
                    Read::Judged => {}
                }
            }
            let Some(deadline) = self.rx.deadline else {
                self.rx.read = Read::NotAsked;
                return Ok(Poll::Nothing);
            };
            if now >= deadline {
                self.rx.read = Read::NotAsked;
                return Ok(Poll::Nothing);
            }
            let until = self
                .session
                .next_deadline()
                .map_or(deadline, |k| k.min(deadline));
            self.rx.read = Read::NotAsked;
            return Ok(Poll::Busy(Some(Io::Wait { until })));
        }
    }
}
