//! The subscriptions to restore after the broker forgot them, kept without a
//! heap in a fixed number of bytes.

use heapless::Vec;
use umqtt_simple::QoS;

/// Filters and their QoS, packed as `[len_hi, len_lo, qos, filter…]` records
/// in `BYTES` bytes (a filter takes its length plus 3).
#[derive(Debug, Clone, Default)]
pub struct Subscriptions<const BYTES: usize> {
    records: Vec<u8, BYTES>,
}

/// A filter that does not fit what is left of the subscription memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubscriptionsFull {
    /// Bytes the filter needs.
    pub needed: usize,
    /// Bytes still free.
    pub free: usize,
}

const HEADER: usize = 3;

/// The remembered filters, read-only: the records of a [`Subscriptions`].
#[derive(Debug, Clone, Copy)]
pub(crate) struct Filters<'s>(&'s [u8]);

impl<'s> Filters<'s> {
    /// Each filter with its QoS, in the order they were added.
    pub(crate) fn iter(self) -> impl Iterator<Item = (&'s [u8], QoS)> {
        let mut rest = self.0;
        core::iter::from_fn(move || {
            let (&[hi, lo, qos], tail) = rest.split_first_chunk::<HEADER>()?;
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            let filter = tail.get(..len)?;
            rest = tail.get(len..)?;
            Some((filter, QoS::from_u8(qos).unwrap_or_default()))
        })
    }
}

impl<const BYTES: usize> Subscriptions<BYTES> {
    /// No subscriptions.
    pub const fn new() -> Self {
        Subscriptions {
            records: Vec::new(),
        }
    }

    /// Each filter with its QoS, in the order they were added.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], QoS)> + '_ {
        self.filters().iter()
    }

    /// The filters, without the memory's size: what the reconnect engine
    /// resubscribes to.
    pub(crate) fn filters(&self) -> Filters<'_> {
        Filters(&self.records)
    }

    /// How many filters are kept.
    pub fn len(&self) -> usize {
        self.iter().count()
    }

    /// Whether none are kept.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Where the record of `filter` starts and how long it is.
    fn find(&self, filter: &[u8]) -> Option<(usize, usize)> {
        let mut at = 0;
        for (f, _) in self.iter() {
            let len = HEADER + f.len();
            if f == filter {
                return Some((at, len));
            }
            at += len;
        }
        None
    }

    /// Adds `filter` (or updates its QoS); fails when the memory is full.
    pub fn insert(&mut self, filter: &[u8], qos: QoS) -> Result<(), SubscriptionsFull> {
        if let Some((at, _)) = self.find(filter) {
            if let Some(q) = self.records.get_mut(at + 2) {
                *q = qos as u8;
            }
            return Ok(());
        }
        let needed = HEADER + filter.len();
        let free = BYTES - self.records.len();
        let len = u16::try_from(filter.len()).map_err(|_| SubscriptionsFull { needed, free })?;
        if needed > free {
            return Err(SubscriptionsFull { needed, free });
        }
        let [hi, lo] = len.to_be_bytes();
        self.records
            .extend_from_slice(&[hi, lo, qos as u8])
            .and_then(|()| self.records.extend_from_slice(filter))
            .map_err(|_| SubscriptionsFull { needed, free })
    }

    /// Forgets `filter`; returns whether it was kept.
    pub fn remove(&mut self, filter: &[u8]) -> bool {
        let Some((at, len)) = self.find(filter) else {
            return false;
        };
        let end = self.records.len();
        self.records.copy_within(at + len..end, at);
        self.records.truncate(end - len);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_kept_in_order_updated_and_removed() {
        let mut subs = Subscriptions::<64>::new();
        subs.insert(b"a/#", QoS::AtMostOnce).unwrap();
        subs.insert(b"b/+/c", QoS::AtLeastOnce).unwrap();
        subs.insert(b"d", QoS::AtMostOnce).unwrap();
        subs.insert(b"a/#", QoS::AtLeastOnce).unwrap();
        let all: std::vec::Vec<_> = subs.iter().collect();
        assert_eq!(
            all,
            [
                (&b"a/#"[..], QoS::AtLeastOnce),
                (b"b/+/c", QoS::AtLeastOnce),
                (b"d", QoS::AtMostOnce)
            ]
        );
        assert!(subs.remove(b"b/+/c"));
        assert!(!subs.remove(b"b/+/c"));
        let all: std::vec::Vec<_> = subs.iter().map(|(f, _)| f).collect();
        assert_eq!(all, [&b"a/#"[..], b"d"]);
        assert_eq!(subs.len(), 2);
    }

    #[test]
    fn a_full_memory_refuses_and_keeps_what_it_has() {
        let mut subs = Subscriptions::<10>::new();
        subs.insert(b"abcd", QoS::AtMostOnce).unwrap();
        assert_eq!(
            subs.insert(b"efgh", QoS::AtMostOnce),
            Err(SubscriptionsFull { needed: 7, free: 3 })
        );
        assert_eq!(
            subs.iter().map(|(f, _)| f).collect::<std::vec::Vec<_>>(),
            [&b"abcd"[..]]
        );
    }
}
