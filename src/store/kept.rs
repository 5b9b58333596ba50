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
//!   whether its vehicle is inside; counting walks only the bookings due,
//!   in memory;
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

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::domain::availability::{Kind, Load};
use crate::domain::model::VehicleClass;

pub(super) use sync::{TRIGGERS, Touched};

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

/// One booked reservation of the lot, as the load needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Held {
    pub id: String,
    pub start: i64,
    pub end: i64,
    pub vehicle: String,
    /// The booked class with its vehicle's flags (none if it is unknown).
    pub kind: Kind,
    /// A check_in used it: it holds nothing any more.
    pub used: bool,
    /// Its vehicle is inside: counted there, not here.
    pub inside: bool,
}

/// The lot's booked reservations starting in `[lo, hi]` (ms): exactly
/// those, whatever was written since, and no others.
#[derive(Debug, Default)]
pub(super) struct Window {
    pub lo: i64,
    pub hi: i64,
    by_start: BTreeMap<(i64, String), Held>,
    start_of: HashMap<String, i64>,
    /// (vehicle, start, id) of each: a vehicle's comings and goings touch
    /// its own bookings, not a walk of the thousands kept.
    by_vehicle: BTreeSet<(String, i64, String)>,
}

impl Window {
    pub fn new(lo: i64, hi: i64) -> Window {
        Window {
            lo,
            hi,
            ..Window::default()
        }
    }

    /// Adds or replaces a reservation (by id).
    pub fn put(&mut self, held: Held) {
        self.remove(&held.id);
        self.start_of.insert(held.id.clone(), held.start);
        self.by_vehicle
            .insert((held.vehicle.clone(), held.start, held.id.clone()));
        self.by_start.insert((held.start, held.id.clone()), held);
    }

    pub fn remove(&mut self, id: &str) -> Option<Held> {
        let start = self.start_of.remove(id)?;
        let gone = self.by_start.remove(&(start, id.to_owned()))?;
        self.by_vehicle
            .remove(&(gone.vehicle.clone(), start, gone.id.clone()));
        Some(gone)
    }

    pub fn get_mut(&mut self, id: &str) -> Option<&mut Held> {
        let start = *self.start_of.get(id)?;
        self.by_start.get_mut(&(start, id.to_owned()))
    }

    /// The ids of `vehicle`'s bookings kept.
    pub fn of_vehicle(&self, vehicle: &str) -> Vec<String> {
        let from = (vehicle.to_owned(), i64::MIN, String::new());
        self.by_vehicle
            .range(from..)
            .take_while(|(v, _, _)| v == vehicle)
            .map(|(_, _, id)| id.clone())
            .collect()
    }

    /// Forgets reservations starting before `lo`: with time going forward
    /// they can never hold a spot again (a clock stepped back reads them
    /// again).
    pub fn trim(&mut self, lo: i64) {
        if lo <= self.lo {
            return;
        }
        let kept = self.by_start.split_off(&(lo, String::new()));
        for ((start, id), gone) in std::mem::replace(&mut self.by_start, kept) {
            self.start_of.remove(&id);
            self.by_vehicle.remove(&(gone.vehicle, start, id));
        }
        self.lo = lo;
    }

    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.by_start.len()
    }

    /// The bookings holding a spot at `now`: starting in `[now - late,
    /// now + early]` (else a no-show, or not due yet), not over, not used,
    /// their vehicle not inside.
    fn held_at(&self, now: i64, to: &For) -> impl Iterator<Item = Kind> + '_ {
        let (from, until) = ((now - to.late, String::new()), now + to.early);
        self.by_start
            .range(from..)
            .take_while(move |((start, _), _)| *start <= until)
            .filter(move |(_, h)| h.end > now && !h.used && !h.inside)
            .map(|(_, h)| h.kind)
    }
}

/// The kept load of one lot.
#[derive(Debug)]
pub(super) struct Kept {
    pub to: For,
    /// Vehicle id to the kind it is counted as, for every vehicle inside.
    inside: HashMap<String, Kind>,
    inside_counts: BTreeMap<Kind, u32>,
    /// Entered minus exited per class, summed over every gate's counters.
    pub counters: BTreeMap<VehicleClass, i64>,
    pub window: Window,
    /// SQLite's `data_version` of the main and replica files when this
    /// was last in step: another process's commit changes them.
    pub versions: (i64, i64),
}

impl Kept {
    pub fn new(to: For, window: Window, versions: (i64, i64)) -> Kept {
        Kept {
            to,
            inside: HashMap::new(),
            inside_counts: BTreeMap::new(),
            counters: BTreeMap::new(),
            window,
            versions,
        }
    }

    /// Whether `vehicle` is inside.
    pub fn is_inside(&self, vehicle: &str) -> bool {
        self.inside.contains_key(vehicle)
    }

    /// `vehicle` is now inside as `kind`, or (None) not inside.
    pub fn set_inside(&mut self, vehicle: &str, kind: Option<Kind>) {
        let was = match kind {
            Some(kind) => self.inside.insert(vehicle.to_owned(), kind),
            None => self.inside.remove(vehicle),
        };
        if was == kind {
            return;
        }
        if let Some(was) = was
            && let Some(n) = self.inside_counts.get_mut(&was)
        {
            *n -= 1;
            if *n == 0 {
                self.inside_counts.remove(&was);
            }
        }
        if let Some(kind) = kind {
            *self.inside_counts.entry(kind).or_default() += 1;
        }
        // A booking whose vehicle came in is counted as the vehicle; when
        // it leaves, the booking (if still due and unused) holds again.
        for id in self.window.of_vehicle(vehicle) {
            if let Some(held) = self.window.get_mut(&id) {
                held.inside = kind.is_some();
            }
        }
    }

    /// The load at `now` (ms), exactly what `facts::recount` counts.
    pub fn load(&self, now: i64) -> Load {
        let mut load = Load::default();
        for (&kind, &n) in &self.inside_counts {
            load.add(kind, n);
        }
        // Tallied in a flat array first: thousands of bookings, 20 kinds.
        let mut held = [0u32; 20];
        let slot = |k: Kind| {
            let class = VehicleClass::ALL.iter().position(|&c| c == k.class);
            class.unwrap_or(0) * 4 + usize::from(k.ada) * 2 + usize::from(k.ev)
        };
        let mut kinds = [None; 20];
        for kind in self.window.held_at(now, &self.to) {
            let i = slot(kind);
            held[i] += 1;
            kinds[i] = Some(kind);
        }
        for (kind, n) in kinds.into_iter().zip(held) {
            if let Some(kind) = kind {
                load.add(kind, n);
            }
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
