//! The QoS 1 window: the packet ids of messages sent and not yet
//! acknowledged, in a table the application lends (no heap), so several can
//! be in flight at once.

/// Packet ids in flight, in borrowed slots (0 marks a free one: no packet
/// has id 0). No slots: no window, every QoS 1 publish waits for its PUBACK.
pub(crate) struct Window<'a> {
    slots: &'a mut [u16],
    used: usize,
}

impl<'a> Window<'a> {
    pub(crate) fn none() -> Self {
        Window {
            slots: &mut [],
            used: 0,
        }
    }

    /// A window of `slots.len()` messages (their contents are discarded).
    pub(crate) fn new(slots: &'a mut [u16]) -> Self {
        slots.fill(0);
        Window { slots, used: 0 }
    }

    /// How many messages may be in flight at once (0: no window).
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    pub(crate) fn in_flight(&self) -> usize {
        self.used
    }

    pub(crate) fn room(&self) -> usize {
        self.slots.len() - self.used
    }

    #[allow(clippy::manual_contains)] // smaller code: see below
    pub(crate) fn contains(&self, id: u16) -> bool {
        // A plain loop: core's `contains` unrolls it, for tables far
        // larger than a window.
        id != 0 && self.slots.iter().any(|&slot| slot == id)
    }

    /// Notes `id` in flight; false if there is no room (or it is already).
    pub(crate) fn insert(&mut self, id: u16) -> bool {
        if id == 0 || self.contains(id) {
            return false;
        }
        match self.slots.iter_mut().find(|slot| **slot == 0) {
            Some(slot) => {
                *slot = id;
                self.used += 1;
                true
            }
            None => false,
        }
    }

    /// `id` was acknowledged; false if it was not in flight.
    pub(crate) fn remove(&mut self, id: u16) -> bool {
        match self.slots.iter_mut().find(|slot| id != 0 && **slot == id) {
            Some(slot) => {
                *slot = 0;
                self.used -= 1;
                true
            }
            None => false,
        }
    }

    /// A new connection: nothing of the old one is in flight on it.
    pub(crate) fn clear(&mut self) {
        self.slots.fill(0);
        self.used = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_enter_while_there_is_room_and_leave_in_any_order() {
        let mut slots = [9u16; 3];
        let mut window = Window::new(&mut slots);
        assert_eq!((window.capacity(), window.room()), (3, 3));
        assert!(window.insert(5) && window.insert(6) && window.insert(7));
        assert!(!window.insert(8), "full");
        assert!(!window.insert(0) && !window.contains(0));
        assert!(window.remove(6));
        assert!(!window.remove(6), "acknowledged once");
        assert!(!window.insert(5), "already in flight");
        assert!(window.insert(8));
        assert!(window.contains(8) && window.contains(5) && !window.contains(6));
        assert_eq!(window.in_flight(), 3);
        window.clear();
        assert_eq!((window.in_flight(), window.room()), (0, 3));
    }

    #[test]
    fn no_window_has_no_room() {
        let window = Window::none();
        assert_eq!((window.capacity(), window.room()), (0, 0));
    }
}
