//! Waiting for packets: read what has arrived, hand out one packet at a
//! time, keep keepalive on the way, and say when to wait and until when.

use super::callbacks::Handled;
use super::{Engine, Io, Owed};
use crate::error::CoreError;

/// A request's wait for packets: kept by the request (in the caller's
/// frame, not in the client), handed to [`Engine::receive`].
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Listen {
    /// Never wait past this (0: never wait at all, as no clock reading is
    /// below it).
    deadline: u64,
    /// A request just went out: its answer cannot be in yet, so the first
    /// round waits before reading, saving a read that would find nothing.
    skip_read: bool,
    /// Only the packets already buffered: no reading, no keepalive.
    buffered_only: bool,
    /// What the wait came to, for the request's next step to take (a
    /// packet whose reply is owed: once the reply is sent, since the
    /// engine sends what it owes before it asks the request again).
    got: Option<Got>,
}

/// What a wait for packets came to ([`Listen::take`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Got {
    /// A packet was handled.
    Packet(Handled),
    /// Nothing came before the deadline (or at once, without one).
    Nothing,
}

impl Listen {
    /// What the wait came to, if it came to something since the last look.
    pub(super) fn take(&mut self) -> Option<Got> {
        self.got.take()
    }
}

/// The read of the current round (the engine keeps it: the front-end's
/// reads report to it).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) enum Read {
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

impl Engine<'_> {
    /// A wait for packets until `deadline` (`None`: none); `just_sent`
    /// skips the first read.
    pub(super) fn listen(&mut self, deadline: Option<u64>, just_sent: bool) -> Listen {
        self.read = Read::NotAsked;
        Listen {
            deadline: deadline.unwrap_or(0),
            skip_read: just_sent && deadline.is_some(),
            ..Listen::default()
        }
    }

    /// A look at what is buffered already, without reading.
    pub(super) fn listen_buffered(&mut self) -> Listen {
        Listen {
            buffered_only: true,
            ..self.listen(None, false)
        }
    }

    /// Handles at most one packet, asking the front-end to read and wait as
    /// needed until the deadline of the current [`Listen`].
    ///
    /// It answers what a request answers (so that the request returns it as
    /// it is): the front-end's I/O, or `None` when the engine is to send
    /// first or the wait came to something; then [`Listen::take`] says
    /// what, at the request's next step.
    pub(super) fn receive(&mut self, rx: &mut Listen, now: u64) -> Result<Option<Io>, CoreError> {
        loop {
            if !rx.buffered_only && self.session.keep_alive(now, false)? {
                self.owed = Some(Owed::PING);
                return Ok(None);
            }
            if let Some(handled) = self.take_packet(now)? {
                self.read = Read::NotAsked;
                rx.skip_read = false;
                rx.got = Some(Got::Packet(handled));
                return Ok(None);
            }
            if rx.buffered_only {
                rx.got = Some(Got::Nothing);
                return Ok(None);
            }
            if !core::mem::take(&mut rx.skip_read) {
                match self.read {
                    Read::NotAsked => {
                        self.read = Read::Asked;
                        return Ok(Some(Io::Read));
                    }
                    Read::Got => {
                        self.read = Read::NotAsked;
                        continue;
                    }
                    Read::Asked | Read::Empty => {
                        // Only with nothing left to read can a PINGRESP be
                        // called missing.
                        self.read = Read::Judged;
                        if self.session.keep_alive(now, true)? {
                            self.owed = Some(Owed::PING);
                            return Ok(None);
                        }
                    }
                    Read::Judged => {}
                }
            }
            // The round is over: the next one reads afresh.
            self.read = Read::NotAsked;
            return Ok(match rx.deadline {
                deadline if now < deadline => {
                    let until = self
                        .session
                        .next_deadline()
                        .map_or(deadline, |k| k.min(deadline));
                    Some(Io::Wait { until })
                }
                _ => {
                    rx.got = Some(Got::Nothing);
                    None
                }
            });
        }
    }
}
