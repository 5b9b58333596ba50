//! The lot's load, kept rather than counted.
//!
//! A card decision needs the lot's [`Load`]: every vehicle inside, every
//! booking that holds its spot now, and what siblings' counters say beyond
//! that. Counting it in SQL reads every booking due around now (thousands
//! at a busy lot) on every decision. Instead the store thread keeps it in
//! memory, exact, and every write brings it in step:
//!
//! - **inside:** a mirror of `presence` (a few hundred rows, one per spot at
//!   most), with its counts per [`Kind`];
//! - **held:** the lot's booked reservations starting inside a window of
//!   time around now ([`Window`]), each with whether it was used and
//!   whether its vehicle is inside, and how many of them hold a spot at
//!   the last decision's time, moved to the next one's by walking only the
//!   bookings that start or stop holding in between (`kept/window.rs`);
//! - **counters:** entered minus exited per class over every gate's counters.
//!
//! Writes to presence, used reservations and counters are caught by
//! temporary triggers into a temporary table inside the writing
//! transaction (so a rollback forgets them too); replica batches say which
//! reservations and vehicles they touched. After each commit the store
//! re-reads just those rows (`kept/sync.rs`). A commit by another process
//! (the CLI) shows in SQLite's `data_version`, and the whole is read again.
//!
//! This file is the in-memory part: no SQL, no clock.

mod sync;
mod window;

use std::collections::{BTreeMap, HashMap};

use crate::domain::availability::{Kind, Load};
use crate::domain::model::VehicleClass;

pub(super) use sync::{TRIGGERS, Touched, sums_unchanged};
pub(super) use window::{Held, Window};

/// How far past the window's needs the window is read ahead, so that most
/// decisions find it covered and the idle store thread extends it.
pub(super) const AHEAD_MS: i64 = 15 * 60_000;

/// What a kept load is for: one lot and its grace windows (in ms).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct For {
    pub lot: String,
    pub early: i64,
    pub late: i64,
}

/// The kept load of one lot.
#[derive(Debug)]
pub(super) struct Kept {
    pub to: For,
    /// Vehicle id to the kind it is counted as and the user its check_in
    /// named, for every vehicle inside.
    inside: HashMap<String, (Kind, String)>,
    inside_counts: BTreeMap<Kind, u32>,
    /// User id to their vehicles inside: a card's facts find them here,
    /// so a passage writes no index of presence by user.
    by_user: HashMap<String, Vec<String>>,
    /// Entered minus exited per class, summed over every gate's counters.
    pub counters: BTreeMap<VehicleClass, i64>,
    /// How many sibling gates have sent their counters.
    pub siblings: u32,
    pub window: Window,
    /// SQLite's `data_version` of the main and replica files when this
    /// was last in step: another process's commit changes them.
    pub versions: (i64, i64),
}

impl Kept {
    /// A kept load with no vehicle inside, no counters and an empty
    /// window over `[lo, hi]` (ms).
    pub fn new(to: For, (lo, hi): (i64, i64), versions: (i64, i64)) -> Kept {
        Kept {
            window: Window::new(lo, hi, to.early, to.late),
            to,
            inside: HashMap::new(),
            inside_counts: BTreeMap::new(),
            by_user: HashMap::new(),
            counters: BTreeMap::new(),
            siblings: 0,
            versions,
        }
    }

    /// Whether `vehicle` is inside.
    pub fn is_inside(&self, vehicle: &str) -> bool {
        self.inside.contains_key(vehicle)
    }

    /// The vehicles inside whose check_in named `user`.
    pub fn inside_of(&self, user: &str) -> &[String] {
        self.by_user.get(user).map_or(&[], Vec::as_slice)
    }

    /// This gate's own passage of a `class` vehicle, in (`entered`) or out:
    /// counted here as it commits, since no counters row is written for it
    /// (`counters.rs`) for a trigger to see.
    pub fn count_own(&mut self, entered: bool, class: VehicleClass) {
        *self.counters.entry(class).or_insert(0) += if entered { 1 } else { -1 };
    }

    /// `vehicle` is now inside as `kind` for `user`, or (None) not inside.
    pub fn set_inside(&mut self, vehicle: &str, now: Option<(Kind, &str)>) {
        let now = now.map(|(kind, user)| (kind, user.to_owned()));
        let was = match &now {
            Some(now) => self.inside.insert(vehicle.to_owned(), now.clone()),
            None => self.inside.remove(vehicle),
        };
        if was == now {
            return;
        }
        if let Some((was, user)) = was {
            if let Some(n) = self.inside_counts.get_mut(&was) {
                *n -= 1;
                if *n == 0 {
                    self.inside_counts.remove(&was);
                }
            }
            if let Some(vehicles) = self.by_user.get_mut(&user) {
                vehicles.retain(|v| v != vehicle);
                if vehicles.is_empty() {
                    self.by_user.remove(&user);
                }
            }
        }
        let kind = now.map(|(kind, user)| {
            *self.inside_counts.entry(kind).or_default() += 1;
            self.by_user
                .entry(user)
                .or_default()
                .push(vehicle.to_owned());
            kind
        });
        // A booking whose vehicle came in is counted as the vehicle; when
        // it leaves, the booking (if still due and unused) holds again.
        for id in self.window.of_vehicle(vehicle) {
            self.window.set_inside(&id, kind.is_some());
        }
    }

    /// The load at `now` (ms), exactly what `facts::recount` counts.
    pub fn load(&mut self, now: i64) -> Load {
        let mut load = Load::default();
        for (&kind, &n) in &self.inside_counts {
            load.add(kind, n);
        }
        for (kind, n) in self.window.holding(now) {
            load.add(kind, n);
        }
        // What the counters say is inside beyond the passages seen here (a
        // sibling's events lost, its counters not): vehicles of the class
        // with no ADA or EV need.
        for (&class, &n) in &self.counters {
            let seen: u32 = self
                .inside_counts
                .iter()
                .filter(|(k, _)| k.class == class)
                .map(|(_, n)| n)
                .sum();
            let excess = n - i64::from(seen);
            if excess > 0 {
                let kind = Kind {
                    class,
                    ada: false,
                    ev: false,
                };
                load.add(kind, u32::try_from(excess).unwrap_or(u32::MAX));
            }
        }
        load
    }
}

#[cfg(test)]
mod tests;
