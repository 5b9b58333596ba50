//! Which events go to the broker next: the outbox in `gate_seq` order, a
//! window of them in flight, and HQ's replay requests.
//!
//! Pure, like the lane: the session tells it what happened (connected, a
//! page read from the store, a PUBACK) and asks it what to do (read this
//! page, publish this row, mark these delivered). It never trusts the MQTT
//! client's memory: on every new connection it starts again from the oldest
//! event the store still holds undelivered, so whatever the client or the
//! broker dropped is sent again (HQ removes duplicates by `event_id`).

use std::collections::VecDeque;

use super::window::{Tag, Window, WindowError};
use crate::store::Stored;

/// Rows read from the store at a time.
pub const PAGE: usize = 512;
/// Replay requests kept waiting at most; HQ asks again for one dropped.
pub const MAX_REPLAYS: usize = 16;

/// A store read the uplink wants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// Undelivered events after `gate_seq` `after`.
    Outbox { after: u64, limit: usize },
    /// Journalled events `from..=to` (a replay).
    Journal { from: u64, to: u64, limit: usize },
}

/// The uplink's state on one gate.
#[derive(Debug)]
pub struct Uplink {
    /// Events in flight at most.
    window_size: usize,
    window: Window,
    connected: bool,
    /// Outbox rows read and not yet published, in `gate_seq` order.
    ahead: VecDeque<Stored>,
    /// The highest `gate_seq` read from the outbox on this connection.
    after: u64,
    /// The last outbox read came back short: nothing more to read until
    /// the gate records more.
    drained: bool,
    /// Replay ranges not yet read to their end, oldest request first.
    replays: VecDeque<(u64, u64)>,
    /// Replayed rows read and not yet published.
    replay_ahead: VecDeque<Stored>,
    /// Acknowledged events whose delivery is not yet written to the store.
    delivered: Vec<u64>,
}

impl Uplink {
    pub fn new(window_size: usize) -> Uplink {
        Uplink {
            window_size: window_size.max(1),
            window: Window::default(),
            connected: false,
            ahead: VecDeque::new(),
            after: 0,
            drained: false,
            replays: VecDeque::new(),
            replay_ahead: VecDeque::new(),
            delivered: Vec::new(),
        }
    }

    /// A connection is up (CONNACK): start again from the oldest
    /// undelivered event, whether or not the broker kept the session.
    pub fn connected(&mut self) {
        self.reset();
        self.connected = true;
    }

    /// The connection is gone: whatever was in flight is sent again on the
    /// next one.
    pub fn disconnected(&mut self) {
        self.reset();
        self.connected = false;
    }

    fn reset(&mut self) {
        self.window.clear();
        self.ahead.clear();
        self.after = 0;
        self.drained = false;
        // Replayed rows read but not published are read again.
        if let (Some(first), Some(range)) = (self.replay_ahead.front(), self.replays.front_mut()) {
            range.0 = first.gate_seq;
        }
        self.replay_ahead.clear();
    }

    /// The gate recorded more events.
    pub fn more_events(&mut self) {
        self.drained = false;
    }

    /// HQ asked for `from..=to` again. `false` if too many requests wait
    /// already (this one is dropped; HQ asks again for what it still lacks).
    pub fn replay(&mut self, from: u64, to: u64) -> bool {
        if self.replays.contains(&(from, to)) {
            return true;
        }
        if self.replays.len() >= MAX_REPLAYS {
            return false;
        }
        self.replays.push_back((from, to));
        true
    }

    /// The store read to make next, if any. Before it, the caller writes
    /// [`Uplink::take_delivered`]: the store runs jobs in order, so a page
    /// read after that never holds an event already acknowledged.
    pub fn next_read(&self) -> Option<Read> {
        if !self.connected {
            return None;
        }
        if let Some(&(from, to)) = self.replays.front()
            && self.replay_ahead.is_empty()
        {
            return Some(Read::Journal {
                from,
                to,
                limit: PAGE,
            });
        }
        if !self.drained && self.ahead.len() < self.window_size.min(PAGE) {
            return Some(Read::Outbox {
                after: self.after,
                limit: PAGE,
            });
        }
        None
    }

    /// The rows `read` returned.
    pub fn read(&mut self, read: Read, rows: Vec<Stored>) {
        match read {
            Read::Outbox { limit, .. } => {
                self.drained = rows.len() < limit;
                if let Some(last) = rows.last() {
                    self.after = last.gate_seq;
                }
                self.ahead.extend(rows);
            }
            Read::Journal { to, limit, .. } => {
                let done = rows.len() < limit || rows.last().is_some_and(|r| r.gate_seq >= to);
                match rows.last() {
                    Some(last) if !done => {
                        if let Some(range) = self.replays.front_mut() {
                            range.0 = last.gate_seq + 1;
                        }
                    }
                    _ => {
                        self.replays.pop_front();
                    }
                }
                self.replay_ahead.extend(rows);
            }
        }
    }

    /// The next row to publish, if the window has room: replays first (HQ
    /// is waiting on a gap), then the outbox in order. The caller publishes
    /// it and calls [`Uplink::handed`].
    pub fn next_publish(&mut self) -> Option<Stored> {
        if !self.connected || self.window.events() >= self.window_size {
            return None;
        }
        self.replay_ahead
            .pop_front()
            .or_else(|| self.ahead.pop_front())
    }

    /// A publish tagged `tag` was handed to the client.
    pub fn handed(&mut self, tag: Tag) {
        self.window.handed(tag);
    }

    /// The client sent the oldest handed publish as `pkid`.
    pub fn outgoing(&mut self, pkid: u16) -> Result<(), WindowError> {
        self.window.outgoing(pkid)
    }

    /// PUBACK for `pkid`: what it acknowledged. An event is delivered.
    pub fn acked(&mut self, pkid: u16) -> Option<Tag> {
        let tag = self.window.acked(pkid);
        if let Some(Tag::Event(seq)) = tag {
            self.delivered.push(seq);
        }
        tag
    }

    /// Whether a publish tagged `tag` is in flight.
    pub fn in_flight(&self, tag: Tag) -> bool {
        self.window.holds(tag)
    }

    /// Events acknowledged since the last call: to be marked delivered.
    pub fn take_delivered(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.delivered)
    }

    /// No event in flight and none read ahead: everything sent was
    /// acknowledged.
    pub fn idle(&self) -> bool {
        self.window.events() == 0 && self.ahead.is_empty() && self.replay_ahead.is_empty()
    }

    /// How many acknowledged events wait to be marked.
    pub fn unmarked(&self) -> usize {
        self.delivered.len()
    }
}

#[cfg(test)]
mod tests;
