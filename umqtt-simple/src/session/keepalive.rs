//! When to send PINGREQ, and when a missing PINGRESP means the link is dead.
//!
//! Two separate deadlines, both on the client's clock:
//!
//! - **keepalive**: MQTT requires the client to send *something* at least once
//!   per keepalive interval (MQTT-3.1.2-23). When nothing was sent for that
//!   long, the client sends PINGREQ, also while an earlier one is still
//!   unanswered: a PINGRESP late behind a backlog of messages must not keep
//!   the client silent past the keepalive, or the broker drops it.
//! - **PINGRESP**: after a PINGREQ, the broker must answer. If nothing at all
//!   arrives within the ping timeout, the connection is half-open (the broker
//!   vanished without FIN or RST) and is given up. Any packet received while the
//!   answer is pending restarts this wait: it proves the link is alive, and a
//!   PINGRESP queued behind a burst of messages is late, not lost.
//!
//! The timer is pure state over timestamps, so it is tested without sockets.

/// What the keepalive timer asks the client to do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeepAliveAction {
    /// Nothing is due.
    Idle,
    /// Nothing was sent for the keepalive interval: send PINGREQ.
    SendPing,
    /// PINGREQ went unanswered for the ping timeout: the link is dead.
    PingTimedOut,
}

/// Keepalive and PINGRESP deadlines, in milliseconds of the client's clock.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeepAlive {
    interval_ms: u32,
    ping_timeout_ms: u32,
    last_sent_ms: u64,
    /// When the PINGREQ awaiting its answer went out, or when a packet last
    /// arrived since; `NO_PING` when none awaits one (a sentinel rather than
    /// an `Option`: 8 bytes less in every client).
    ping_pending_since: u64,
}

/// [`KeepAlive::ping_pending_since`] when no PINGREQ awaits its answer.
const NO_PING: u64 = u64::MAX;

impl KeepAlive {
    /// A timer for `interval_ms` (0 turns keepalive off) whose PINGREQs must be
    /// answered within `ping_timeout_ms`, started at `now`.
    pub(crate) fn new(interval_ms: u32, ping_timeout_ms: u32, now: u64) -> Self {
        KeepAlive {
            interval_ms,
            ping_timeout_ms,
            last_sent_ms: now,
            ping_pending_since: NO_PING,
        }
    }

    /// A whole packet was sent at `now`.
    pub(crate) fn packet_sent(&mut self, now: u64) {
        self.last_sent_ms = now;
    }

    /// A PINGREQ was sent at `now`; its answer is awaited.
    pub(crate) fn ping_sent(&mut self, now: u64) {
        self.packet_sent(now);
        if self.ping_pending_since == NO_PING {
            self.ping_pending_since = now;
        }
    }

    /// A packet arrived at `now`: a PINGRESP ends the wait, anything else
    /// restarts it.
    pub(crate) fn packet_received(&mut self, now: u64, is_ping_response: bool) {
        if is_ping_response {
            self.ping_pending_since = NO_PING;
        } else if self.ping_pending() {
            self.ping_pending_since = now;
        }
    }

    /// Whether a PINGREQ is waiting for its answer.
    pub(crate) fn ping_pending(&self) -> bool {
        self.ping_pending_since != NO_PING
    }

    /// Since when a PINGREQ awaits its answer, if one does.
    fn pending_since(&self) -> Option<u64> {
        self.ping_pending().then_some(self.ping_pending_since)
    }

    /// What is due at `now`: a PINGREQ first (the keepalive binds the
    /// client whatever the broker does), then the judgement of one gone
    /// unanswered.
    // Out of line for code size (measured).
    #[inline(never)]
    pub(crate) fn poll(&self, now: u64) -> KeepAliveAction {
        if self.interval_ms > 0
            && now.saturating_sub(self.last_sent_ms) >= u64::from(self.interval_ms)
        {
            return KeepAliveAction::SendPing;
        }
        match self.pending_since() {
            Some(since) if now.saturating_sub(since) >= u64::from(self.ping_timeout_ms) => {
                KeepAliveAction::PingTimedOut
            }
            _ => KeepAliveAction::Idle,
        }
    }

    /// The next time [`KeepAlive::poll`] may ask for something, if ever.
    pub(crate) fn next_deadline(&self) -> Option<u64> {
        let ping = (self.interval_ms > 0).then(|| {
            self.last_sent_ms
                .saturating_add(u64::from(self.interval_ms))
        });
        let answer = self
            .pending_since()
            .map(|since| since.saturating_add(u64::from(self.ping_timeout_ms)));
        match (ping, answer) {
            (Some(p), Some(a)) => Some(p.min(a)),
            (p, a) => p.or(a),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ping_is_due_after_a_keepalive_interval_without_sending() {
        let mut k = KeepAlive::new(2_000, 1_000, 10_000);
        assert_eq!(k.poll(11_999), KeepAliveAction::Idle);
        assert_eq!(k.next_deadline(), Some(12_000));
        assert_eq!(k.poll(12_000), KeepAliveAction::SendPing);
        k.packet_sent(11_500);
        assert_eq!(k.poll(12_000), KeepAliveAction::Idle);
        assert_eq!(k.poll(13_500), KeepAliveAction::SendPing);
    }

    #[test]
    fn keepalive_zero_never_pings() {
        let k = KeepAlive::new(0, 1_000, 0);
        assert_eq!(k.poll(u64::MAX), KeepAliveAction::Idle);
        assert_eq!(k.next_deadline(), None);
    }

    #[test]
    fn unanswered_ping_times_out_on_its_own_deadline() {
        let mut k = KeepAlive::new(60_000, 5_000, 0);
        k.ping_sent(60_000);
        assert!(k.ping_pending());
        assert_eq!(k.next_deadline(), Some(65_000));
        assert_eq!(k.poll(64_999), KeepAliveAction::Idle);
        assert_eq!(k.poll(65_000), KeepAliveAction::PingTimedOut);
    }

    #[test]
    fn a_keepalive_without_sending_pings_again_even_while_a_ping_is_unanswered() {
        // A backlog keeps restarting the PINGRESP wait; the client must
        // still send something every keepalive (MQTT-3.1.2-23).
        let mut k = KeepAlive::new(2_000, 1_500, 0);
        k.ping_sent(2_000);
        k.packet_received(3_000, false);
        k.packet_received(3_900, false);
        assert_eq!(k.next_deadline(), Some(4_000));
        assert_eq!(k.poll(4_000), KeepAliveAction::SendPing);
        k.ping_sent(4_000);
        assert!(k.ping_pending());
        assert_eq!(
            k.next_deadline(),
            Some(5_400),
            "the answer's deadline first"
        );
        k.packet_received(5_000, false);
        assert_eq!(k.poll(6_000), KeepAliveAction::SendPing);
    }

    #[test]
    fn pingresp_ends_the_wait_and_the_keepalive_clock_runs_from_the_ping() {
        let mut k = KeepAlive::new(2_000, 1_000, 0);
        k.ping_sent(2_000);
        k.packet_received(2_100, true);
        assert!(!k.ping_pending());
        assert_eq!(k.poll(3_999), KeepAliveAction::Idle);
        assert_eq!(k.poll(4_000), KeepAliveAction::SendPing);
    }

    #[test]
    fn other_traffic_restarts_the_pingresp_wait() {
        let mut k = KeepAlive::new(2_000, 1_000, 0);
        k.ping_sent(2_000);
        k.packet_received(2_900, false);
        assert_eq!(k.poll(3_500), KeepAliveAction::Idle);
        assert_eq!(k.poll(3_900), KeepAliveAction::PingTimedOut);
    }

    #[test]
    fn a_second_ping_does_not_move_the_pending_deadline() {
        let mut k = KeepAlive::new(2_000, 1_000, 0);
        k.ping_sent(2_000);
        k.ping_sent(2_500);
        assert_eq!(k.poll(3_000), KeepAliveAction::PingTimedOut);
    }
}
