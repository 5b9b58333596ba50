//! The publishes handed to rumqttc and not yet acknowledged.
//!
//! rumqttc's `publish` does not return the packet id; its event loop reports
//! `Outgoing::Publish(pkid)` for each publish in the order they were handed
//! over, and reuses a pkid once its PUBACK is in. So a FIFO pairs each
//! handed publish with its pkid, and a map pairs the PUBACK with the publish.
//! Pure bookkeeping: no I/O, tested alone.

use std::collections::{HashMap, VecDeque};

/// What a publish carried, so its PUBACK can be acted on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tag {
    /// Event `gate_seq` (from the outbox or a replay).
    Event(u64),
    /// The retained status.
    Status,
    /// The retained occupancy counters.
    Occupancy,
    /// Anything whose PUBACK needs no action (a replica request, an ack).
    Other,
}

/// rumqttc reported something the window cannot pair: the connection's
/// bookkeeping is lost, so the link drops the connection and starts over
/// from the outbox.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowError {
    /// A publish went out that the link never handed over.
    #[error("rumqttc sent a publish (pkid {0}) the link did not make")]
    Unknown(u16),
    /// A pkid was given out again before its PUBACK.
    #[error("rumqttc reused pkid {0} before its PUBACK")]
    Reused(u16),
}

/// Publishes in flight on one connection.
#[derive(Debug, Default)]
pub struct Window {
    /// Handed to the client, pkid not known yet, in hand-over order.
    handed: VecDeque<Tag>,
    /// On the wire, waiting for their PUBACK.
    wire: HashMap<u16, Tag>,
    /// How many of both are events (counted, not scanned: asked per publish).
    events: usize,
}

impl Window {
    /// A publish tagged `tag` was handed to the client.
    pub fn handed(&mut self, tag: Tag) {
        self.events += usize::from(matches!(tag, Tag::Event(_)));
        self.handed.push_back(tag);
    }

    /// The client sent the oldest handed publish as packet `pkid`.
    pub fn outgoing(&mut self, pkid: u16) -> Result<(), WindowError> {
        let tag = self.handed.pop_front().ok_or(WindowError::Unknown(pkid))?;
        match self.wire.insert(pkid, tag) {
            Some(old) => {
                // The old publish is forgotten: it no longer counts.
                self.events -= usize::from(matches!(old, Tag::Event(_)));
                Err(WindowError::Reused(pkid))
            }
            None => Ok(()),
        }
    }

    /// The broker acknowledged packet `pkid`: what it carried. `None` for a
    /// PUBACK the window does not know (harmless: nothing is marked).
    pub fn acked(&mut self, pkid: u16) -> Option<Tag> {
        let tag = self.wire.remove(&pkid);
        self.events -= usize::from(matches!(tag, Some(Tag::Event(_))));
        tag
    }

    /// Events in flight (handed or on the wire).
    pub fn events(&self) -> usize {
        self.events
    }

    /// Whether a publish tagged `tag` is in flight.
    pub fn holds(&self, tag: Tag) -> bool {
        self.tags().any(|t| *t == tag)
    }

    /// Forgets everything: the connection is gone, and with it whatever
    /// rumqttc had not finished.
    pub fn clear(&mut self) {
        self.handed.clear();
        self.wire.clear();
        self.events = 0;
    }

    fn tags(&self) -> impl Iterator<Item = &Tag> {
        self.handed.iter().chain(self.wire.values())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pubacks_find_their_publish_whatever_the_order() {
        let mut w = Window::default();
        w.handed(Tag::Event(7));
        w.handed(Tag::Status);
        w.handed(Tag::Event(8));
        for pkid in [1, 2, 3] {
            w.outgoing(pkid).unwrap();
        }
        assert_eq!(w.events(), 2);
        assert_eq!(w.acked(3), Some(Tag::Event(8)));
        assert_eq!(w.acked(1), Some(Tag::Event(7)));
        assert!(w.holds(Tag::Status));
        assert_eq!(w.acked(2), Some(Tag::Status));
        assert_eq!(w.acked(2), None, "a second PUBACK marks nothing");
        // The pkid is free again once acknowledged.
        w.handed(Tag::Event(9));
        w.outgoing(1).unwrap();
        assert_eq!(w.acked(1), Some(Tag::Event(9)));
    }

    #[test]
    fn a_publish_the_window_did_not_hand_over_is_an_error() {
        let mut w = Window::default();
        assert_eq!(w.outgoing(4), Err(WindowError::Unknown(4)));
        w.handed(Tag::Event(1));
        w.handed(Tag::Event(2));
        w.outgoing(4).unwrap();
        assert_eq!(w.outgoing(4), Err(WindowError::Reused(4)));
    }

    #[test]
    fn clearing_forgets_handed_and_wire() {
        let mut w = Window::default();
        w.handed(Tag::Event(1));
        w.handed(Tag::Event(2));
        w.outgoing(1).unwrap();
        w.clear();
        assert_eq!(w.events(), 0);
        assert_eq!(w.acked(1), None);
    }
}
