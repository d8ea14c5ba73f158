//! The QoS 2 messages delivered and acknowledged (PUBREC) whose release
//! (PUBREL) has not come yet: the receiver's half of exactly-once delivery.
//!
//! MQTT 3.1.1 (4.3.3, method B) lets the receiver deliver a QoS 2 message on
//! arrival, then remember its packet id until the sender releases it: a copy
//! the broker sends again meanwhile (after a reconnect, with DUP) carries the
//! same id and is acknowledged without being delivered twice. The record is
//! a fixed number of ids, so it takes no heap; what happens when it is full
//! is the caller's to decide (the client delivers anyway: see
//! [`crate::Client`]).

/// How many QoS 2 messages may await their PUBREL at once.
pub const AWAITING_RELEASE: usize = 8;

/// Packet ids of delivered QoS 2 messages not yet released.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct AwaitingRelease {
    ids: [u16; AWAITING_RELEASE],
    len: usize,
}

impl AwaitingRelease {
    fn ids(&self) -> &[u16] {
        self.ids.get(..self.len).unwrap_or_default()
    }

    /// Whether the message with `id` was delivered and awaits its release.
    pub(crate) fn contains(&self, id: u16) -> bool {
        self.ids().contains(&id)
    }

    /// Remembers `id`; `false` when the record is full (nothing changes).
    pub(crate) fn insert(&mut self, id: u16) -> bool {
        if self.contains(id) {
            return true;
        }
        match self.ids.get_mut(self.len) {
            Some(slot) => {
                *slot = id;
                self.len += 1;
                true
            }
            None => false,
        }
    }

    /// Forgets `id` (released); nothing happens if it is not there. The
    /// order of the ids does not matter: the last one takes its place.
    pub(crate) fn remove(&mut self, id: u16) {
        if let Some(i) = self.ids().iter().position(|&x| x == id) {
            self.len -= 1;
            if let Some(&last) = self.ids.get(self.len)
                && let Some(slot) = self.ids.get_mut(i)
            {
                *slot = last;
            }
        }
    }

    /// Forgets everything: the session is new.
    pub(crate) fn clear(&mut self) {
        self.len = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_remembered_until_released_and_a_full_record_refuses_more() {
        let mut record = AwaitingRelease::default();
        for id in 1..=AWAITING_RELEASE as u16 {
            assert!(record.insert(id));
        }
        assert!(record.insert(3), "an id already there is no new entry");
        assert!(!record.insert(100), "full");
        assert!(!record.contains(100));
        record.remove(3);
        assert!(!record.contains(3));
        assert!(record.contains(4) && record.contains(AWAITING_RELEASE as u16));
        assert!(record.insert(100));
        record.remove(999);
        record.clear();
        assert!(!record.contains(1) && !record.contains(100));
    }
}
