//! A warm copy of the lot's load, so a card read does not count the lot.
//!
//! Counting who is inside and which reservations hold a spot scans every
//! booking due around now (about 1,250 at a 10,000-a-day peak): around a
//! millisecond, most of a card read. The load only changes when the store is
//! written (a passage, a replica batch) or as bookings enter and leave their
//! grace windows. So the store thread keeps the last count, drops it on
//! every write, and counts again while it is idle, after it has answered:
//! a decision then reads a count at most [`FRESH`] old, or counts itself.
//!
//! The price of a count up to [`FRESH`] old: a booking that became due in the
//! last few seconds may not hold its spot yet, so one walk-in might take it.
//! The booking's holder still gets in (a reservation due now is admitted
//! whatever the load), so at worst the lot is over-full by one, as with soft
//! anti-passback.

use std::time::Instant;

use chrono::TimeDelta;

use super::{Db, StoreError};
use crate::domain::availability::Load;
use crate::domain::model::Timestamp;

/// How old a warm load may be when a card is decided on.
pub const FRESH: TimeDelta = TimeDelta::seconds(5);

/// The last load counted for decisions, and what it was counted for.
#[derive(Debug, Clone)]
pub(super) struct Warm {
    lot: String,
    early: u32,
    late: u32,
    /// The `now` it was counted at, and when (to warm it again by itself).
    at: Timestamp,
    counted: Instant,
    /// `None` once a write made it stale.
    load: Option<Load>,
}

impl Db {
    /// The lot's load at `now` for a decision: the warm copy if it is fresh
    /// and counted for the same lot and grace windows, else counted now.
    pub(super) fn load_now(
        &self,
        conn: &rusqlite::Connection,
        lot: &str,
        now: Timestamp,
        early: u32,
        late: u32,
    ) -> Result<Load, StoreError> {
        let mut warm = self.warm.borrow_mut();
        if let Some(w) = warm.as_ref()
            && let Some(load) = &w.load
            && (w.lot.as_str(), w.early, w.late) == (lot, early, late)
            && w.at <= now
            && now - w.at < FRESH
        {
            return Ok(load.clone());
        }
        let load = super::facts::load(conn, lot, now, now, early, late)?;
        *warm = Some(Warm {
            lot: lot.to_owned(),
            early,
            late,
            at: now,
            counted: Instant::now(),
            load: Some(load.clone()),
        });
        Ok(load)
    }

    /// Marks the warm load stale: the store was written.
    pub(super) fn cool(&mut self) {
        if let Some(w) = self.warm.get_mut() {
            w.load = None;
        }
    }

    /// Counts the load again if it is stale or half its freshness is gone,
    /// taking "now" as the last count's time plus the time since. The store
    /// thread calls this when it has nothing else to do.
    pub fn warm_up(&self) -> Result<(), StoreError> {
        let Some(w) = self.warm.borrow().clone() else {
            return Ok(());
        };
        let elapsed = TimeDelta::from_std(w.counted.elapsed()).unwrap_or(FRESH);
        if w.load.is_some() && elapsed < FRESH / 2 {
            return Ok(());
        }
        let now = w.at + elapsed;
        let tx = self.conn.unchecked_transaction()?;
        let load = super::facts::load(&tx, &w.lot, now, now, w.early, w.late)?;
        tx.commit()?;
        *self.warm.borrow_mut() = Some(Warm {
            at: now,
            counted: Instant::now(),
            load: Some(load),
            ..w
        });
        Ok(())
    }
}
